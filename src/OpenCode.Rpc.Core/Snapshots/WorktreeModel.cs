using System.IO.Enumeration;
using System.Text;
using LibGit2Sharp;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>
/// The in-process snapshot engine of one shadow repo: a model of the worktree as <c>git add -A</c> would stage it
/// (every snapshotted file's git mode, blob id and stat data, and a cached tree id per folder), kept current by
/// inotify, so a warm track costs work in proportion to what changed, not to the size of the tree.
/// <list type="bullet">
/// <item><b>Seeded from git.</b> The model starts from the shadow repo's index, which <c>git add</c> wrote: git's own
/// blob ids and stat data. Its tree ids are recomputed here and must equal git's (<c>write-tree</c>, or the index's
/// cache-tree), else the engine stays off for that repo. The first track of a new shadow repo is the git CLI's.</item>
/// <item><b>Walk, then events.</b> Each folder is watched before it is read, so a change is either seen by the read or
/// queued as an event. A track drains the queue (<see cref="Inotify"/>) and looks only at the paths named; without
/// inotify (or after a queue overflow) it walks every folder, comparing stat data as git does.</item>
/// <item><b>Racy git.</b> Stat data equal to git's is trusted only when the file's mtime is older than the index
/// (less 2 s), and ours only when older than 2 s before we looked; anything newer is re-hashed at the next walk.
/// With inotify every later write is an event anyway.</item>
/// <item><b>git's rules.</b> New paths are classified by <c>git check-ignore</c> (so .gitignore, info/exclude and
/// core.excludesFile mean what they mean to git), once per level of new folders; ignored folders are never entered.
/// Files the shadow index lacks over the size limit are skipped unless the user's git tracks them, as the full track
/// does. A .gitignore or .gitattributes that changes rebuilds the model; with any attributes in play, blobs are hashed
/// by <c>git hash-object</c> so filters and line-ending rules apply.</item>
/// <item><b>Anything unusual falls back to git</b>: a nested repository, an unreadable file, a name that is not UTF-8,
/// a non-git folder over its caps (whose clear error the full track gives).</item>
/// </list>
/// Used only under the shadow repo's lock (<see cref="SnapshotLease"/>).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class WorktreeModel : IDisposable
{
    private const int MaxModels = 8;
    private static readonly TimeSpan MaxAge = TimeSpan.FromHours(12);
    private static readonly TimeSpan FallbackPause = TimeSpan.FromSeconds(30);

    // inotify reports changes made through the watched folders. A write through a hard link made later from outside
    // the worktree, or through a shared mmap never closed, reaches no watched folder: a full walk at least this often
    // bounds how long such a change can stay unseen.
    private static readonly TimeSpan WalkAtLeastEvery = TimeSpan.FromMinutes(5);
    private static readonly long RacyTicks = TimeSpan.FromSeconds(2).Ticks;
    private static readonly Dictionary<string, WorktreeModel> Models = new(StringComparer.Ordinal);
    private static readonly Dictionary<string, (DateTime Until, string Why)> Paused = new(StringComparer.Ordinal);
    private static readonly Lock RegistryGate = new();

    private readonly string key;
    private readonly SnapshotStore store;
    private readonly string workTree;
    private readonly SnapshotOptions options;
    private readonly bool isGitProject;
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly GitObjects objects;
    private readonly DirNode root;
    private readonly Dictionary<string, DirNode> dirs = new(StringComparer.Ordinal);
    private readonly HashSet<string> ignoredDirs = new(StringComparer.Ordinal);
    private readonly HashSet<string> ignoredFiles = new(StringComparer.Ordinal);

    // Paths git said are not ignored. The answer holds while the rules and the shadow index stay as they are (a
    // change to either rebuilds the model), so a file deleted and written again (an undo, then a redo) is not asked
    // about twice.
    private readonly HashSet<string> notIgnored = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Stamp> bigFiles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Stamp> rulesFiles = new(StringComparer.Ordinal);
    private readonly HashSet<string> indexPaths = new(StringComparer.Ordinal);

    // Files with more than one hard link: a write through a link outside a watched folder raises no event here, so
    // these few are stat'ed at every track.
    private readonly HashSet<string> linked = new(StringComparer.Ordinal);
    private readonly List<(string Path, Stamp? Stamp)> globalRules;
    private readonly DateTime created = DateTime.UtcNow;
    private Stamp? indexStamp;
    private readonly string indexFile;
    private Inotify? watcher;
    private bool delegateHashing;
    private HashSet<string>? userTracked;
    private Stamp? userIndexStamp;
    private bool disposed;

    private WorktreeModel(string key, SnapshotStore store, Stamp? indexStamp, List<(string, Stamp?)> globalRules, bool attributes)
    {
        this.key = key;
        this.store = store;
        workTree = store.WorkTree;
        options = store.Options;
        isGitProject = store.IsGitProject;
        objects = new GitObjects(store.GitDir);
        indexFile = Path.Combine(store.GitDir, "index");
        this.indexStamp = indexStamp;
        this.globalRules = globalRules;
        delegateHashing = attributes;
        root = new DirNode(string.Empty, string.Empty, null);
        dirs[string.Empty] = root;
    }

    // ------------------------------------------------------------------ counters (tests and the benchmark)

    /// <summary>Files read and hashed by this model (not counting git's own hashing on the full path).</summary>
    public int FilesHashed { get; private set; }

    /// <summary>Tracks answered from inotify events alone, without walking the tree.</summary>
    public int EventTracks { get; private set; }

    /// <summary>Walks of the whole tree (the first one, and every track without inotify).</summary>
    public int FullWalks { get; private set; }

    /// <summary><c>git check-ignore</c> runs (one per level of new paths).</summary>
    public int IgnoreChecks { get; private set; }

    public bool Watching => watcher is not null;

    public int Files => dirs.Values.Sum(d => d.Files.Count);

    /// <summary>The model serving a store, if one is loaded (tests).</summary>
    internal static WorktreeModel? For(SnapshotStore store)
    {
        lock (RegistryGate)
        {
            return Models.GetValueOrDefault(KeyOf(store));
        }
    }

    /// <summary>Why the engine is paused for a store (it fell back to git recently), if it is (tests).</summary>
    internal static string? PausedBecause(SnapshotStore store)
    {
        lock (RegistryGate)
        {
            return Paused.TryGetValue(KeyOf(store), out var p) && p.Until > DateTime.UtcNow ? p.Why : null;
        }
    }

    /// <summary>Drops every loaded model (tests that need a cold start in-process).</summary>
    internal static void Reset()
    {
        lock (RegistryGate)
        {
            foreach (var m in Models.Values)
            {
                m.gate.Wait();
                try
                {
                    m.Dispose();
                }
                finally
                {
                    m.gate.Release();
                }
            }

            Models.Clear();
            Paused.Clear();
        }
    }

    /// <summary>One model per shadow repo, worktree and the limits that shape what it stages.</summary>
    private static string KeyOf(SnapshotStore store) =>
        $"{store.GitDir}\0{store.WorkTree}\0{store.Options.MaxUntrackedFileBytes}\0{store.Options.MaxFiles}\0{store.Options.MaxNewBytes}\0{store.Options.Inotify}";

    // ------------------------------------------------------------------ the entry point

    /// <summary>A snapshot of the worktree: from the loaded model, else a new model seeded from git, else (and
    /// whenever the model meets something it does not handle) the git CLI's full track.</summary>
    public static async Task<string> TrackAsync(SnapshotLease lease, bool rulesChanged, Action<string> log, CancellationToken ct)
    {
        var store = lease.Store;
        string key = KeyOf(store);
        WorktreeModel? model;
        lock (RegistryGate)
        {
            model = Models.GetValueOrDefault(key);
            if (Paused.TryGetValue(key, out var p))
            {
                if (p.Until > DateTime.UtcNow)
                {
                    model = null;
                }
                else
                {
                    Paused.Remove(key);
                }
            }
        }

        if (model is not null)
        {
            string? tree = null;
            string? why = null;
            await model.gate.WaitAsync(ct).ConfigureAwait(false);
            bool failed = true;
            try
            {
                why = model.disposed ? "evicted" : rulesChanged ? "info/exclude changed" : model.Invalidated();
                if (why is null)
                {
                    (tree, why) = await model.UpdateAsync(lease, initial: false, ct).ConfigureAwait(false);
                }

                failed = false;
            }
            finally
            {
                model.gate.Release();

                // A pass that threw (cancelled, git failed, over the caps) has consumed events it did not apply: the
                // model no longer knows what changed, so it goes.
                if (failed)
                {
                    Drop(key, model);
                }
            }

            if (tree is not null)
            {
                return tree;
            }

            Drop(key, model);
            if (why is not ("rules changed" or "info/exclude changed" or "index changed" or "evicted" or "aged out" or "global git rules changed"))
            {
                // Something the model does not handle (a nested repository, an unreadable file, …): git decides, and
                // the next tracks go to git for a while rather than rebuilding a model that would hit it again.
                log($"snapshot of {store.WorkTree}: {why}; using git add -A");
                Pause(key, why ?? "fallback");
                return await lease.FullTrackAsync(ct).ConfigureAwait(false);
            }
        }
        else if (PausedBecause(store) is not null)
        {
            return await lease.FullTrackAsync(ct).ConfigureAwait(false);
        }

        // A new model: from the shadow index when there is one (git's, or the one our first snapshot wrote), else
        // from nothing, hashing every file in process (into one pack when the object store is empty).
        string? gitTree = null;
        if (!File.Exists(Path.Combine(store.GitDir, "index")))
        {
            var (cold, coldTree, coldWhy) = await ColdAsync(lease, key, ct).ConfigureAwait(false);
            if (cold is not null && coldTree is not null)
            {
                Register(key, cold);
                return coldTree;
            }

            log($"snapshot of {store.WorkTree}: first track by git add -A ({coldWhy})");
            gitTree = await lease.FullTrackAsync(ct).ConfigureAwait(false);
        }

        var (fresh, tree2, why2) = await LoadAsync(lease, key, gitTree, ct).ConfigureAwait(false);
        if (fresh is null || tree2 is null)
        {
            log($"snapshot of {store.WorkTree}: in-process engine off ({why2}); using git add -A");
            Pause(key, why2 ?? "load failed");
            return gitTree ?? await lease.FullTrackAsync(ct).ConfigureAwait(false);
        }

        Register(key, fresh);
        return tree2;
    }

    private static void Pause(string key, string why)
    {
        lock (RegistryGate)
        {
            Paused[key] = (DateTime.UtcNow + FallbackPause, why);
        }
    }

    private static void Register(string key, WorktreeModel model)
    {
        lock (RegistryGate)
        {
            if (Models.Remove(key, out var old))
            {
                old.Dispose();
            }

            // A bounded number per process: each holds an inotify instance (a per-user limit of 128 by default).
            while (Models.Count >= MaxModels)
            {
                var oldest = Models.Values.MinBy(m => m.lastUsed)!;
                if (!oldest.gate.Wait(0))
                {
                    break; // in use right now; the set may exceed the cap briefly
                }

                try
                {
                    Models.Remove(oldest.key);
                    oldest.Dispose();
                }
                finally
                {
                    oldest.gate.Release();
                }
            }

            Models[key] = model;
        }
    }

    private static void Drop(string key, WorktreeModel model)
    {
        lock (RegistryGate)
        {
            if (Models.TryGetValue(key, out var m) && ReferenceEquals(m, model))
            {
                Models.Remove(key);
            }
        }

        model.gate.Wait();
        try
        {
            model.Dispose();
        }
        finally
        {
            model.gate.Release();
        }
    }

    private long lastUsed = Environment.TickCount64;
    private DateTime lastFullWalk = DateTime.UtcNow;

    /// <summary>Why the model no longer describes what git would see, or null.</summary>
    private string? Invalidated()
    {
        if (DateTime.UtcNow - created > MaxAge)
        {
            // Objects a model refers to were written or freshened during its life, or are in the index; a model
            // younger than git's prune expiry (7 days for OpenCode) can never refer to a pruned object.
            return "aged out";
        }

        if (StampOf(indexFile) != indexStamp)
        {
            return "index changed"; // someone ran git add on the shadow repo (OpenCode, or our own full track)
        }

        foreach (var (path, stamp) in globalRules)
        {
            if (StampOf(path) != stamp)
            {
                return "global git rules changed";
            }
        }

        return null;
    }

    private static Stamp? StampOf(string path) => LinuxFs.TryStat(-100, path, out var s, out _) ? s : null;

    // ------------------------------------------------------------------ loading from git

    private static async Task<(WorktreeModel? Model, string? Tree, string? Why)> LoadAsync(SnapshotLease lease, string key, string? gitTree, CancellationToken ct)
    {
        var store = lease.Store;
        string indexFile = Path.Combine(store.GitDir, "index");
        if (gitTree is null)
        {
            // Re-read after write-tree (it may rewrite the index to record its cache-tree).
            var probe = GitIndexReader.Read(await File.ReadAllBytesAsync(indexFile, ct).ConfigureAwait(false));
            if (probe.Unsupported is not null)
            {
                return (null, null, "the shadow index has " + probe.Unsupported);
            }

            gitTree = probe.RootTree is { } r ? GitObjects.Hex(r) : (await lease.Git.RunTextAsync(["write-tree"], ct).ConfigureAwait(false)).Trim();
        }

        var indexStamp = StampOf(indexFile);
        var content = GitIndexReader.Read(await File.ReadAllBytesAsync(indexFile, ct).ConfigureAwait(false));
        if (content.Unsupported is not null)
        {
            return (null, null, "the shadow index has " + content.Unsupported);
        }

        var (configWhy, globalRules, attributes) = ReadConfig(lease);
        if (configWhy is not null)
        {
            return (null, null, configWhy);
        }

        var model = new WorktreeModel(key, store, indexStamp, globalRules, attributes);
        try
        {
            long racyBefore = (indexStamp?.MtimeTicks ?? 0) - RacyTicks;
            foreach (var e in content.Entries)
            {
                int slash = e.Path.LastIndexOf('/');
                var dir = model.DirFor(slash < 0 ? string.Empty : e.Path[..slash]);
                string name = e.Path[(slash + 1)..];
                dir.Files[name] = new FileNode(name, e.Mode, e.Oid, e.Stamp, racy: e.Stamp.MtimeTicks >= racyBefore, inIndex: true);
                model.indexPaths.Add(e.Path);
            }

            model.objects.FreshenPacks();
            string seeded = GitObjects.Hex(model.TreeOf(model.root));
            if (seeded != gitTree)
            {
                model.Dispose();
                return (null, null, $"its trees ({seeded}) differ from git's ({gitTree})");
            }

            model.watcher = store.Options.Inotify && LinuxFs.InotifySeesEverything(store.WorkTree) ? Inotify.TryCreate(out _) : null;
            var (tree, why) = await model.UpdateAsync(lease, initial: true, ct).ConfigureAwait(false);
            if (tree is null)
            {
                model.Dispose();
                return (null, null, why);
            }

            return (model, tree, null);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The first snapshot of a tree, in process: every file is hashed here, objects go into one pack when the
    /// store is empty (one file written, where git writes one per object), and the shadow index is written as
    /// <c>git add -A</c> would leave it, so later starts (ours and OpenCode's) begin from it.</summary>
    private static async Task<(WorktreeModel? Model, string? Tree, string? Why)> ColdAsync(SnapshotLease lease, string key, CancellationToken ct)
    {
        var store = lease.Store;
        var (configWhy, globalRules, attributes) = ReadConfig(lease);
        if (configWhy is not null)
        {
            return (null, null, configWhy);
        }

        var model = new WorktreeModel(key, store, null, globalRules, attributes);
        bool packing = model.objects.IsEmpty;
        try
        {
            if (packing)
            {
                model.objects.BeginPack();
            }

            model.watcher = store.Options.Inotify && LinuxFs.InotifySeesEverything(store.WorkTree) ? Inotify.TryCreate(out _) : null;
            var (tree, why) = await model.UpdateAsync(lease, initial: true, ct).ConfigureAwait(false);
            if (tree is null)
            {
                model.objects.AbortPack();
                model.Dispose();
                return (null, null, why);
            }

            model.objects.FinishPack();
            var files = model.AllFiles().ToList();
            if (GitIndexWriter.TryWrite(model.indexFile, files.Select(f => (f.Path, f.Node.Mode, f.Node.Oid, f.Node.Stamp)), DateTime.UtcNow.Ticks, RacyTicks))
            {
                model.indexStamp = StampOf(model.indexFile);
                foreach (var (path, node) in files)
                {
                    node.InIndex = true;
                    model.indexPaths.Add(path);
                }
            }

            return (model, tree, null);
        }
        catch
        {
            model.objects.AbortPack();
            model.Dispose();
            throw;
        }
    }

    private IEnumerable<(string Path, FileNode Node)> AllFiles() =>
        dirs.Values.SelectMany(d => d.Files.Values.Select(f => (Join(d.Path, f.Name), f)));

    /// <summary>Settings that change what <c>git add</c> stores, and the rule files outside the worktree to watch.</summary>
    private static (string? Why, List<(string, Stamp?)> GlobalRules, bool Attributes) ReadConfig(SnapshotLease lease)
    {
        var rules = new List<(string, Stamp?)>();
        var config = lease.Repo.Config;
        if (config.Get<bool>("core.filemode") is { Value: false })
        {
            return ("core.filemode is false", rules, false);
        }

        if (config.Get<bool>("core.ignorecase") is { Value: true })
        {
            return ("core.ignorecase is true", rules, false);
        }

        if (config.Get<bool>("core.sparseCheckout") is { Value: true } || config.Get<bool>("index.sparse") is { Value: true })
        {
            return ("a sparse checkout", rules, false);
        }

        string home = Environment.GetEnvironmentVariable("HOME") ?? string.Empty;
        string xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } x ? x : Path.Combine(home, ".config");
        string Expand(string p) => p.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(home, p[2..]) : p;
        string excludes = config.Get<string>("core.excludesFile")?.Value is { Length: > 0 } ef ? Expand(ef) : Path.Combine(xdg, "git", "ignore");
        string attributesFile = config.Get<string>("core.attributesFile")?.Value is { Length: > 0 } af ? Expand(af) : Path.Combine(xdg, "git", "attributes");
        string[] attributeFiles = [attributesFile, Path.Combine(lease.Store.GitDir, "info", "attributes"), "/etc/gitattributes"];
        foreach (var p in attributeFiles.Append(excludes))
        {
            rules.Add((p, StampOf(p)));
        }

        bool attributes = attributeFiles.Any(p => new FileInfo(p) is { Exists: true, Length: > 0 });
        return (null, rules, attributes);
    }

    // ------------------------------------------------------------------ one track

    private sealed class Pass(bool initial)
    {
        public bool Initial { get; } = initial;

        public Stack<DirNode> Walk { get; } = new();

        public List<(DirNode Parent, string Name)> UnknownDirs { get; } = [];

        public List<(DirNode Parent, string Name, Stamp Stamp)> UnknownFiles { get; } = [];

        public List<(DirNode Parent, string Name, Stamp Stamp)> Hash { get; } = [];

        public string? Fallback { get; set; }

        public bool RulesChanged { get; set; }

        public long Now { get; } = DateTime.UtcNow.Ticks;

        public long FilesSeen { get; set; }
    }

    /// <summary>Brings the model up to date; returns the root tree id, or null and why the model cannot go on.</summary>
    private async Task<(string? Tree, string? Why)> UpdateAsync(SnapshotLease lease, bool initial, CancellationToken ct)
    {
        lastUsed = Environment.TickCount64;
        var pass = new Pass(initial);
        var changes = new List<Change>();
        bool drained = watcher is not null && watcher.Drain(changes); // drain even when walking: the walk covers them
        if (initial || !drained || DateTime.UtcNow - lastFullWalk > WalkAtLeastEvery)
        {
            FullWalks++;
            lastFullWalk = DateTime.UtcNow;
            pass.Walk.Push(root);
        }
        else
        {
            EventTracks++;
            ApplyChanges(changes, pass);
        }

        while (true)
        {
            while (pass.Walk.Count > 0 && pass.Fallback is null)
            {
                ct.ThrowIfCancellationRequested();
                WalkDir(pass.Walk.Pop(), pass);
            }

            if (pass.Fallback is not null)
            {
                return (null, pass.Fallback);
            }

            if (pass.UnknownDirs.Count == 0 && pass.UnknownFiles.Count == 0)
            {
                break;
            }

            await ClassifyAsync(lease, pass, ct).ConfigureAwait(false);
        }

        if (pass.RulesChanged)
        {
            return (null, "rules changed");
        }

        if (!isGitProject)
        {
            CheckCaps(lease.Store, pass);
        }

        await HashAsync(lease, pass, ct).ConfigureAwait(false);
        if (pass.Fallback is not null)
        {
            return (null, pass.Fallback);
        }

        return (GitObjects.Hex(TreeOf(root)), null);
    }

    /// <summary>Turns inotify events into things to look at: a folder event re-reads that folder (and below), a file
    /// event re-hashes that file.</summary>
    private void ApplyChanges(List<Change> changes, Pass pass)
    {
        var files = new HashSet<string>(StringComparer.Ordinal);
        var folders = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in changes)
        {
            if (c.Path.Length == 0)
            {
                pass.Fallback = "the worktree folder itself was moved or deleted";
                return;
            }

            (c.IsDir ? folders : files).Add(c.Path);
        }

        foreach (var path in linked)
        {
            if (!files.Contains(path))
            {
                int slash = path.LastIndexOf('/');
                if (dirs.TryGetValue(slash < 0 ? string.Empty : path[..slash], out var parent))
                {
                    Visit(parent, path[(slash + 1)..], LinuxFs.TryStat(-100, Abs(path), out var st, out _) ? st : null, forced: false, pass);
                }
            }
        }

        foreach (var path in folders.Concat(files))
        {
            int slash = path.LastIndexOf('/');
            string parentPath = slash < 0 ? string.Empty : path[..slash];
            if (!dirs.TryGetValue(parentPath, out var parent))
            {
                continue; // in a folder no longer (or not yet) walked; its own event covers it
            }

            string name = path[(slash + 1)..];
            Visit(parent, name, LinuxFs.TryStat(-100, Abs(path), out var st, out _) ? st : null, forced: files.Contains(path), pass);
        }
    }

    /// <summary>Reads one folder: watches it first, then compares every entry with the model.</summary>
    private void WalkDir(DirNode node, Pass pass)
    {
        string abs = node.Path.Length == 0 ? workTree : Abs(node.Path);
        if (watcher is not null && !watcher.Watch(node.Path, abs, out bool fatal) && fatal)
        {
            // The per-user watch limit: carry on without events (every track walks).
            watcher.Dispose();
            watcher = null;
        }

        int dfd = LinuxFs.OpenDir(abs, follow: node.Path.Length == 0, out int errno);
        if (dfd < 0)
        {
            if (node.Parent is not null && errno is LinuxFs.ENOENT or LinuxFs.ENOTDIR or LinuxFs.ELOOP)
            {
                Visit(node.Parent, node.Name, LinuxFs.TryStat(-100, abs, out var st, out _) ? st : null, forced: false, pass);
                return;
            }

            pass.Fallback = $"cannot read folder {abs} (errno {errno})";
            return;
        }

        try
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var names = new FileSystemEnumerable<string>(abs, (ref FileSystemEntry e) => e.FileName.ToString(), new EnumerationOptions
            {
                AttributesToSkip = 0,
                IgnoreInaccessible = false,
                RecurseSubdirectories = false,
                ReturnSpecialDirectories = false,
            });
            foreach (var name in names)
            {
                if (!LinuxFs.TryStat(dfd, name, out var st, out _))
                {
                    continue; // gone between the listing and the stat: as if never listed
                }

                seen.Add(name);
                if (!isGitProject && !st.IsDirectory && ++pass.FilesSeen > options.MaxFiles + indexPaths.Count)
                {
                    // A home directory: stop walking now, long before every file was looked at.
                    throw SnapshotLease.TooLarge(store, pass.FilesSeen, 0);
                }

                Visit(node, name, st, forced: false, pass);
            }

            foreach (var gone in node.Files.Keys.Where(n => !seen.Contains(n)).ToList())
            {
                Visit(node, gone, null, forced: false, pass);
            }

            foreach (var gone in node.Dirs.Keys.Where(n => !seen.Contains(n)).ToList())
            {
                Visit(node, gone, null, forced: false, pass);
            }

            // Rule files and too-big files are not in the model's folders, but their going matters too.
            foreach (var name in ChildrenOf(rulesFiles.Keys, node).Concat(ChildrenOf(bigFiles.Keys, node)).Where(n => !seen.Contains(n)).ToList())
            {
                Visit(node, name, null, forced: false, pass);
            }
        }
        catch (DirectoryNotFoundException) when (node.Parent is not null)
        {
            Visit(node.Parent, node.Name, LinuxFs.TryStat(-100, abs, out var st, out _) ? st : null, forced: false, pass);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            pass.Fallback = $"cannot list folder {abs}: {ex.Message}";
        }
        finally
        {
            LinuxFs.Close(dfd);
        }
    }

    /// <summary>Compares one folder entry (null stamp: it is not there) with the model and decides what to do.</summary>
    private void Visit(DirNode parent, string name, Stamp? stamp, bool forced, Pass pass)
    {
        string rel = parent.Path.Length == 0 ? name : parent.Path + "/" + name;
        if (!LinuxFs.RoundTrips(name))
        {
            pass.Fallback = $"a name that is not UTF-8 in {Abs(parent.Path)}";
            return;
        }

        if (name == ".git")
        {
            // git never snapshots a .git; one below the root is a nested repository, which git records as a gitlink.
            if (parent != root && stamp is not null)
            {
                pass.Fallback = $"a nested repository at {parent.Path}";
            }

            return;
        }

        if (name is ".gitignore" or ".gitattributes")
        {
            bool known = rulesFiles.TryGetValue(rel, out var was);
            bool isFile = stamp is { IsDirectory: false };
            if (pass.Initial)
            {
                if (isFile)
                {
                    rulesFiles[rel] = stamp!.Value;
                    delegateHashing |= name == ".gitattributes";
                }
            }
            else if (known != isFile || (known && (forced || !was.SameAs(stamp!.Value))))
            {
                pass.RulesChanged = true;
            }
        }

        if (stamp is { Nlink: > 1, IsDirectory: false })
        {
            linked.Add(rel);
        }
        else
        {
            linked.Remove(rel);
        }

        if (stamp is not { } st)
        {
            bigFiles.Remove(rel);
            if (parent.Files.Remove(name))
            {
                MarkDirty(parent);
            }

            if (parent.Dirs.Remove(name, out var child))
            {
                DropSubtree(child);
                MarkDirty(parent);
            }

            return;
        }

        if (st.IsDirectory)
        {
            if (parent.Files.Remove(name))
            {
                MarkDirty(parent);
            }

            if (parent.Dirs.TryGetValue(name, out var child))
            {
                pass.Walk.Push(child);
            }
            else if (notIgnored.Contains(rel))
            {
                var known = new DirNode(rel, name, parent);
                parent.Dirs[name] = known;
                dirs[rel] = known;
                MarkDirty(parent);
                pass.Walk.Push(known);
            }
            else if (!ignoredDirs.Contains(rel))
            {
                pass.UnknownDirs.Add((parent, name));
            }

            return;
        }

        if (parent.Dirs.Remove(name, out var was2))
        {
            DropSubtree(was2);
            MarkDirty(parent);
        }

        if (!st.IsRegular && !st.IsSymlink)
        {
            // A fifo, socket or device: git skips it.
            if (parent.Files.Remove(name))
            {
                MarkDirty(parent);
            }

            return;
        }

        if (parent.Files.TryGetValue(name, out var file))
        {
            if (forced || file.Racy || !file.Stamp.SameAs(st))
            {
                pass.Hash.Add((parent, name, st));
            }
        }
        else if (ignoredFiles.Contains(rel))
        {
            // ignored, and the rules have not changed since we asked
        }
        else if (!forced && bigFiles.TryGetValue(rel, out var big) && big.SameAs(st))
        {
            // still too big to snapshot
        }
        else if (notIgnored.Contains(rel))
        {
            pass.Hash.Add((parent, name, st));
        }
        else
        {
            pass.UnknownFiles.Add((parent, name, st));
        }
    }

    /// <summary>Asks git which new paths are ignored; new folders that are not get walked next.</summary>
    private async Task ClassifyAsync(SnapshotLease lease, Pass pass, CancellationToken ct)
    {
        var input = new StringBuilder();
        foreach (var (p, n) in pass.UnknownDirs)
        {
            input.Append(Join(p.Path, n)).Append("/\0");
        }

        foreach (var (p, n, _) in pass.UnknownFiles)
        {
            input.Append(Join(p.Path, n)).Append('\0');
        }

        IgnoreChecks++;
        var (code, stdout, stderr) = await lease.Git.RunRawAsync(["check-ignore", "-z", "--stdin"], ct, Encoding.UTF8.GetBytes(input.ToString())).ConfigureAwait(false);
        if (code is not (0 or 1))
        {
            throw new SnapshotUnavailableException($"Cannot snapshot {workTree}: git check-ignore failed: {stderr.Trim()}");
        }

        var ignored = Encoding.UTF8.GetString(stdout).Split('\0', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var (p, n) in pass.UnknownDirs)
        {
            string rel = Join(p.Path, n);
            if (ignored.Contains(rel + "/") || ignored.Contains(rel))
            {
                ignoredDirs.Add(rel);
            }
            else if (!p.Dirs.ContainsKey(n))
            {
                notIgnored.Add(rel);
                var child = new DirNode(rel, n, p);
                p.Dirs[n] = child;
                dirs[rel] = child;
                pass.Walk.Push(child);
            }
        }

        foreach (var (p, n, st) in pass.UnknownFiles)
        {
            string rel = Join(p.Path, n);
            if (ignored.Contains(rel))
            {
                ignoredFiles.Add(rel);
            }
            else
            {
                notIgnored.Add(rel);
                pass.Hash.Add((p, n, st));
            }
        }

        pass.UnknownDirs.Clear();
        pass.UnknownFiles.Clear();
    }

    /// <summary>Hashes (and stores) every file the pass found new or changed, applying the size rule for files the
    /// shadow index does not have.</summary>
    private async Task HashAsync(SnapshotLease lease, Pass pass, CancellationToken ct)
    {
        var viaGit = new List<(DirNode Parent, string Name, Stamp Stamp)>();
        var work = new List<(DirNode Parent, string Name, Stamp Stamp, bool InIndex)>();
        foreach (var (parent, name, st) in pass.Hash)
        {
            ct.ThrowIfCancellationRequested();
            string rel = Join(parent.Path, name);
            bool inIndex = parent.Files.TryGetValue(name, out var existing) ? existing.InIndex : indexPaths.Contains(rel);
            if (!inIndex && st.IsRegular && st.Size > options.MaxUntrackedFileBytes && !UserTracked(lease, rel))
            {
                if (parent.Files.Remove(name))
                {
                    MarkDirty(parent);
                }

                bigFiles[rel] = st;
                continue;
            }

            bigFiles.Remove(rel);
            if (delegateHashing && st.IsRegular)
            {
                viaGit.Add((parent, name, st));
            }
            else
            {
                work.Add((parent, name, st, inIndex));
            }
        }

        // Reading and hashing is most of a first snapshot (20,000 files): spread it over the cores. The model itself
        // is changed by this thread only, afterwards.
        var results = new (byte[]? Oid, Stamp Used, int Errno)[work.Count];
        if (work.Count >= 64)
        {
            Parallel.For(0, work.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = ct },
                i => results[i] = HashFile(Abs(Join(work[i].Parent.Path, work[i].Name)), work[i].Stamp));
        }
        else
        {
            for (int i = 0; i < work.Count; i++)
            {
                results[i] = HashFile(Abs(Join(work[i].Parent.Path, work[i].Name)), work[i].Stamp);
            }
        }

        FilesHashed += work.Count;
        for (int i = 0; i < work.Count; i++)
        {
            var (parent, name, _, inIndex) = work[i];
            var (oid, used, errno) = results[i];
            if (oid is null)
            {
                if (!Vanished(parent, name, errno, pass))
                {
                    return;
                }

                continue;
            }

            bool racy = pass.Now - used.MtimeTicks < RacyTicks;
            parent.Files[name] = new FileNode(name, used.GitMode, oid, used, racy, inIndex);
            MarkDirty(parent);
        }

        if (viaGit.Count > 0)
        {
            await HashWithGitAsync(lease, viaGit, pass, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Reads and stores one file (or symlink) seen with stat <paramref name="st"/>. Returns its blob id and the
    /// stat to remember: <paramref name="st"/> when the file's stat after reading is still that one, else a stat that
    /// matches nothing, so the file is read again next time. No oid (and the errno) when it could not be read.
    /// Touches no model state: several run at once.</summary>
    private (byte[]? Oid, Stamp Used, int Errno) HashFile(string abs, Stamp st)
    {
        var moved = st with { MtimeNsec = uint.MaxValue };
        if (st.IsSymlink)
        {
            byte[]? target = LinuxFs.ReadLink(-100, abs, out int errno);
            if (target is null)
            {
                return (null, st, errno);
            }

            byte[] linkOid = objects.WriteBlob(target);
            return (linkOid, LinuxFs.TryStat(-100, abs, out var after, out _) && after.SameAs(st) ? st : moved, 0);
        }

        using var fd = LinuxFs.OpenFile(-100, abs, out int openErrno);
        if (fd is null)
        {
            return (null, st, openErrno);
        }

        byte[] oid = objects.WriteBlob(fd, st.Size);

        // The stat taken when the folder was read, compared after reading: unchanged means what was read is what
        // that stat describes (same inode, size and times); anything else is read again next time. Something that
        // is no longer a regular file (a fifo put in its place, opened without blocking) is not there as a file.
        if (!LinuxFs.TryStatFd(fd, out var now) || !now.IsRegular)
        {
            return (null, st, LinuxFs.ENOENT);
        }

        return (oid, now.SameAs(st) ? st : moved, 0);
    }

    /// <summary>A file that could not be opened: gone (or replaced) since it was listed is simply not there now; any
    /// other failure (permissions) goes to git, which skips unreadable files with a warning.</summary>
    private bool Vanished(DirNode parent, string name, int errno, Pass pass)
    {
        if (errno is LinuxFs.ENOENT or LinuxFs.ELOOP or LinuxFs.ENOTDIR)
        {
            // ELOOP: a symlink now stands where a file was; the next look sees it as one.
            if (parent.Files.Remove(name))
            {
                MarkDirty(parent);
            }

            return true;
        }

        pass.Fallback = $"cannot read {Abs(Join(parent.Path, name))} (errno {errno})";
        return false;
    }

    /// <summary>With .gitattributes (or a global attributes file) in play, git hashes the regular files, applying its
    /// filters and line-ending rules; symlinks are still ours (attributes never apply to them).</summary>
    private async Task HashWithGitAsync(SnapshotLease lease, List<(DirNode Parent, string Name, Stamp Stamp)> files, Pass pass, CancellationToken ct)
    {
        var input = new StringBuilder();
        foreach (var (p, n, _) in files)
        {
            input.Append(Join(p.Path, n)).Append('\n');
        }

        FilesHashed += files.Count;
        if (files.Any(f => f.Name.Contains('\n', StringComparison.Ordinal)))
        {
            pass.Fallback = "a file name with a newline";
            return;
        }

        var (code, stdout, stderr) = await lease.Git.RunRawAsync(["hash-object", "-w", "--stdin-paths"], ct, Encoding.UTF8.GetBytes(input.ToString())).ConfigureAwait(false);
        var ids = Encoding.ASCII.GetString(stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (code != 0 || ids.Length != files.Count)
        {
            pass.Fallback = $"git hash-object failed: {stderr.Trim()}";
            return;
        }

        for (int i = 0; i < files.Count; i++)
        {
            var (parent, name, st) = files[i];
            string rel = Join(parent.Path, name);
            bool inIndex = parent.Files.TryGetValue(name, out var existing) ? existing.InIndex : indexPaths.Contains(rel);

            // git read the file after our stat: trust the stat only while it still holds, and treat it as racy.
            var now = LinuxFs.TryStat(-100, Abs(rel), out var after, out _) && after.SameAs(st) ? st : st with { MtimeNsec = uint.MaxValue };
            parent.Files[name] = new FileNode(name, now.GitMode, Convert.FromHexString(ids[i]), now, racy: true, inIndex);
            MarkDirty(parent);
        }
    }

    /// <summary>Paths the user's own git index tracks: a big file it tracks is snapshotted anyway. Read again when that
    /// index changes (for a linked worktree, when the main one's does).</summary>
    private bool UserTracked(SnapshotLease lease, string rel)
    {
        var stamp = lease.Store.UserGitDir is { } g ? StampOf(Path.Combine(g, "index")) : null;
        if (userTracked is null || stamp != userIndexStamp)
        {
            userTracked = lease.UserTrackedPaths();
            userIndexStamp = stamp;
        }

        return userTracked.Contains(rel);
    }

    /// <summary>The full track's caps for non-git folders, checked before anything is hashed, with its clear error:
    /// files (the index's plus those it lacks) and the bytes of those it lacks.</summary>
    private void CheckCaps(SnapshotStore store, Pass pass)
    {
        var pending = new Dictionary<string, Stamp>(StringComparer.Ordinal);
        foreach (var (p, n, st) in pass.Hash)
        {
            pending[Join(p.Path, n)] = st;
        }

        long others = bigFiles.Count;
        long bytes = 0;
        foreach (var (path, f) in AllFiles())
        {
            if (!f.InIndex && !pending.ContainsKey(path))
            {
                others++;
                bytes += f.Stamp.Size;
            }
        }

        foreach (var (path, st) in pending)
        {
            if (!indexPaths.Contains(path))
            {
                others++;
                bytes += st.Size <= options.MaxUntrackedFileBytes ? st.Size : 0;
            }
        }

        if (others + indexPaths.Count > options.MaxFiles || bytes > options.MaxNewBytes)
        {
            throw SnapshotLease.TooLarge(store, others + indexPaths.Count, bytes);
        }
    }

    // ------------------------------------------------------------------ trees

    private byte[] TreeOf(DirNode node)
    {
        if (node.Tree is { } cached)
        {
            return cached;
        }

        var entries = new List<(int Mode, byte[] Name, byte[] Oid, bool IsTree)>(node.Files.Count + node.Dirs.Count);
        foreach (var f in node.Files.Values)
        {
            entries.Add((f.Mode, f.NameBytes, f.Oid, false));
        }

        foreach (var d in node.Dirs.Values)
        {
            var t = TreeOf(d);
            if (t.Length > 0)
            {
                entries.Add((GitObjects.ModeTree, d.NameBytes, t, true));
            }
        }

        if (entries.Count == 0 && node != root)
        {
            return node.Tree = []; // git records no empty folders
        }

        entries.Sort((a, b) => GitObjects.CompareNames(a.Name, a.IsTree, b.Name, b.IsTree));
        return node.Tree = objects.WriteTree(entries.Select(e => (e.Mode, e.Name, e.Oid)).ToList());
    }

    /// <summary>Forgets the tree ids from a folder up to the root. Always all the way: a folder new to the model has
    /// no tree id yet while its parents still have theirs.</summary>
    private static void MarkDirty(DirNode? node)
    {
        for (; node is not null; node = node.Parent)
        {
            node.Tree = null;
        }
    }

    private DirNode DirFor(string path)
    {
        if (dirs.TryGetValue(path, out var d))
        {
            return d;
        }

        int slash = path.LastIndexOf('/');
        var parent = DirFor(slash < 0 ? string.Empty : path[..slash]);
        string name = path[(slash + 1)..];
        var node = new DirNode(path, name, parent);
        parent.Dirs[name] = node;
        dirs[path] = node;
        return node;
    }

    private void DropSubtree(DirNode node)
    {
        watcher?.UnwatchTree(node.Path);
        var stack = new Stack<DirNode>([node]);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            dirs.Remove(n.Path);
            foreach (var c in n.Dirs.Values)
            {
                stack.Push(c);
            }
        }
    }

    /// <summary>Names directly inside <paramref name="node"/> among worktree-relative paths.</summary>
    private static IEnumerable<string> ChildrenOf(IEnumerable<string> paths, DirNode node)
    {
        string prefix = node.Path.Length == 0 ? string.Empty : node.Path + "/";
        return paths.Where(r => r.Length > prefix.Length && r.StartsWith(prefix, StringComparison.Ordinal) && r.IndexOf('/', prefix.Length) < 0)
            .Select(r => r[prefix.Length..]);
    }

    private string Abs(string rel) => rel.Length == 0 ? workTree : workTree + "/" + rel;

    private static string Join(string dir, string name) => dir.Length == 0 ? name : dir + "/" + name;

    public void Dispose()
    {
        disposed = true;
        watcher?.Dispose();
        watcher = null;
    }

    private sealed class DirNode(string path, string name, DirNode? parent)
    {
        public string Path { get; } = path;

        public string Name { get; } = name;

        public byte[] NameBytes { get; } = Encoding.UTF8.GetBytes(name);

        public DirNode? Parent { get; } = parent;

        public Dictionary<string, FileNode> Files { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, DirNode> Dirs { get; } = new(StringComparer.Ordinal);

        /// <summary>The folder's tree id; empty when it holds nothing git records; null when it must be recomputed.</summary>
        public byte[]? Tree { get; set; }
    }

    private sealed class FileNode(string name, int mode, byte[] oid, Stamp stamp, bool racy, bool inIndex)
    {
        public string Name { get; } = name;

        public byte[] NameBytes { get; } = Encoding.UTF8.GetBytes(name);

        public int Mode { get; } = mode;

        public byte[] Oid { get; } = oid;

        public Stamp Stamp { get; } = stamp;

        /// <summary>Modified too close to when its stat was taken: read it again at the next walk.</summary>
        public bool Racy { get; } = racy;

        /// <summary>In the shadow index git last wrote (so the size limit for untracked files does not apply).</summary>
        public bool InIndex { get; set; } = inIndex;
    }
}
