using System.Collections.Concurrent;
using System.Text;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>What we last saw of a file: size, mtime and kind. <see cref="Ticks"/> of -1 means "racy": the file was
/// modified too close to when we looked, so its next look always re-hashes it (git's "racy clean" rule).</summary>
internal readonly record struct FileStamp(long Size, long Ticks, int Kind)
{
    public const int Plain = 0;
    public const int Exec = 1;
    public const int Link = 2;
}

/// <summary>The in-process stat cache of one shadow repo (see <see cref="SnapshotLease.TrackAsync"/>).</summary>
internal sealed class StatCache
{
    public Dictionary<string, FileStamp> Tracked { get; } = new(StringComparer.Ordinal);

    public HashSet<string> IndexDirs { get; } = new(StringComparer.Ordinal);

    public HashSet<string> IgnoredDirs { get; } = new(StringComparer.Ordinal);

    public HashSet<string> IgnoredFiles { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, FileStamp> BigFiles { get; } = new(StringComparer.Ordinal);

    public (long Length, long Ticks) IndexStamp { get; set; }

    public void AddIndexDirs(string rel)
    {
        for (int i = rel.LastIndexOf('/'); i > 0; i = rel.LastIndexOf('/', i - 1))
        {
            if (!IndexDirs.Add(rel[..i]))
            {
                break;
            }
        }
    }
}

/// <summary>
/// The fast path of a snapshot. A warm track walks the worktree in-process and compares each file's size,
/// mtime and mode with what it saw last time; only the files that differ (plus new and deleted ones) go to
/// <c>git update-index</c>, and <c>git write-tree</c> reuses git's cached subtrees. git still hashes every file it is
/// given, so attributes, symlinks and modes are git's own and the tree id is exactly what <c>git add -A</c> gives.
/// Anything unusual (a .gitignore or .gitattributes changed, a nested repository appeared, the index was written by
/// someone else, such as OpenCode) falls back to the full <c>git add -A</c>, which rebuilds the cache.
/// </summary>
public sealed partial class SnapshotLease
{
    private static readonly ConcurrentDictionary<string, StatCache> Caches = new(StringComparer.Ordinal);

    private static int fastTracks;

    /// <summary>How many tracks took the fast path in this process (for tests).</summary>
    internal static int FastTracks => Volatile.Read(ref fastTracks);

    /// <summary>Files modified this close to a look are re-hashed next time (mtime granularity and racy writers).</summary>
    private static readonly long RacyTicks = TimeSpan.FromSeconds(2).Ticks;

    private string CacheKey => store.GitDir + "\0" + store.WorkTree;

    private StatCache? WarmCache() =>
        Caches.TryGetValue(CacheKey, out var c) && c.IndexStamp == IndexStamp() ? c : null;

    private (long, long) IndexStamp()
    {
        var fi = new FileInfo(Path.Combine(store.GitDir, "index"));
        return fi.Exists ? (fi.Length, fi.LastWriteTimeUtc.Ticks) : (-1, -1);
    }

    private sealed class Walk
    {
        public List<string> Changed { get; } = [];

        public Dictionary<string, FileStamp> Seen { get; } = new(StringComparer.Ordinal);

        public List<(string Rel, FileStamp Stamp)> NewFiles { get; } = [];

        public List<string> NewIgnoredDirs { get; } = [];

        public List<string> NewIgnoredFiles { get; } = [];

        public bool NeedFull { get; set; }
    }

    private async Task<string> FullTrackWithCacheAsync(CancellationToken ct)
    {
        Caches.TryRemove(CacheKey, out _);
        // Look first, hash second: a file that changes after our look has a newer stamp than the cached one,
        // so the next track re-hashes it. Never the other way round.
        var cache = new StatCache();
        var walk = await WalkAsync(cache, ct).ConfigureAwait(false);
        string tree = await FullTrackAsync(ct).ConfigureAwait(false);
        if (walk.NeedFull)
        {
            return tree; // a nested repository: git add -A handles it, the fast path does not
        }

        var indexed = (await Git.RunTextAsync(["ls-files", "-z"], ct).ConfigureAwait(false))
            .Split('\0', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var rel in indexed)
        {
            cache.AddIndexDirs(rel);
        }

        foreach (var (rel, stamp) in walk.NewFiles)
        {
            if (indexed.Contains(rel))
            {
                cache.Tracked[rel] = stamp;
            }
            else if (stamp.Size > store.Options.MaxUntrackedFileBytes)
            {
                cache.BigFiles[rel] = stamp;
            }

            // Otherwise git could not add it (unreadable): it stays "new" and is tried again next time.
        }

        cache.IgnoredDirs.UnionWith(walk.NewIgnoredDirs);
        cache.IgnoredFiles.UnionWith(walk.NewIgnoredFiles);
        cache.IndexStamp = IndexStamp();
        Caches[CacheKey] = cache;
        return tree;
    }

    private async Task<string?> FastTrackAsync(StatCache cache, CancellationToken ct)
    {
        var walk = await WalkAsync(cache, ct).ConfigureAwait(false);
        var deleted = cache.Tracked.Keys.Where(k => !walk.Seen.ContainsKey(k)).ToList();
        var newSmall = new List<(string Rel, FileStamp Stamp)>();
        HashSet<string>? userTracked = null;
        foreach (var (rel, stamp) in walk.NewFiles)
        {
            if (stamp.Size > store.Options.MaxUntrackedFileBytes)
            {
                userTracked ??= UserTrackedPaths();
                if (!userTracked.Contains(rel))
                {
                    cache.BigFiles[rel] = stamp;
                    continue;
                }
            }

            newSmall.Add((rel, stamp));
        }

        bool rulesChanged = walk.Changed.Concat(deleted).Concat(newSmall.Select(n => n.Rel)).Any(IsRulesFile);
        if (walk.NeedFull || rulesChanged)
        {
            return null;
        }

        if (!store.IsGitProject)
        {
            int total = cache.Tracked.Count + newSmall.Count;
            long bytes = newSmall.Sum(n => n.Stamp.Size);
            if (total > store.Options.MaxFiles || bytes > store.Options.MaxNewBytes)
            {
                return null; // the full track reports the limit with its clear message
            }
        }

        var paths = walk.Changed.Concat(deleted).Concat(newSmall.Select(n => n.Rel)).ToList();
        if (paths.Count > 0)
        {
            var input = new StringBuilder();
            foreach (var p in paths)
            {
                input.Append(p).Append('\0');
            }

            var (code, _, stderr) = await Git.RunRawAsync(["update-index", "--add", "--remove", "-z", "--stdin"], ct, Encoding.UTF8.GetBytes(input.ToString())).ConfigureAwait(false);
            if (code != 0)
            {
                Caches.TryRemove(CacheKey, out _);
                return null; // a lock, an unreadable file, a path git refuses: the full track sorts it out (or says why)
            }
        }

        string tree = (await Git.RunTextAsync(["write-tree"], ct).ConfigureAwait(false)).Trim();
        foreach (var rel in walk.Changed)
        {
            cache.Tracked[rel] = walk.Seen[rel];
        }

        foreach (var rel in deleted)
        {
            cache.Tracked.Remove(rel);
        }

        foreach (var (rel, stamp) in newSmall)
        {
            cache.Tracked[rel] = stamp;
            cache.BigFiles.Remove(rel);
            cache.AddIndexDirs(rel);
        }

        cache.IgnoredDirs.UnionWith(walk.NewIgnoredDirs);
        cache.IgnoredFiles.UnionWith(walk.NewIgnoredFiles);
        cache.IndexStamp = IndexStamp();
        Interlocked.Increment(ref fastTracks);
        return tree.Length == 40 ? tree : null;
    }

    private static bool IsRulesFile(string rel)
    {
        string name = rel[(rel.LastIndexOf('/') + 1)..];
        return name is ".gitignore" or ".gitattributes";
    }

    /// <summary>Walks the worktree: files the cache knows are compared by stamp; anything unknown is classified with
    /// one <c>git check-ignore</c> per level of new folders. Ignored folders are never entered.</summary>
    private async Task<Walk> WalkAsync(StatCache cache, CancellationToken ct)
    {
        var walk = new Walk();
        long now = DateTime.UtcNow.Ticks;
        var dirs = new List<string> { string.Empty };
        while (dirs.Count > 0)
        {
            var unknownDirs = new List<string>();
            var unknownFiles = new List<(string Rel, FileStamp Stamp)>();
            var queue = new Stack<string>(dirs);
            while (queue.Count > 0)
            {
                ct.ThrowIfCancellationRequested();
                string dir = queue.Pop();
                IEnumerable<FileSystemInfo> entries;
                try
                {
                    entries = new DirectoryInfo(dir.Length == 0 ? store.WorkTree : store.ToAbsolute(dir)).EnumerateFileSystemInfos();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    walk.NeedFull = true; // let git report or skip it
                    continue;
                }

                foreach (var e in entries)
                {
                    string rel = dir.Length == 0 ? e.Name : dir + "/" + e.Name;
                    bool isLink = e.Attributes.HasFlag(FileAttributes.ReparsePoint);
                    if (e is DirectoryInfo && !isLink)
                    {
                        if (e.Name == ".git")
                        {
                            if (dir.Length > 0 && !cache.IndexDirs.Contains(dir))
                            {
                                walk.NeedFull = true; // a nested repository in a new folder: git records a gitlink
                            }

                            continue;
                        }

                        if (cache.IndexDirs.Contains(rel))
                        {
                            queue.Push(rel);
                        }
                        else if (!cache.IgnoredDirs.Contains(rel))
                        {
                            unknownDirs.Add(rel);
                        }

                        continue;
                    }

                    if (e.Name == ".git")
                    {
                        walk.NeedFull |= dir.Length > 0; // a submodule or linked worktree's .git file
                        continue;
                    }

                    var stamp = Stamp(e, isLink, now);
                    walk.Seen[rel] = stamp;
                    if (cache.Tracked.TryGetValue(rel, out var old))
                    {
                        if (old != stamp || old.Ticks < 0)
                        {
                            walk.Changed.Add(rel);
                        }
                    }
                    else if (cache.BigFiles.TryGetValue(rel, out var big))
                    {
                        if (big != stamp)
                        {
                            unknownFiles.Add((rel, stamp));
                        }
                    }
                    else if (!cache.IgnoredFiles.Contains(rel))
                    {
                        unknownFiles.Add((rel, stamp));
                    }
                }
            }

            dirs = [];
            if (unknownDirs.Count == 0 && unknownFiles.Count == 0)
            {
                break;
            }

            var ignored = await CheckIgnoreAsync(unknownDirs.Select(d => d + "/").Concat(unknownFiles.Select(f => f.Rel)), ct).ConfigureAwait(false);
            foreach (var d in unknownDirs)
            {
                if (ignored.Contains(d + "/"))
                {
                    walk.NewIgnoredDirs.Add(d);
                }
                else
                {
                    cache.IndexDirs.Add(d); // walk it from now on (it has or will have snapshotted files)
                    dirs.Add(d);
                }
            }

            foreach (var f in unknownFiles)
            {
                if (ignored.Contains(f.Rel))
                {
                    walk.NewIgnoredFiles.Add(f.Rel);
                    walk.Seen.Remove(f.Rel);
                }
                else
                {
                    walk.NewFiles.Add(f);
                }
            }
        }

        return walk;
    }

    private static FileStamp Stamp(FileSystemInfo e, bool isLink, long now)
    {
        long ticks = e.LastWriteTimeUtc.Ticks;
        int kind = isLink ? FileStamp.Link
            : !OperatingSystem.IsWindows() && (e.UnixFileMode & UnixFileMode.UserExecute) != 0 ? FileStamp.Exec : FileStamp.Plain;
        long size = e is FileInfo fi && !isLink ? fi.Length : 0;

        // A symlink's own mtime is not reliably what the enumeration reports: always let git re-read links.
        return new FileStamp(size, isLink || now - ticks < RacyTicks ? -1 : ticks, kind);
    }

    private async Task<HashSet<string>> CheckIgnoreAsync(IEnumerable<string> paths, CancellationToken ct)
    {
        var input = new StringBuilder();
        foreach (var p in paths)
        {
            input.Append(p).Append('\0');
        }

        var result = new HashSet<string>(StringComparer.Ordinal);
        if (input.Length == 0)
        {
            return result;
        }

        var (code, stdout, stderr) = await Git.RunRawAsync(["check-ignore", "-z", "--stdin"], ct, Encoding.UTF8.GetBytes(input.ToString())).ConfigureAwait(false);
        if (code is not (0 or 1))
        {
            throw new SnapshotUnavailableException($"Cannot snapshot {store.WorkTree}: git check-ignore failed: {stderr.Trim()}");
        }

        foreach (var p in Encoding.UTF8.GetString(stdout).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            result.Add(p);
        }

        return result;
    }
}
