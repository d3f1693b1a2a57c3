using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>
/// Reads a session's messages and parts like <see cref="SessionStore.ListMessages"/>, but keeps each parsed file
/// while its size and mtime are unchanged, and keeps each message's model conversion while its files are the same
/// objects. <c>session/context</c> of a long session is then a stat per folder and per file, not a parse of
/// thousands of files and a re-count of every token.
/// <list type="bullet">
/// <item>Folder listings are kept while the folder's mtime is unchanged: adding, renaming or removing an entry
/// changes it. Listing a folder (open, read entries, close, and .NET's per-entry work) costs several times a stat,
/// and a 2,000-message session has 2,001 folders: re-listing them all was most of a warm call.</item>
/// <item>Every file is still stat'ed on every call, because OpenCode itself rewrites files in place (no rename),
/// which leaves the folder's mtime alone.</item>
/// <item>Timestamps are coarse, so a folder or file whose mtime is too close to the moment we read it is not
/// trusted ("racy git", as <see cref="SessionIndex"/>): the next call reads it again. Too close is 100 ms when the
/// mtime has a sub-second part (Linux stamps files from its coarse clock: one kernel tick, at most 10 ms), and 2 s
/// when it is whole seconds (filesystems with 1 s or 2 s timestamps). A session being written is re-read only for
/// that long; an older one is trusted at once, which is what keeps a warm call cheap.</item>
/// </list>
/// </summary>
internal sealed class MessageReadCache
{
    private const int MaxEntries = 400_000;
    private static readonly TimeSpan FineRacyWindow = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan CoarseRacyWindow = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, Entry> files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Listing> listings = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<JsonObject, Converted> converted = new();

    /// <summary>A parsed file, with the keys read from it once (its id, its <c>time.created</c>), since reading a
    /// value from parsed JSON allocates a new string each time. <paramref name="Trusted"/>: its mtime was older than
    /// the racy window when read.</summary>
    private sealed record Entry(long Ticks, long Length, bool Trusted, JsonObject Value, string? Id, long Created)
    {
        /// <summary>For a message: its part folder, once asked for.</summary>
        public string? PartDir { get; set; }
    }

    /// <summary>The <c>.json</c> files of a folder; reused only when <paramref name="Trusted"/> and the folder's
    /// mtime is still <paramref name="DirTicks"/>.</summary>
    private sealed record Listing(long DirTicks, bool Trusted, string[] Paths);

    private sealed record Converted(IReadOnlyList<JsonObject> Parts, ContextMessage? Message);

    private readonly record struct MessageKey(long Created, string? Id) : IComparable<MessageKey>
    {
        public int CompareTo(MessageKey other)
        {
            int c = Created.CompareTo(other.Created);
            return c != 0 ? c : string.CompareOrdinal(Id, other.Id);
        }
    }

    public IReadOnlyList<MessageWithParts> ListMessages(SessionStore store, string sessionId)
    {
        _ = store.GetSession(sessionId); // validates the id; SessionNotFound as the store says it
        if (files.Count > MaxEntries || listings.Count > MaxEntries)
        {
            files.Clear();
            listings.Clear();
        }

        using var root = FileStamps.OpenRoot(store.Layout.Storage);
        var infos = ReadDir(root, store.Layout.MessageDir(sessionId));
        // SessionStore.CompareMessages's order (created, then id), with the keys the cache read once.
        var keys = new MessageKey[infos.Count];
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = new MessageKey(infos[i].Created, infos[i].Id);
        }

        var sorted = infos.ToArray();
        Array.Sort(keys, sorted);
        var result = new List<MessageWithParts>(sorted.Length);
        foreach (var info in sorted)
        {
            info.PartDir ??= store.Layout.PartDir(info.Id ?? "");
            var parts = ReadDir(root, info.PartDir);
            if (parts.Count > 1)
            {
                parts.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
            }

            var values = new JsonObject[parts.Count];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = parts[i].Value;
            }

            result.Add(new MessageWithParts(info.Value, values));
        }

        return result;
    }

    /// <summary>The model conversion of <paramref name="m"/>, reused while its info and parts are the same objects.</summary>
    public ContextMessage? Convert(MessageWithParts m, string source)
    {
        if (converted.TryGetValue(m.Info, out var c) && SameParts(c.Parts, m.Parts))
        {
            return c.Message is null || c.Message.Source == source ? c.Message : c.Message with { Source = source };
        }

        var cm = ContextBuilder.Convert(m, source);
        converted.AddOrUpdate(m.Info, new Converted(m.Parts, cm));
        return cm;
    }

    private static bool SameParts(IReadOnlyList<JsonObject> a, IReadOnlyList<JsonObject> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (int i = 0; i < a.Count; i++)
        {
            if (!ReferenceEquals(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }

    private List<Entry> ReadDir(StampRoot root, string dir)
    {
        // The clock is read before the stat: anything written after it gets a later mtime than one we trust.
        DateTime now = DateTime.UtcNow;
        var stamp = root.Of(dir);
        if (!stamp.Exists || !stamp.IsDirectory)
        {
            listings.TryRemove(dir, out _);
            return [];
        }

        bool listed = false;
        if (!listings.TryGetValue(dir, out var listing) || !listing.Trusted || listing.DirTicks != stamp.MtimeTicks)
        {
            var paths = new List<string>();
            try
            {
                foreach (string path in Directory.EnumerateFiles(dir, "*.json"))
                {
                    paths.Add(path);
                }
            }
            catch (DirectoryNotFoundException)
            {
                listings.TryRemove(dir, out _);
                return []; // removed since the stat
            }

            listing = new Listing(stamp.MtimeTicks, Settled(new DateTime(stamp.MtimeTicks, DateTimeKind.Utc), now), [.. paths]);
            listings[dir] = listing;
            listed = true;
        }

        var list = new List<Entry>(listing.Paths.Length);
        foreach (string path in listing.Paths)
        {
            var (entry, gone) = Read(root, path, now);
            if (entry is not null)
            {
                list.Add(entry);
            }
            else if (gone && !listed)
            {
                // Gone although the folder's mtime said nothing changed (a clock set back, a filesystem without
                // folder mtimes): list it again next time rather than trust the listing.
                listings.TryRemove(dir, out _);
            }
        }

        return list;
    }

    /// <summary>True when a later change can no longer get the same mtime as <paramref name="mtime"/>.</summary>
    private static bool Settled(DateTime mtime, DateTime now) =>
        now - mtime > (mtime.Ticks % TimeSpan.TicksPerSecond != 0 ? FineRacyWindow : CoarseRacyWindow);

    /// <summary>The parsed file, from the cache while its mtime and size are the ones we parsed; no value when it
    /// is gone (<c>Gone</c>) or unreadable.</summary>
    private (Entry? Entry, bool Gone) Read(StampRoot root, string path, DateTime now)
    {
        var stamp = root.Of(path);
        if (!stamp.Exists || stamp.IsDirectory)
        {
            files.TryRemove(path, out _);
            return (null, true); // removed while we walked
        }

        long ticks = stamp.MtimeTicks;
        long length = stamp.Length;
        if (files.TryGetValue(path, out var e) && e.Trusted && e.Ticks == ticks && e.Length == length)
        {
            return (e, false);
        }

        JsonObject? value;
        try
        {
            value = SessionStore.ReadObject(path);
        }
        catch (StoreCorruptException)
        {
            return (null, false); // the store warns about it on its own reads; the model never sees it
        }

        if (value is null)
        {
            return (null, true);
        }

        // A file re-read with the same mtime and size keeps its old object, so the message's conversion (and its token
        // counts) is reused unless the content really changed.
        if (e is not null && e.Ticks == ticks && e.Length == length && JsonNode.DeepEquals(e.Value, value))
        {
            value = e.Value;
        }

        var entry = new Entry(ticks, length, Settled(new DateTime(ticks, DateTimeKind.Utc), now), value, ContextBuilder.Str(value["id"]), SessionStore.Created(value));
        files[path] = entry;
        return (entry, false);
    }
}
