using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Sessions;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>
/// Reads a session's messages and parts like <see cref="SessionStore.ListMessages"/>, but keeps each parsed file
/// while its size and mtime are unchanged, and keeps each message's model conversion while its files are the same
/// objects. <c>session/context</c> of a long session is then a directory walk and a stat per file, not a parse of
/// thousands of files and a re-count of every token. The stat is per file, not per directory, because OpenCode
/// itself rewrites files in place (no rename), which leaves a directory's mtime alone.
/// </summary>
internal sealed class MessageReadCache
{
    private const int MaxEntries = 400_000;

    private readonly ConcurrentDictionary<string, Entry> files = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<JsonObject, Converted> converted = new();

    private sealed record Entry(long Ticks, long Length, JsonObject Value);

    private sealed record Converted(IReadOnlyList<JsonObject> Parts, ContextMessage? Message);

    public IReadOnlyList<MessageWithParts> ListMessages(SessionStore store, string sessionId)
    {
        _ = store.GetSession(sessionId); // validates the id; SessionNotFound as the store says it
        if (files.Count > MaxEntries)
        {
            files.Clear();
        }

        var infos = ReadDir(store.Layout.MessageDir(sessionId));
        infos.Sort(SessionStore.CompareMessages);
        var result = new List<MessageWithParts>(infos.Count);
        foreach (var info in infos)
        {
            var parts = ReadDir(store.Layout.PartDir(ContextBuilder.Id(info)));
            parts.Sort((a, b) => string.CompareOrdinal(ContextBuilder.Str(a["id"]), ContextBuilder.Str(b["id"])));
            result.Add(new MessageWithParts(info, parts));
        }

        return result;
    }

    /// <summary>The model conversion of <paramref name="m"/>, reused while its info and parts are the same objects.</summary>
    public ContextMessage? Convert(MessageWithParts m, string source)
    {
        if (converted.TryGetValue(m.Info, out var c) && c.Parts.Count == m.Parts.Count && c.Parts.Zip(m.Parts).All(x => ReferenceEquals(x.First, x.Second)))
        {
            return c.Message is null || c.Message.Source == source ? c.Message : c.Message with { Source = source };
        }

        var cm = ContextBuilder.Convert(m, source);
        converted.AddOrUpdate(m.Info, new Converted(m.Parts, cm));
        return cm;
    }

    private List<JsonObject> ReadDir(string dir)
    {
        var list = new List<JsonObject>();
        if (!Directory.Exists(dir))
        {
            return list;
        }

        foreach (var fi in new DirectoryInfo(dir).EnumerateFiles("*.json"))
        {
            string path = fi.FullName;
            long ticks;
            long length;
            try
            {
                ticks = fi.LastWriteTimeUtc.Ticks;
                length = fi.Length;
            }
            catch (FileNotFoundException)
            {
                continue; // removed while we walked
            }

            if (files.TryGetValue(path, out var e) && e.Ticks == ticks && e.Length == length)
            {
                list.Add(e.Value);
                continue;
            }

            JsonObject? value;
            try
            {
                value = SessionStore.ReadObject(path);
            }
            catch (StoreCorruptException)
            {
                continue; // the store warns about it on its own reads; the model never sees it
            }

            if (value is not null)
            {
                files[path] = new Entry(ticks, length, value);
                list.Add(value);
            }
        }

        return list;
    }
}
