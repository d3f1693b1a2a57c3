using System.Collections.Concurrent;
using Microsoft.ML.Tokenizers;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>
/// Token counts with a real tokenizer: o200k_base (GPT-4o and later), whose data ships inside
/// Microsoft.ML.Tokenizers.Data.O200kBase, so counting works offline. OpenCode itself guesses chars/4; a real
/// count makes the overflow and no-progress checks mean what they say. Counts are cached by text, because the
/// same tool outputs are counted on every <c>session/context</c>.
/// </summary>
public static class TokenCounter
{
    private const int MaxCacheEntries = 200_000;
    private const int MinCachedLength = 8; // counting even a short line costs ~100 µs; a lookup far less

    private static readonly Lazy<Tokenizer> Tokenizer = new(() => TiktokenTokenizer.CreateForEncoding("o200k_base"));
    private static readonly ConcurrentDictionary<string, int> Cache = new(StringComparer.Ordinal);

    /// <summary>The o200k_base token count of <paramref name="text"/>.</summary>
    public static int Count(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return 0;
        }

        if (text.Length < MinCachedLength)
        {
            return Tokenizer.Value.CountTokens(text);
        }

        if (Cache.TryGetValue(text, out int n))
        {
            return n;
        }

        n = Tokenizer.Value.CountTokens(text);
        if (Cache.Count >= MaxCacheEntries)
        {
            Cache.Clear(); // crude, but bounded; a long-running server never grows without limit
        }

        Cache[text] = n;
        return n;
    }

    /// <summary>Loads the vocabulary (about a second, once) so the first real count does not pay for it.</summary>
    public static void Warm() => _ = Tokenizer.Value.CountTokens("warm");

    /// <summary>Counts without the cache (for measuring the tokenizer itself).</summary>
    public static int CountUncached(string text) => Tokenizer.Value.CountTokens(text);
}
