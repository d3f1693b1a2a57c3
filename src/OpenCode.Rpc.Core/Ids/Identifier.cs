using System.Security.Cryptography;

namespace OpenCode.Rpc.Core.Ids;

/// <summary>
/// OpenCode's identifier scheme (reference §3.1): <c>prefix_</c> + 12 hex digits of a 48-bit time value
/// + 14 base62 characters. Sessions use the bitwise NOT of the time value so that an ascending sort of
/// their ids lists the newest first; messages and parts ascend so that id order is chronological order.
/// </summary>
public static class Identifier
{
    public const string Session = "ses";
    public const string Message = "msg";
    public const string Part = "prt";

    /// <summary>Prefixes OpenCode knows; an id from outside must start with one of them.</summary>
    public static readonly IReadOnlySet<string> KnownPrefixes = new HashSet<string>(StringComparer.Ordinal)
    {
        "ses", "msg", "prt", "per", "que", "usr", "pty", "tool", "evt", "job", "wrk",
    };

    /// <summary>Longest accepted suffix after <c>prefix_</c>; OpenCode makes 26, we allow some room.</summary>
    public const int MaxSuffixLength = 64;

    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    private static readonly Lock Gate = new();
    private static long lastTimestamp;
    private static long counter;

    public static string Ascending(string prefix) => Create(prefix, descending: false, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    public static string Descending(string prefix) => Create(prefix, descending: true, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    /// <summary>Creates an id for the given millisecond. Monotonic within the process: the counter is shared
    /// by every prefix and resets when the millisecond changes, exactly as OpenCode does.</summary>
    public static string Create(string prefix, bool descending, long nowMs)
    {
        long value;
        lock (Gate)
        {
            if (nowMs != lastTimestamp)
            {
                // A clock that steps backwards must not reorder ids: keep counting on the last timestamp.
                if (nowMs < lastTimestamp)
                {
                    nowMs = lastTimestamp;
                }
                else
                {
                    lastTimestamp = nowMs;
                    counter = 0;
                }
            }

            counter++;
            if (counter >= 4096)
            {
                // More than 4095 ids in one millisecond would overflow into the next millisecond's range;
                // borrow the next millisecond instead so order stays strict.
                lastTimestamp++;
                nowMs = lastTimestamp;
                counter = 1;
            }

            value = unchecked((nowMs * 4096) + counter);
        }

        ulong low48 = (ulong)value & 0xFFFF_FFFF_FFFFUL;
        if (descending)
        {
            low48 = ~low48 & 0xFFFF_FFFF_FFFFUL;
        }

        Span<char> chars = stackalloc char[prefix.Length + 1 + 26];
        prefix.AsSpan().CopyTo(chars);
        chars[prefix.Length] = '_';
        var hex = chars.Slice(prefix.Length + 1, 12);
        for (int i = 11; i >= 0; i--)
        {
            hex[i] = "0123456789abcdef"[(int)(low48 & 0xF)];
            low48 >>= 4;
        }

        Span<byte> random = stackalloc byte[14];
        RandomNumberGenerator.Fill(random);
        var tail = chars.Slice(prefix.Length + 13, 14);
        for (int i = 0; i < 14; i++)
        {
            tail[i] = Base62[random[i] % 62];
        }

        return new string(chars);
    }

    /// <summary>
    /// True when <paramref name="id"/> is <paramref name="prefix"/> + <c>_</c> + 1–64 characters of [0-9A-Za-z].
    /// This is what keeps an id from escaping the storage folder: no separators, dots, NUL or unicode.
    /// </summary>
    public static bool IsValid(string? id, string prefix)
    {
        if (id is null || id.Length < prefix.Length + 2 || id.Length > prefix.Length + 1 + MaxSuffixLength)
        {
            return false;
        }

        if (!id.StartsWith(prefix, StringComparison.Ordinal) || id[prefix.Length] != '_')
        {
            return false;
        }

        for (int i = prefix.Length + 1; i < id.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(id[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Why <paramref name="id"/> is not a valid id of that prefix, as a sentence fragment for error data.</summary>
    public static string Explain(string? id, string prefix) => id switch
    {
        null => "is required",
        "" => "must not be empty",
        _ when id.Length > prefix.Length + 1 + MaxSuffixLength => $"is longer than {prefix.Length + 1 + MaxSuffixLength} characters",
        _ when !id.StartsWith(prefix + "_", StringComparison.Ordinal) => $"must start with \"{prefix}_\"",
        _ => $"must be \"{prefix}_\" followed by 1 to {MaxSuffixLength} characters of [0-9A-Za-z]",
    };
}
