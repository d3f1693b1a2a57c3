using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Snapshots;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>
/// Notices store changes made by another process (a second sidecar, OpenCode itself) and raises the same events
/// <see cref="SessionStore"/> raises for its own writes: <c>session.updated {info}</c>, <c>message.updated {info}</c>,
/// <c>message.part.updated {part}</c>. Changes are debounced (a burst of file events for one file gives one event) and
/// deduplicated: this process's own writes are known by their temp names, and what was already reported by a hash of the object.
/// Deletions are not reported (a deleted file has nothing left to read); temp files are never read.
/// On Linux it reads inotify itself, on its own thread, a debounce after the first event of a burst: this process's
/// own writes (four events per file) then cost no wake-up while a request is being answered, which on two cores is
/// felt in every acknowledged write. Elsewhere it uses <see cref="FileSystemWatcher"/>.
/// </summary>
public sealed class StoreWatcher : IDisposable
{
    private readonly StoreLayout layout;
    private readonly Action<StoreEvent> raise;
    private readonly Action<string> warn;
    private readonly TimeSpan debounce;
    private readonly ConcurrentDictionary<string, string> known = new(StringComparer.Ordinal); // object id -> hash last seen
    private readonly ConcurrentDictionary<string, byte> dirty = new(StringComparer.Ordinal);
    private readonly List<FileSystemWatcher> watchers = [];
    private readonly Timer? timer; // FileSystemWatcher mode's debounce; the inotify reader debounces by itself
    private readonly Inotify? inotify;
    private readonly bool deepParts;
    private readonly ConcurrentDictionary<string, byte> unreadable = new(StringComparer.Ordinal); // read once, torn
    private readonly Lock inotifyGate = new(); // the reader and writers adding watches for their own folders
    private volatile bool disposed;
    private bool retryPending;
    private Thread? reader;
    private bool watchesExhausted;
    private int scheduled;

    /// <summary>Past this many part folders (one per message), part folders are not watched one by one: each watch
    /// is kernel memory, and the user's inotify watches are shared with everything else they run (an editor's own file
    /// watcher included; 192,540 here), which a store of 10,000 sessions would otherwise take.</summary>
    public const int DefaultMaxPartFolders = 20_000;

    // Entries appearing (a file closed after writing, a rename, a new folder) and watched folders going away. Not
    // IN_MODIFY: that is one event per write(2) call, and a file is read only once it is closed or renamed in.
    private const uint StoreEvents = Inotify.InCloseWrite | Inotify.InMovedFrom | Inotify.InMovedTo | Inotify.InCreate
        | Inotify.InDeleteSelf | Inotify.InMoveSelf | Inotify.InOnlyDir | Inotify.InExclUnlink;

    private static readonly string[] Areas = ["session", "message", "part"];

    public StoreWatcher(SessionStore store, Action<StoreEvent> raise, Action<string> warn, TimeSpan? debounce = null, int maxPartFolders = DefaultMaxPartFolders)
    {
        layout = store.Layout;
        this.raise = raise;
        this.warn = warn;
        this.debounce = debounce ?? TimeSpan.FromMilliseconds(100);
        store.Changed += Remember;
        string parts = Path.Combine(layout.Storage, "part");
        int folders = Directory.Exists(parts) ? Directory.EnumerateDirectories(parts).Take(maxPartFolders + 1).Count() : 0;
        deepParts = folders <= maxPartFolders;
        if (!deepParts)
        {
            warn($"store watcher: over {maxPartFolders:N0} part folders, so parts another process adds to an existing message are not reported (sessions, messages and new messages' parts are)");
        }

        try
        {
            if (Native.IsLinux && Inotify.TryCreate(StoreEvents, out _) is { } ino)
            {
                inotify = ino;
                // One watch per area and per folder in it (a project's sessions, a session's messages, a message's
                // parts); the areas nobody reports on (session_diff, project, ...) are left out.
                foreach (var area in Areas)
                {
                    Directory.CreateDirectory(Path.Combine(layout.Storage, area));
                    AddWatch(area);
                    if (area != "part" || deepParts)
                    {
                        foreach (var sub in Directory.EnumerateDirectories(Path.Combine(layout.Storage, area)))
                        {
                            AddWatch(area + "/" + Path.GetFileName(sub));
                        }
                    }
                }

                OwnFolders.Made += WatchOwnFolder;
                reader = new Thread(ReadEvents) { IsBackground = true, Name = "store watcher" };
                reader.Start();
                return;
            }

            // One watcher per area, not one over storage/, for the same reasons.
            timer = new Timer(_ => Drain());
            Watch(Path.Combine(layout.Storage, "session"), recursive: true);
            Watch(Path.Combine(layout.Storage, "message"), recursive: true);
            Watch(parts, recursive: deepParts);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>A folder this process just made (a new session's message folder, a new message's part folder): watched
    /// at once, on the writer's thread, so another process's file in it is heard even if it lands before the reader
    /// next wakes.</summary>
    private void WatchOwnFolder(string dir)
    {
        if (dir.Length > layout.Storage.Length + 1 && dir.StartsWith(layout.Storage, StringComparison.Ordinal) && dir[layout.Storage.Length] == Path.DirectorySeparatorChar
            && Watchable(dir[(layout.Storage.Length + 1)..]) is { } rel)
        {
            AddWatch(rel);
        }
    }

    /// <summary>The store-relative path of a folder one level down an area (a project's, a session's, a message's)
    /// that is watched, or null.</summary>
    private string? Watchable(string rel)
    {
        int slash = rel.IndexOf('/');
        return slash > 0 && rel.IndexOf('/', slash + 1) < 0 && Areas.Contains(rel[..slash]) && (deepParts || !rel.StartsWith("part/", StringComparison.Ordinal))
            && !AtomicFile.IsTemp(rel) ? rel : null;
    }

    private void AddWatch(string rel)
    {
        lock (inotifyGate)
        {
            if (watchesExhausted || disposed || inotify!.Watch(rel, Path.Combine(layout.Storage, rel), out bool fatal) || !fatal)
            {
                return; // stopped, watching, or the folder is already gone
            }

            watchesExhausted = true;
        }

        warn($"store watcher: no inotify watch left for {rel} (the per-user limit is reached): changes in new folders are not reported");
    }

    /// <summary>The inotify reader: waits for a first event, lets the burst it starts run for the debounce, then takes
    /// every queued event at once and reports.</summary>
    private void ReadEvents()
    {
        var changes = new List<Change>();
        var inotify = this.inotify!;
        try
        {
            while (!disposed)
            {
                if (Volatile.Read(ref retryPending))
                {
                    // A file read torn: once more after a debounce, with whatever else comes in meanwhile.
                    Volatile.Write(ref retryPending, false);
                    Thread.Sleep(debounce);
                }
                else if (!inotify.WaitReadable(500))
                {
                    continue;
                }
                else
                {
                    Thread.Sleep(debounce);
                }

                if (disposed)
                {
                    break;
                }

                changes.Clear();
                bool complete;
                lock (inotifyGate)
                {
                    complete = inotify.Drain(changes);
                }

                if (!complete)
                {
                    warn("store watcher: the inotify queue overflowed; some changes by other processes were not reported");
                }

                Take(changes);
                Drain();
            }
        }
        catch (Exception ex)
        {
            warn($"store watcher: stopped: {ex.Message}");
        }
        finally
        {
            OwnFolders.Made -= WatchOwnFolder;
            lock (inotifyGate)
            {
                disposed = true; // stopped (disposed, or an error warned of above): writers add no more watches
                inotify.Dispose();
            }
        }
    }

    /// <summary>Turns raw events into the paths <see cref="Touch"/> looks at, as <see cref="FileSystemWatcher"/>'s
    /// events do: a rename out of one of our own temp names (its two halves share a cookie) is our own write.</summary>
    private void Take(List<Change> changes)
    {
        HashSet<uint>? ours = null;
        foreach (var c in changes)
        {
            if (c.Self)
            {
                continue; // a watched folder went away (the kernel dropped its watch)
            }

            if (c.Is(Inotify.InMovedFrom))
            {
                if (!c.IsDir && AtomicFile.IsOwnTemp(c.Path[(c.Path.LastIndexOf('/') + 1)..]))
                {
                    (ours ??= []).Add(c.Cookie);
                }

                continue;
            }

            string abs = Path.Combine(layout.Storage, c.Path);
            if (c.IsDir)
            {
                // A folder made or moved in one level down an area: a project's, a session's or a message's (our own
                // were watched as they were made; watching again is harmless).
                if (Watchable(c.Path) is { } rel)
                {
                    AddWatch(rel);
                }

                Touch(abs);
                continue;
            }

            if (c.Is(Inotify.InMovedTo) && ours is not null && ours.Contains(c.Cookie))
            {
                continue;
            }

            if (c.Is(Inotify.InCloseWrite | Inotify.InMovedTo))
            {
                Touch(abs);
            }
        }
    }

    private void Watch(string dir, bool recursive)
    {
        Directory.CreateDirectory(dir);
        var watcher = new FileSystemWatcher(dir)
        {
            IncludeSubdirectories = recursive,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.DirectoryName,
            InternalBufferSize = 64 * 1024,
        };
        watchers.Add(watcher);
        watcher.Created += (_, e) => Touch(e.FullPath);
        watcher.Changed += (_, e) =>
        {
            if (e.FullPath.EndsWith(".json", StringComparison.Ordinal))
            {
                Touch(e.FullPath); // a folder's own changes say nothing its files' events do not
            }
        };
        // Our own writes land by renaming a temp file named by AtomicFile.TempName (AtomicFile, BulkWriter): skip those
        // exactly, including a fork's thousands of bulk-written files that raise no store event of their own.
        watcher.Renamed += (_, e) =>
        {
            if (!AtomicFile.IsOwnTemp(Path.GetFileName(e.OldFullPath)))
            {
                Touch(e.FullPath);
            }
        };
        watcher.Error += (_, e) => warn($"store watcher: {e.GetException().Message}");
        watcher.EnableRaisingEvents = true;
    }

    /// <summary>An object this process wrote: its own file events are told apart by our temp names, so all that is
    /// left is to forget what another process last had there, so that a later write of that back is reported again.
    /// (Forgetting, not hashing: this runs on every acknowledged write's path.)</summary>
    private void Remember(StoreEvent e)
    {
        if ((e.Properties["info"] ?? e.Properties["part"]) is JsonObject o && o["id"] is JsonValue v && v.TryGetValue<string>(out var id))
        {
            known.TryRemove(id, out _);
        }
    }

    private static string Hash(JsonObject o) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(o.ToJsonString())));

    private void Touch(string path)
    {
        if (!path.EndsWith(".json", StringComparison.Ordinal))
        {
            // A folder renamed into the store whole (a fork's or an import's, see BulkWriter) raises one event for
            // the folder and none for the files in it. Another process's folder is read file by file; our own
            // (OwnFolders) raised its store events already, or (a fork's messages) deliberately none. A folder just created
            // is read at the next drain, not now, and with its subfolders: a file (or folder) that lands in it before
            // the watch on it is in place raises no event of its own (a first message creates storage/message/ and
            // storage/message/<sessionID>/ at once), and by the drain the watches are there and the rename is done.
            if (!AtomicFile.IsTemp(path) && !OwnFolders.Take(path) && Directory.Exists(path))
            {
                Schedule(path);
            }

            return;
        }

        if (AtomicFile.IsTemp(path))
        {
            return;
        }

        Schedule(path);
    }

    private void Schedule(string path)
    {
        dirty[path] = 0;
        if (timer is not null && Interlocked.Exchange(ref scheduled, 1) == 0)
        {
            timer.Change(debounce, Timeout.InfiniteTimeSpan);
        }
    }

    private void Drain()
    {
        Interlocked.Exchange(ref scheduled, 0);
        foreach (var path in dirty.Keys.Order(StringComparer.Ordinal).ToList())
        {
            dirty.TryRemove(path, out _);
            try
            {
                if (path.EndsWith(".json", StringComparison.Ordinal))
                {
                    Report(path);
                }
                else if (Directory.Exists(path))
                {
                    foreach (var file in Directory.EnumerateFiles(path, "*.json", SearchOption.AllDirectories))
                    {
                        Report(file);
                    }
                }
            }
            catch (Exception ex)
            {
                warn($"store watcher: {path}: {ex.Message}");
            }
        }
    }

    private void Report(string path)
    {
        string rel = Path.GetRelativePath(layout.Storage, path);
        string kind = rel.Split(Path.DirectorySeparatorChar)[0];
        string type;
        string key;
        switch (kind)
        {
            case "session":
                (type, key) = ("session.updated", "info");
                break;
            case "message":
                (type, key) = ("message.updated", "info");
                break;
            case "part":
                (type, key) = ("message.part.updated", "part");
                break;
            default:
                return;
        }

        JsonObject? o;
        try
        {
            o = SessionStore.ReadObject(path);
        }
        catch (StoreCorruptException ex)
        {
            // Most often another process caught between its truncate and its write (OpenCode writes in place): look
            // again one debounce later, and warn only if it is still unreadable then.
            if (unreadable.TryAdd(path, 0))
            {
                Schedule(path);
                if (inotify is not null)
                {
                    Volatile.Write(ref retryPending, true);
                }
            }
            else
            {
                unreadable.TryRemove(path, out _);
                warn($"store watcher: skipping {ex.Message}");
            }

            return;
        }

        unreadable.TryRemove(path, out _);

        if (o?["id"]?.GetValue<string>() is not { } id)
        {
            return;
        }

        string hash = Hash(o);
        if (known.TryGetValue(id, out var seen) && seen == hash)
        {
            return; // our own write, or already reported
        }

        known[id] = hash;
        if (!disposed)
        {
            raise(new StoreEvent(type, new JsonObject { [key] = o }));
        }
    }

    public void Dispose()
    {
        disposed = true;
        foreach (var w in watchers)
        {
            w.Dispose();
        }

        timer?.Dispose();
        if (reader is null)
        {
            inotify?.Dispose(); // otherwise the reader closes it as it leaves (it may be reading it now)
        }
        else
        {
            OwnFolders.Made -= WatchOwnFolder;
        }
    }
}
