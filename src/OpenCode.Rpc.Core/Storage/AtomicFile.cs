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
        EnsureDirectory(dir);
        string tmp = WriteTemp(path, bytes, durable);
        Publish(tmp, path);
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
                string dir = Path.GetDirectoryName(files[i].Path)!;
                if (durable)
                {
                    EnsureDirectory(dir);
                }
                else if (!Directory.Exists(dir))
                {
                    OwnFolders.Create(dir); // the caller's journal recreates it after a crash
                }

                temps[i] = WriteTemp(files[i].Path, files[i].Bytes, durable);
                stamps[i] = File.GetLastWriteTimeUtc(temps[i]).Ticks; // a rename keeps the mtime
            }

            for (int i = 0; i < files.Count; i++)
            {
                Publish(temps[i], files[i].Path);
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

    private static void EnsureDirectory(string dir)
    {
        if (!Directory.Exists(dir))
        {
            CreateDirectoryDurably(dir);
        }
    }

    private static string WriteTemp(string path, ReadOnlySpan<byte> bytes, bool durable)
    {
        // pid + random: two processes (or two threads) never share a temp name.
        string tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}";
        try
        {
            using var fs = new FileStream(tmp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = 0,
                Options = FileOptions.None,
            });
            fs.Write(bytes);
            if (durable)
            {
                fs.Flush(flushToDisk: true);
            }
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }

        return tmp;
    }

    private static void Publish(string tmp, string path)
    {
        try
        {
            File.Move(tmp, path, overwrite: true);
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
