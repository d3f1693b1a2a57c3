using System.Collections.Concurrent;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// Folders this process created or renamed into <c>storage/</c> recently, so this process's
/// <see cref="Sessions.StoreWatcher"/> can tell them from another process's: inotify reports a new or moved-in folder
/// with no hint of who made it, and reading our own folder back would report our own writes a second time.
/// </summary>
public static class OwnFolders
{
    private static readonly ConcurrentDictionary<string, DateTime> Recent = new(StringComparer.Ordinal);

    public static void Mark(string dir) => Recent[dir] = DateTime.UtcNow;

    /// <summary>Raised, on the creating thread, for each folder <see cref="Create"/> made, right after the mkdir: a
    /// store watcher watches it before anything is written into it (it is told of the folder itself only later).</summary>
    internal static event Action<string>? Made;

    /// <summary>True (once) when <paramref name="dir"/> is a folder this process made.</summary>
    public static bool Take(string dir)
    {
        if (Recent.Count > 100_000)
        {
            // Entries nobody took (no watcher running): forget the old ones.
            var cutoff = DateTime.UtcNow - TimeSpan.FromMinutes(1);
            foreach (var (k, t) in Recent)
            {
                if (t < cutoff)
                {
                    Recent.TryRemove(k, out _);
                }
            }
        }

        return Recent.TryRemove(dir, out _);
    }

    /// <summary>Creates <paramref name="dir"/> and its missing parents, marking each new one as ours; returns them
    /// outermost first (so a caller can make each entry durable in its parent).</summary>
    public static List<string> Create(string dir)
    {
        if (Native.IsLinux)
        {
            var made = new List<string>();
            MakeMissing(dir, made);
            return made;
        }

        var missing = new List<string>();
        for (string? d = dir; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
        {
            missing.Add(d);
        }

        missing.Reverse();
        foreach (var d in missing)
        {
            Mark(d); // before it exists: the watcher may hear of it before CreateDirectory returns
            Directory.CreateDirectory(d);
            Made?.Invoke(d);
        }

        return missing;
    }

    /// <summary>mkdir first, the parent only when that fails for want of it: a message's part folder is one syscall,
    /// not the four stats and a mkdir of <see cref="Directory.CreateDirectory(string)"/> after the checks above.</summary>
    private static void MakeMissing(string dir, List<string> made)
    {
        Mark(dir);
        bool madeIt;
        try
        {
            try
            {
                madeIt = Native.MakeDirectory(dir);
            }
            catch (DirectoryNotFoundException) when (Path.GetDirectoryName(dir) is { } parent && parent != dir)
            {
                MakeMissing(parent, made);
                madeIt = Native.MakeDirectory(dir);
            }
        }
        catch
        {
            Recent.TryRemove(dir, out _);
            throw;
        }

        if (!madeIt)
        {
            Recent.TryRemove(dir, out _); // someone else's
            return;
        }

        made.Add(dir);
        Made?.Invoke(dir);
    }
}
