namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// Crash-safe file replacement: write a temp file in the same folder, fsync it, rename it over the
/// target, then fsync the folder. At any instant the target is either the old or the new content.
/// Temp files end in <see cref="TempSuffix"/>, never in <c>.json</c>, so no reader mistakes them for data.
/// </summary>
public static class AtomicFile
{
    public const string TempSuffix = ".tmp";

    /// <summary>Temp files older than this are debris from a crashed writer and may be removed.</summary>
    public static readonly TimeSpan StaleTempAge = TimeSpan.FromMinutes(5);

    public static void Write(string path, ReadOnlySpan<byte> bytes, bool durable = true)
    {
        string dir = Path.GetDirectoryName(path)!;
        string tmp = WriteTempCreatingFolder(path, bytes, durable, out _);
        Publish(tmp, path, durable);
        if (durable)
        {
            Native.FsyncDirectory(dir);
        }
    }

    /// <summary>
    /// Replaces several files: every temp file is written (and fsync'd when <paramref name="durable"/>), then every
    /// rename happens, then (when durable) each folder is fsync'd once. On ext4 the first fsync commits the journal
    /// with the other temp files' data and the first folder fsync commits all the renames, so the later fsyncs find
    /// nothing left to do. A failure while writing the temp files changes nothing. Each file is replaced atomically;
    /// the files are renamed in the order given, so a crash between two renames leaves the earlier ones new and the
    /// later ones old. Returns each new file's mtime in ticks: <see cref="WriteJournal"/>, which writes with
    /// <paramref name="durable"/> false and makes the batch durable itself, records them so a replay can tell
    /// whether a later write replaced the file.
    /// </summary>
    public static long[] WriteAll(IReadOnlyList<(string Path, byte[] Bytes)> files, bool durable = true)
    {
        var temps = new string[files.Count];
        var stamps = new long[files.Count];
        try
        {
            for (int i = 0; i < files.Count; i++)
            {
                temps[i] = WriteTempCreatingFolder(files[i].Path, files[i].Bytes, durable, out stamps[i]); // a rename keeps the mtime
            }

            for (int i = 0; i < files.Count; i++)
            {
                Publish(temps[i], files[i].Path, durable);
                temps[i] = null!;
            }
        }
        catch
        {
            foreach (var t in temps)
            {
                if (t is not null)
                {
                    TryDelete(t);
                }
            }

            throw;
        }

        if (durable)
        {
            foreach (var dir in files.Select(f => Path.GetDirectoryName(f.Path)!).Distinct(StringComparer.Ordinal))
            {
                Native.FsyncDirectory(dir);
            }
        }

        return stamps;
    }

    /// <summary>Writes the temp file for <paramref name="path"/>, creating its folder when that is missing: tried
    /// first and made on failure, since the folder is there for all but a message's first part. A folder made for a
    /// durable write is durable in its parent; otherwise the caller's journal recreates it after a crash.</summary>
    private static string WriteTempCreatingFolder(string path, ReadOnlySpan<byte> bytes, bool durable, out long stamp)
    {
        try
        {
            return WriteTemp(path, bytes, durable, out stamp);
        }
        catch (DirectoryNotFoundException)
        {
            string dir = Path.GetDirectoryName(path)!;
            if (durable)
            {
                CreateDirectoryDurably(dir);
            }
            else
            {
                OwnFolders.Create(dir);
            }

            return WriteTemp(path, bytes, durable, out stamp);
        }
    }

    // pid + a per-process random part + a counter: two processes (or two threads) never share a temp name, and a
    // later process given a dead one's pid does not meet its leftovers.
    private static readonly string TempTag = $".{Environment.ProcessId}.{Random.Shared.NextInt64():x16}";
    private static long tempCounter;

    /// <summary>A fresh temp name beside <paramref name="path"/>.</summary>
    internal static string TempName(string path) => $"{path}{TempTag}{Interlocked.Increment(ref tempCounter):x}{TempSuffix}";

    private static string WriteTemp(string path, ReadOnlySpan<byte> bytes, bool durable, out long stamp)
    {
        string tmp = TempName(path);
        try
        {
            if (Native.IsLinux)
            {
                // open, write, (fsync,) statx, close: .NET's FileStream adds flocks, an lseek and an fstat, and
                // File.GetLastWriteTimeUtc a path lookup; this is on every acknowledged write's path.
                stamp = Native.WriteNewFile(tmp, bytes, durable, stamp: true);
                return tmp;
            }

            using (var fs = new FileStream(tmp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = 0,
                Options = FileOptions.None,
            }))
            {
                fs.Write(bytes);
                if (durable)
                {
                    fs.Flush(flushToDisk: true);
                }
            }

            stamp = File.GetLastWriteTimeUtc(tmp).Ticks;
        }
        catch (DirectoryNotFoundException)
        {
            throw; // nothing was created
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }

        return tmp;
    }

    /// <summary>Moves a written temp file to <paramref name="path"/>. A file that is not durable yet (its data is
    /// still only in the page cache: the journal's writes) replaces an existing one by exchange, not rename; see
    /// <see cref="Native.TryExchange"/>. A durable one was fsync'd already, so a rename costs it nothing more.</summary>
    private static void Publish(string tmp, string path, bool durable)
    {
        try
        {
            if (Native.IsLinux)
            {
                if (durable || !Native.TryExchange(tmp, path))
                {
                    Native.Rename(tmp, path); // File.Move stats both paths first
                }
            }
            else
            {
                File.Move(tmp, path, overwrite: true);
            }
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Creates a directory and every missing parent, fsyncing each parent so the new entries survive a crash.</summary>
    public static void CreateDirectoryDurably(string dir)
    {
        foreach (var d in OwnFolders.Create(dir))
        {
            Native.FsyncDirectory(Path.GetDirectoryName(d)!);
        }
    }

    /// <summary>Deletes a file if it exists and makes the deletion durable. Missing files are fine.</summary>
    public static bool Delete(string path, bool durable = true)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        if (durable)
        {
            Native.FsyncDirectory(Path.GetDirectoryName(path)!);
        }

        return true;
    }

    public static bool IsTemp(string path) => path.EndsWith(TempSuffix, StringComparison.Ordinal);

    /// <summary>A temp file this process named (<see cref="TempName"/>): what a store watcher sees renamed away when
    /// one of our own writes lands.</summary>
    public static bool IsOwnTemp(string name) => IsTemp(name) && name.Contains(TempTag, StringComparison.Ordinal);

    /// <summary>Removes temp files a crashed writer left behind under <paramref name="root"/>. Young temp files
    /// may belong to a live writer in another process, so only stale ones go.</summary>
    public static int CleanStaleTemps(string root, CancellationToken ct = default)
    {
        if (!Directory.Exists(root))
        {
            return 0;
        }

        int removed = 0;
        var cutoff = DateTime.UtcNow - StaleTempAge;
        foreach (var file in Directory.EnumerateFiles(root, "*" + TempSuffix, new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                if (File.GetLastWriteTimeUtc(file) < cutoff)
                {
                    File.Delete(file);
                    removed++;
                }
            }
            catch (IOException)
            {
                // raced with its owner; harmless
            }
        }

        return removed;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
