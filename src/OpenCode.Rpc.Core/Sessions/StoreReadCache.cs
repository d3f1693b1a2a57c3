using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>
/// Parsed message and part files, kept while each file's size and mtime are unchanged, so <c>message/list</c>,
/// export, fork and <c>session/context</c> of a long session cost a stat per folder and per file instead of a read
/// and a parse of thousands of files. The objects it hands out are shared by every caller: nobody may change them
/// (clone first, as fork and the export sanitizer do).
/// <list type="bullet">
/// <item>Folder listings are kept while the folder's mtime is unchanged: adding, renaming or removing an entry
/// changes it. Listing a folder costs several times a stat, and a 2,000-message session has 2,001 folders.</item>
/// <item>Every file is still stat'ed on every read, because OpenCode itself rewrites files in place (no rename),
/// which leaves the folder's mtime alone.</item>
/// <item>Timestamps are coarse, so a folder or file whose mtime is too close to the moment we read it is not
/// trusted ("racy git", as <see cref="SessionIndex"/>): the next read parses it again. Too close is 100 ms when the
/// mtime has a sub-second part (Linux stamps files from its coarse clock: one kernel tick, at most 10 ms), and 2 s
/// when it is whole seconds (filesystems with 1 s or 2 s timestamps).</item>
/// <item>Memory is bounded by the bytes of the files kept (<see cref="CapBytes"/>), least recently used out first, and a
/// file larger than <see cref="MaxFileBytes"/> is never kept: a 2 MB tool output would pin megabytes for one
/// export, and a session of them would push out every small file worth keeping.</item>
/// </list>
/// </summary>
internal sealed class StoreReadCache(long capBytes, long maxFileBytes, Action<string> warn)
{
    /// <summary>What a server keeps by default: ~80,000 typical small files. Parsed, a file takes a few times its
    /// size on the heap, so this is about a hundred MB at worst.</summary>
    public const long DefaultCapBytes = 32L * 1024 * 1024;

    public const long DefaultMaxFileBytes = 256 * 1024;

    private const int MaxListings = 200_000;

    /// <summary>Below this many files a folder is read on the calling thread (the parallel loop costs more).</summary>
    internal const int ParallelThreshold = 64;

    private static readonly TimeSpan FineRacyWindow = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan CoarseRacyWindow = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, Entry> files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Listing> listings = new(StringComparer.Ordinal);
    private readonly Lock trimGate = new();
    private long bytes; // the lengths of the kept files; approximate between trims, exact after one
    private long clock; // one tick per folder read: the "when" of least recently used

    public long CapBytes => capBytes;

    public long MaxFileBytes => maxFileBytes;

    /// <summary>The bytes of the files kept now (exact after a trim; tests read it).</summary>
    public long KeptBytes => Interlocked.Read(ref bytes);

    /// <summary>A parsed file, with the keys read from it once (its id, its <c>time.created</c>), since reading a value
    /// from parsed JSON allocates a new string each time. <paramref name="Trusted"/>: its mtime was older than the
    /// racy window when read.</summary>
    internal sealed record Entry(long Ticks, long Length, bool Trusted, JsonObject Value, string? Id, long Created)
    {
        /// <summary>For a message: its part folder, once asked for.</summary>
        public string? PartDir { get; set; }

        /// <summary>The <see cref="clock"/> of its last read. Written without a lock: eviction only needs an
        /// approximate order.</summary>
        public long LastUse;
    }

    /// <summary>The <c>.json</c> files of a folder; reused only when <paramref name="Trusted"/> and the folder's
    /// mtime is still <paramref name="DirTicks"/>.</summary>
    private sealed record Listing(long DirTicks, bool Trusted, IReadOnlyList<string> Paths);

    /// <summary>Every readable <c>.json</c> object in <paramref name="dir"/>, in no particular order (none when the
    /// folder does not exist). Unreadable files are reported through the warning callback and skipped.</summary>
    public List<Entry> ReadDir(StampRoot root, string dir)
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
            if (SessionStore.ListJsonFiles(dir) is not { } paths)
            {
                listings.TryRemove(dir, out _);
                return []; // removed since the stat
            }

            if (listings.Count >= MaxListings)
            {
                listings.Clear(); // a listing is only paths, but a data dir of a million folders must not keep them all
            }

            listing = new Listing(stamp.MtimeTicks, Settled(stamp.MtimeTicks, now), paths);
            listings[dir] = listing;
            listed = true;
        }

        var all = listing.Paths;
        var read = new Entry?[all.Count];
        long use = Interlocked.Increment(ref clock);
        int gone = 0;
        // A long session's message folder: parsing what changed dominates, so read on every core.
        IoParallel.For(all.Count, i => read[i] = Read(root, all[i], now, use, ref gone), sequentialBelow: ParallelThreshold);

        if (gone != 0 && !listed)
        {
            // Gone although the folder's mtime said nothing changed (a clock set back, a filesystem without folder
            // mtimes): list it again next time rather than trust the listing.
            listings.TryRemove(dir, out _);
        }

        var list = new List<Entry>(read.Length);
        foreach (var e in read)
        {
            if (e is not null)
            {
                list.Add(e);
            }
        }

        TrimIfOver();
        return list;
    }

    /// <summary>True when a later change can no longer get the same mtime as <paramref name="mtimeTicks"/>.</summary>
    private static bool Settled(long mtimeTicks, DateTime now) =>
        now - new DateTime(mtimeTicks, DateTimeKind.Utc) > (mtimeTicks % TimeSpan.TicksPerSecond != 0 ? FineRacyWindow : CoarseRacyWindow);

    /// <summary>The parsed file, kept while its mtime and size are the ones we parsed; null when it is gone (counted
    /// in <paramref name="gone"/>) or unreadable.</summary>
    private Entry? Read(StampRoot root, string path, DateTime now, long use, ref int gone)
    {
        if (capBytes <= 0)
        {
            return ReadUncached(path, use, ref gone);
        }

        var stamp = root.Of(path);
        if (!stamp.Exists || stamp.IsDirectory)
        {
            Forget(path);
            Interlocked.Increment(ref gone);
            return null; // removed while we walked
        }

        long ticks = stamp.MtimeTicks;
        long length = stamp.Length;
        if (files.TryGetValue(path, out var e) && e.Trusted && e.Ticks == ticks && e.Length == length)
        {
            e.LastUse = use;
            return e;
        }

        if (Parse(path, out _, ref gone) is not { } value)
        {
            return null;
        }

        // A file re-read with the same mtime and size keeps its old object, so what callers derived from it (the
        // model conversion of session/context, with its token counts) is reused unless the content really changed.
        if (e is not null && e.Ticks == ticks && e.Length == length && JsonNode.DeepEquals(e.Value, value))
        {
            value = e.Value;
        }

        var entry = new Entry(ticks, length, Settled(ticks, now), value, Str(value["id"]), SessionStore.Created(value)) { LastUse = use };
        if (length <= maxFileBytes && length <= capBytes)
        {
            Keep(path, entry);
        }
        else
        {
            Forget(path);
        }

        return entry;
    }

    /// <summary>A cache that keeps nothing (a CLI verb reads each file once) has no stamp to compare, so it skips the
    /// <c>statx</c>: a file that is gone reads as null.</summary>
    private Entry? ReadUncached(string path, long use, ref int gone) =>
        Parse(path, out int length, ref gone) is { } value
            ? new Entry(0, length, false, value, Str(value["id"]), SessionStore.Created(value)) { LastUse = use }
            : null;

    /// <summary>The file parsed; null, and forgotten, when it is gone (counted in <paramref name="gone"/>) or does not
    /// parse (reported through the warning callback).</summary>
    private JsonObject? Parse(string path, out int length, ref int gone)
    {
        JsonObject? value;
        try
        {
            value = SessionStore.ReadObject(path, out length);
        }
        catch (StoreCorruptException ex)
        {
            Forget(path);
            warn($"skipping {ex.Message}");
            length = 0;
            return null;
        }

        if (value is null)
        {
            Forget(path);
            Interlocked.Increment(ref gone);
        }

        return value;
    }

    private static string? Str(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private void Keep(string path, Entry entry)
    {
        Entry? old = null;
        files.AddOrUpdate(path, entry, (_, o) =>
        {
            old = o; // the last call is the one that won
            return entry;
        });
        Interlocked.Add(ref bytes, entry.Length - (old?.Length ?? 0));
    }

    private void Forget(string path)
    {
        if (files.TryRemove(path, out var old))
        {
            Interlocked.Add(ref bytes, -old.Length);
        }
    }

    /// <summary>Over the cap: drops the least recently read files down to three quarters of it, so a trim (a sort of
    /// every entry) happens once per quarter of the cap read, not at every file.</summary>
    private void TrimIfOver()
    {
        if (Interlocked.Read(ref bytes) <= capBytes)
        {
            return;
        }

        lock (trimGate)
        {
            var all = files.ToArray();
            long total = 0;
            foreach (var kv in all)
            {
                total += kv.Value.Length;
            }

            if (total > capBytes)
            {
                Array.Sort(all, (a, b) => a.Value.LastUse.CompareTo(b.Value.LastUse));
                long target = capBytes / 4 * 3;
                foreach (var kv in all)
                {
                    if (total <= target)
                    {
                        break;
                    }

                    if (files.TryRemove(kv))
                    {
                        total -= kv.Value.Length;
                    }
                }
            }

            // Recounted here, so concurrent Keeps of one path cannot make the counter drift for long.
            Interlocked.Exchange(ref bytes, total);
        }
    }
}
