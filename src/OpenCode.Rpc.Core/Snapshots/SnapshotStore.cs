using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using LibGit2Sharp;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>Limits of the snapshot store.</summary>
public sealed record SnapshotOptions
{
    /// <summary>Files not tracked by the user's git (or any file, outside git) above this size are not snapshotted,
    /// as OpenCode does. A file the user's git tracks is always snapshotted.</summary>
    public long MaxUntrackedFileBytes { get; init; } = 2L * 1024 * 1024;

    /// <summary>Non-git projects only: the most files a snapshot may hold. A home directory fails fast, clearly.</summary>
    public int MaxFiles { get; init; } = 100_000;

    /// <summary>Non-git projects only: the most bytes one snapshot may add.</summary>
    public long MaxNewBytes { get; init; } = 1L << 30;

    /// <summary>The in-process engine (Linux): after the first track, snapshots come from a model of the worktree kept
    /// current by inotify, equal to what git would write (see WorktreeModel.cs). Off: every track is a plain
    /// <c>git add -A</c> + <c>git write-tree</c>.</summary>
    public bool StatCache { get; init; } = true;

    /// <summary>Keep the engine's model current with inotify (a warm track then costs what changed). Off, or on a
    /// network filesystem, every track walks the tree and compares stat data, as git does.</summary>
    public bool Inotify { get; init; } = true;

    /// <summary>Diagnostics: why a snapshot went to the git CLI rather than the in-process engine.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>A path's state in a snapshot tree: git mode (<c>100644</c>, <c>100755</c>, <c>120000</c>, …) and blob id.</summary>
public sealed record EntryState(string Mode, string Oid)
{
    public bool IsBlob => Mode is "100644" or "100755" or "120000";
}

/// <summary>One file's change between two snapshots, as OpenCode's <c>Snapshot.FileDiff</c> (v1.x).</summary>
public sealed record FileDiffInfo(string File, string Before, string After, int Additions, int Deletions, string Status);

/// <summary>
/// The shadow git repository of one project worktree (reference §5.1): a separate git dir at
/// <c>&lt;data&gt;/snapshot/&lt;projectID&gt;</c> (outside git: <c>&lt;data&gt;/snapshot/global/&lt;sha1(dir)&gt;</c>) whose
/// work tree is the project. It never touches the user's <c>.git</c>: every command runs with <c>GIT_DIR</c> set to the
/// shadow dir. Snapshots are git tree hashes, identical to what OpenCode records, so either tool can undo the
/// other's steps. Two processes on one project take turns through an flock'd lock file.
/// </summary>
public sealed class SnapshotStore
{
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> LocalLocks = new(StringComparer.Ordinal);

    public SnapshotStore(string gitDir, string workTree, string lockDir, string? userGitDir, SnapshotOptions? options = null)
    {
        GitDir = Path.GetFullPath(gitDir);
        WorkTree = Path.TrimEndingDirectorySeparator(Path.GetFullPath(workTree));
        LockFile = Path.Combine(lockDir, "snapshot-" + Sha1Hex(GitDir)[..16] + ".lock");
        UserGitDir = userGitDir;
        Options = options ?? new SnapshotOptions();
        Git = new GitCli(GitDir, WorkTree);
    }

    public string GitDir { get; }

    public string WorkTree { get; }

    /// <summary>The user's git dir (the common one, for linked worktrees); null outside git. Only ever read.</summary>
    public string? UserGitDir { get; }

    public SnapshotOptions Options { get; }

    public bool IsGitProject => UserGitDir is not null;

    internal string LockFile { get; }

    internal GitCli Git { get; }

    /// <summary>True once the shadow repository has been created.</summary>
    public bool Exists => File.Exists(Path.Combine(GitDir, "HEAD"));

    public static string GitDirFor(StoreLayout layout, ProjectInfo project) =>
        project.IsGit
            ? Path.Combine(layout.DataDir, "snapshot", project.Id)
            : Path.Combine(layout.DataDir, "snapshot", ProjectInfo.GlobalId, Sha1Hex(WorkTreeFor(project)));

    /// <summary>The folder snapshots cover: the checkout the directory is in, or (outside git) the directory itself.</summary>
    public static string WorkTreeFor(ProjectInfo project) => project.IsGit ? project.Sandbox : project.Directory;

    public static SnapshotStore ForProject(StoreLayout layout, ProjectInfo project, SnapshotOptions? options = null) =>
        new(GitDirFor(layout, project), WorkTreeFor(project), layout.LockDir, project.IsGit ? UserCommonGitDir(project.Sandbox) : null, options);

    /// <summary>Takes the shadow repo's lock (in-process and cross-process); the lease carries every operation.</summary>
    public async Task<SnapshotLease> AcquireAsync(CancellationToken ct)
    {
        var local = LocalLocks.GetOrAdd(LockFile, _ => new SemaphoreSlim(1, 1));
        await local.WaitAsync(ct).ConfigureAwait(false);
        int fd = -1;
        try
        {
            if (Native.IsUnix)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(LockFile)!);
                // Blocking flock off the caller's thread: another process holds it only for one snapshot operation.
                fd = await Task.Run(() => Native.LockExclusive(LockFile), ct).ConfigureAwait(false);
            }
        }
        catch
        {
            local.Release();
            throw;
        }

        return new SnapshotLease(this, local, fd);
    }

    /// <summary>Snapshots the worktree now; returns the git tree hash.</summary>
    public async Task<string> TrackAsync(CancellationToken ct)
    {
        using var lease = await AcquireAsync(ct).ConfigureAwait(false);
        return await lease.TrackAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Files (absolute paths) that differ between <paramref name="hash"/> and the worktree now, as
    /// OpenCode's <c>Snapshot.patch</c>. Also returns the new snapshot.</summary>
    public async Task<(string Now, IReadOnlyList<string> Files)> PatchAsync(string hash, CancellationToken ct)
    {
        using var lease = await AcquireAsync(ct).ConfigureAwait(false);
        lease.RequireTrees(hash);
        string now = await lease.TrackAsync(ct).ConfigureAwait(false);
        var rel = await lease.ChangedAsync(hash, now, ct).ConfigureAwait(false);
        return (now, rel.Select(ToAbsolute).ToList());
    }

    public string ToAbsolute(string rel) => Path.Combine(WorkTree, rel.Replace('/', Path.DirectorySeparatorChar));

    internal static string Sha1Hex(string s) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(s)));

    /// <summary>The git dir that holds <c>info/exclude</c> for a checkout: <c>.git</c>, or for a linked worktree the
    /// common dir its <c>gitdir:</c> file leads to.</summary>
    private static string? UserCommonGitDir(string sandbox)
    {
        string dotGit = Path.Combine(sandbox, ".git");
        try
        {
            if (Directory.Exists(dotGit))
            {
                return dotGit;
            }

            if (!File.Exists(dotGit))
            {
                return null;
            }

            string text = File.ReadAllText(dotGit).Trim();
            if (!text.StartsWith("gitdir:", StringComparison.Ordinal))
            {
                return null;
            }

            string p = text["gitdir:".Length..].Trim();
            string gitDir = Path.GetFullPath(Path.IsPathRooted(p) ? p : Path.Combine(sandbox, p));
            string common = Path.Combine(gitDir, "commondir");
            if (File.Exists(common))
            {
                string c = File.ReadAllText(common).Trim();
                return Path.GetFullPath(Path.IsPathRooted(c) ? c : Path.Combine(gitDir, c));
            }

            return gitDir;
        }
        catch (IOException)
        {
            return null;
        }
    }
}

/// <summary>The operations on a shadow repo, valid while its lock is held. Dispose releases the lock.</summary>
public sealed partial class SnapshotLease : IDisposable
{
    private readonly SnapshotStore store;
    private readonly SemaphoreSlim local;
    private readonly int fd;
    private Repository? repo;
    private int disposed;

    internal SnapshotLease(SnapshotStore store, SemaphoreSlim local, int fd)
    {
        this.store = store;
        this.local = local;
        this.fd = fd;
    }

    public SnapshotStore Store => store;

    internal GitCli Git => store.Git;

    /// <summary>Snapshots the worktree: <c>git add -A</c> (honouring .gitignore and the user's info/exclude, skipping
    /// big untracked files) then <c>git write-tree</c>. Creates the shadow repo on first use.</summary>
    public async Task<string> TrackAsync(CancellationToken ct)
    {
        await EnsureInitAsync(ct).ConfigureAwait(false);
        bool excludeChanged = SyncExclude();
        if (!store.Options.StatCache || !OperatingSystem.IsLinux() || !LinuxFs.Available)
        {
            return await FullTrackAsync(ct).ConfigureAwait(false);
        }

        return await WorktreeModel.TrackAsync(this, excludeChanged, store.Options.Log ?? (_ => { }), ct).ConfigureAwait(false);
    }

    /// <summary>The whole worktree through git: <c>git add -A</c> then <c>git write-tree</c>.</summary>
    internal async Task<string> FullTrackAsync(CancellationToken ct)
    {
        var excluded = await ListExcludedAsync(ct).ConfigureAwait(false);
        var pathspecs = new StringBuilder(".\0");
        foreach (var rel in excluded)
        {
            pathspecs.Append(":(exclude,literal)").Append(rel).Append('\0');
        }

        string[] addArgs = ["add", "-A", "--ignore-errors", "--pathspec-from-file=-", "--pathspec-file-nul"];
        byte[] input = Encoding.UTF8.GetBytes(pathspecs.ToString());
        var (code, _, stderr) = await Git.RunRawAsync(addArgs, ct, input).ConfigureAwait(false);

        // OpenCode may share this shadow repo and hold its index.lock for a moment: wait our turn (git has no
        // lock wait of its own), and clear a lock a crashed git left behind.
        for (int attempt = 0; code == 128 && stderr.Contains("index.lock", StringComparison.Ordinal) && attempt < 50; attempt++)
        {
            if (!StaleIndexLockRemoved())
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }

            (code, _, stderr) = await Git.RunRawAsync(addArgs, ct, input).ConfigureAwait(false);
        }

        // 1 = some files could not be read (--ignore-errors went on with the rest); anything else is fatal, and a
        // fatal add must never be followed by write-tree, which would return a stale snapshot.
        if (code is not (0 or 1))
        {
            throw new SnapshotUnavailableException($"Cannot snapshot {store.WorkTree}: {stderr.Trim()}");
        }

        string tree = (await Git.RunTextAsync(["write-tree"], ct).ConfigureAwait(false)).Trim();
        if (tree.Length != 40)
        {
            throw new SnapshotUnavailableException($"Cannot snapshot {store.WorkTree}: git write-tree returned '{tree}'.");
        }

        return tree;
    }

    /// <summary>Throws <see cref="SnapshotUnavailableException"/> naming every hash that is not a readable tree here.</summary>
    public void RequireTrees(params IEnumerable<string> hashes)
    {
        var missing = hashes.Distinct(StringComparer.Ordinal).Where(h => !TreeExists(h)).ToList();
        if (missing.Count > 0)
        {
            string where = store.Exists ? $"the snapshot store {store.GitDir}" : $"the snapshot store {store.GitDir}, which does not exist";
            throw new SnapshotUnavailableException(
                $"Cannot restore files: snapshot(s) {string.Join(", ", missing)} are missing from {where}. Nothing was changed.", null, missing);
        }
    }

    public bool TreeExists(string hash)
    {
        if (hash.Length != 40 || !hash.All(char.IsAsciiHexDigit) || !store.Exists)
        {
            return false;
        }

        try
        {
            return LookupTree(hash) is not null;
        }
        catch (LibGit2SharpException)
        {
            return false;
        }
    }

    // A revert asks for the same few trees and paths many times (the plan, the conflict check, the diff); trees and
    // blobs are immutable, so what one lease looked up it keeps.
    private readonly Dictionary<string, Tree> treeCache = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Tree, string Rel), EntryState?> entryCache = [];
    private readonly Dictionary<string, byte[]> blobCache = new(StringComparer.Ordinal);
    private long blobCacheBytes;

    private Tree? LookupTree(string hash)
    {
        if (!treeCache.TryGetValue(hash, out var t))
        {
            t = Repo.Lookup<Tree>(hash);
            if (t is not null)
            {
                treeCache[hash] = t; // a miss is not kept: the tree may be written later in this lease
            }
        }

        return t;
    }

    /// <summary>The state of <paramref name="rel"/> (forward slashes) in a tree; null when absent.</summary>
    public EntryState? Entry(string tree, string rel)
    {
        if (entryCache.TryGetValue((tree, rel), out var cached))
        {
            return cached;
        }

        var t = LookupTree(tree) ?? throw new SnapshotUnavailableException($"Snapshot {tree} is missing.", null, [tree]);
        TreeEntry? e;
        try
        {
            e = t[rel];
        }
        catch (LibGit2SharpException)
        {
            return null;
        }

        var state = e is null ? null : new EntryState(Convert.ToString((int)e.Mode, 8), e.Target.Sha);
        entryCache[(tree, rel)] = state;
        return state;
    }

    /// <summary>True when <paramref name="rel"/> is a folder in the tree (used to keep folders that existed then).</summary>
    public bool IsTree(string tree, string rel) => Entry(tree, rel) is { Mode: "40000" };

    /// <summary>A blob's content. Callers must not change the array (it may be cached for this lease).</summary>
    public byte[] ReadBlob(string oid)
    {
        if (blobCache.TryGetValue(oid, out var cached))
        {
            return cached;
        }

        var blob = Repo.Lookup<Blob>(oid) ?? throw new SnapshotUnavailableException($"Snapshot object {oid} is missing.", null, [oid]);
        using var s = blob.GetContentStream();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        byte[] bytes = ms.ToArray();
        if (bytes.Length <= 1 << 20 && blobCacheBytes + bytes.Length <= 64L << 20)
        {
            blobCache[oid] = bytes;
            blobCacheBytes += bytes.Length;
        }

        return bytes;
    }

    /// <summary>Paths (relative, forward slashes) that differ between two trees, renames split into delete + add:
    /// <c>git diff-tree -r --no-renames --name-only</c>, in its order, computed in process (a revert or a step's
    /// patch must not wait for a git process).</summary>
    public Task<IReadOnlyList<string>> ChangedAsync(string from, string to, CancellationToken ct)
    {
        IReadOnlyList<string> paths = from == to ? [] : TreeDiff(from, to, ct).Select(c => c.Path).ToList();
        return Task.FromResult(paths);
    }

    /// <summary>The unified diff between two trees (OpenCode's <c>revert.diff</c>), trimmed: libgit2's patch, which
    /// uses git's own xdiff (same hunks; the <c>index</c> lines abbreviate ids to 7 digits).</summary>
    public Task<string> DiffTextAsync(string from, string to, CancellationToken ct)
    {
        if (from == to)
        {
            return Task.FromResult(string.Empty);
        }

        var changes = TreeDiff(from, to, ct);
        if (changes.Count == 0)
        {
            return Task.FromResult(string.Empty);
        }

        if (changes.Any(c => c.Status == 'T'))
        {
            // libgit2 prints a type change (file to symlink) as a mode change without content; git prints the old
            // file's deletion and the new one's addition. Rare: let git print it.
            return GitDiffTextAsync(from, to, ct);
        }

        using var patch = Repo.Diff.Compare<Patch>(RequireTree(from), RequireTree(to), changes.Select(c => c.Path), ExactPaths, NoRenames);
        return Task.FromResult(patch.Content.Trim());
    }

    private async Task<string> GitDiffTextAsync(string from, string to, CancellationToken ct) =>
        (await Git.RunTextAsync(["diff", "--no-ext-diff", "--no-renames", "--no-color", from, to, "--", "."], ct).ConfigureAwait(false)).Trim();

    /// <summary>Per-file diffs with full before/after texts, as OpenCode's <c>Snapshot.diffFull</c>: the status of
    /// <c>--name-status</c> (A, D, anything else modified) and the counts of <c>--numstat</c> (0/0 for binary).</summary>
    public Task<IReadOnlyList<FileDiffInfo>> DiffFullAsync(string from, string to, CancellationToken ct)
    {
        if (from == to)
        {
            return Task.FromResult<IReadOnlyList<FileDiffInfo>>([]);
        }

        var changes = TreeDiff(from, to, ct);
        var result = new List<FileDiffInfo>(changes.Count);
        if (changes.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<FileDiffInfo>>(result);
        }

        var counts = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
        using (var patch = Repo.Diff.Compare<Patch>(RequireTree(from), RequireTree(to), changes.Select(c => c.Path), ExactPaths, NoRenames))
        {
            foreach (var e in patch)
            {
                // A type change comes as a deletion and an addition of one path: git counts both.
                var (a, d) = counts.GetValueOrDefault(e.Path.Replace('\\', '/'));
                counts[e.Path.Replace('\\', '/')] = e.IsBinaryComparison ? (a, d) : (a + e.LinesAdded, d + e.LinesDeleted);
            }
        }

        foreach (var (file, code) in changes)
        {
            string st = code switch { 'A' => "added", 'D' => "deleted", _ => "modified" };
            var (adds, dels) = code == 'T' ? (Lines(to, file), Lines(from, file)) : counts.GetValueOrDefault(file);
            result.Add(new FileDiffInfo(file, TextAt(from, file), TextAt(to, file), adds, dels, st));
        }

        return Task.FromResult<IReadOnlyList<FileDiffInfo>>(result);
    }

    private static readonly CompareOptions NoRenames = new() { Similarity = SimilarityOptions.None, ContextLines = 3, InterhunkLines = 0 };

    // Paths taken literally, never as pathspecs (a file named "a*b" must not match others).
    private static readonly ExplicitPathsOptions ExactPaths = new() { ShouldFailOnUnmatchedPath = false };

    private Tree RequireTree(string hash) =>
        LookupTree(hash) ?? throw new SnapshotUnavailableException($"Snapshot {hash} is missing.", null, [hash]);

    /// <summary>The files that differ between two trees, with git's status letter (A, D, M, T), in git's path order:
    /// libgit2's tree-to-tree diff (native: unchanged subtrees are skipped by id), renames not detected. A type change
    /// (file to symlink) is one path with T, as git reports it.</summary>
    internal List<(string Path, char Status)> TreeDiff(string from, string to, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var result = new List<(string Path, char Status)>();
        var at = new Dictionary<string, int>(StringComparer.Ordinal);
        using var changes = Repo.Diff.Compare<TreeChanges>(RequireTree(from), RequireTree(to), NoRenames);
        foreach (var c in changes)
        {
            string path = c.Path.Replace('\\', '/');
            char status = c.Status switch
            {
                ChangeKind.Added => 'A',
                ChangeKind.Deleted => 'D',
                ChangeKind.TypeChanged => 'T',
                _ => 'M',
            };
            if (at.TryGetValue(path, out int i))
            {
                result[i] = (path, 'T');
                continue;
            }

            at[path] = result.Count;
            result.Add((path, status));
        }

        return result;
    }

    /// <summary>numstat's count for a whole file (a type change deletes one and adds the other): its lines, 0 when
    /// binary (a NUL in the first 8,000 bytes, git's test).</summary>
    private int Lines(string tree, string rel)
    {
        if (Entry(tree, rel) is not { IsBlob: true } e)
        {
            return 0;
        }

        var bytes = ReadBlob(e.Oid);
        if (bytes.Length == 0 || bytes.AsSpan(0, Math.Min(bytes.Length, 8000)).Contains((byte)0))
        {
            return 0;
        }

        return bytes.AsSpan().Count((byte)'\n') + (bytes[^1] == '\n' ? 0 : 1);
    }

    private string TextAt(string tree, string rel)
    {
        if (Entry(tree, rel) is not { IsBlob: true } e)
        {
            return string.Empty;
        }

        var bytes = ReadBlob(e.Oid);
        return bytes.AsSpan(0, Math.Min(bytes.Length, 8000)).Contains((byte)0) ? string.Empty : Encoding.UTF8.GetString(bytes);
    }

    internal Repository Repo => repo ??= new Repository(store.GitDir);

    private async Task EnsureInitAsync(CancellationToken ct)
    {
        if (store.Exists)
        {
            return;
        }

        Directory.CreateDirectory(store.GitDir);
        await Git.RunAsync(["init", "-q"], ct).ConfigureAwait(false);
        await Git.RunAsync(["config", "core.autocrlf", "false"], ct).ConfigureAwait(false);
        repo?.Dispose();
        repo = null;
    }

    /// <summary>The user's <c>info/exclude</c> applies to snapshots too (the newest OpenCode syncs it the same way).</summary>
    private bool SyncExclude()
    {
        if (store.UserGitDir is null)
        {
            return false;
        }

        string src = Path.Combine(store.UserGitDir, "info", "exclude");
        string dst = Path.Combine(store.GitDir, "info", "exclude");
        byte[] want = File.Exists(src) ? File.ReadAllBytes(src) : [];
        byte[] have = File.Exists(dst) ? File.ReadAllBytes(dst) : [];
        if (!want.AsSpan().SequenceEqual(have))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            AtomicFile.Write(dst, want, durable: false);
            return true;
        }

        return false;
    }

    /// <summary>Untracked, non-ignored files too big to snapshot; outside git, also enforces the size caps.</summary>
    private async Task<List<string>> ListExcludedAsync(CancellationToken ct)
    {
        var text = await Git.RunAsync(["ls-files", "--others", "--exclude-standard", "-z"], ct).ConfigureAwait(false);
        var excluded = new List<string>();
        int count = 0;
        long bytes = 0;
        var opts = store.Options;
        HashSet<string>? trackedByUser = null;
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != 0)
            {
                continue;
            }

            string rel = Encoding.UTF8.GetString(text, start, i - start);
            start = i + 1;
            long size;
            try
            {
                var fi = new FileInfo(store.ToAbsolute(rel));
                size = fi.LinkTarget is null && fi.Exists ? fi.Length : 0;
            }
            catch (IOException)
            {
                continue;
            }

            count++;
            if (size > opts.MaxUntrackedFileBytes)
            {
                trackedByUser ??= UserTrackedPaths();
                if (!trackedByUser.Contains(rel))
                {
                    excluded.Add(rel);
                    continue;
                }
            }

            bytes += size;
        }

        if (!store.IsGitProject)
        {
            int total = count + IndexEntryCount();
            if (total > opts.MaxFiles || bytes > opts.MaxNewBytes)
            {
                throw TooLarge(store, total, bytes);
            }
        }

        return excluded;
    }

    /// <summary>The clear error for a non-git folder over its caps (a home directory, say).</summary>
    internal static SnapshotTooLargeException TooLarge(SnapshotStore store, long total, long bytes) => new(
        $"{store.WorkTree} is too large to snapshot ({total} files, {bytes / (1024 * 1024)} MiB new; limits {store.Options.MaxFiles} files, {store.Options.MaxNewBytes / (1024 * 1024)} MiB). " +
        "Open a smaller folder, make it a git repository, or set \"snapshot\": false in opencode.json.");

    /// <summary>Paths in the user's own git index (read only; libgit2 never writes the index on read).</summary>
    internal HashSet<string> UserTrackedPaths()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        if (store.UserGitDir is null)
        {
            return set;
        }

        try
        {
            using var user = new Repository(store.WorkTree);
            foreach (var e in user.Index)
            {
                set.Add(e.Path.Replace('\\', '/'));
            }
        }
        catch (LibGit2SharpException)
        {
            // unreadable user repo: treat every big file as untracked, the conservative choice
        }

        return set;
    }

    private int IndexEntryCount()
    {
        string index = Path.Combine(store.GitDir, "index");
        try
        {
            using var fs = File.OpenRead(index);
            Span<byte> header = stackalloc byte[12];
            if (fs.Read(header) < 12)
            {
                return 0;
            }

            return (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>An <c>index.lock</c> left by a crashed git (ours or OpenCode's) blocks every add. One older than a
    /// minute cannot belong to a live add of a single snapshot.</summary>
    private bool StaleIndexLockRemoved()
    {
        string lockFile = Path.Combine(store.GitDir, "index.lock");
        if (File.Exists(lockFile) && File.GetLastWriteTimeUtc(lockFile) < DateTime.UtcNow - TimeSpan.FromMinutes(1))
        {
            File.Delete(lockFile);
            return true;
        }

        return false;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        repo?.Dispose();
        if (fd >= 0)
        {
            Native.Unlock(fd);
        }

        local.Release();
    }
}
