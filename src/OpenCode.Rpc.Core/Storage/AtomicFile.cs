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
        bool created = !Directory.Exists(dir);
        if (created)
        {
            CreateDirectoryDurably(dir);
        }

        // pid + random: two processes (or two threads) never share a temp name.
        string tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}";
        try
        {
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

            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }

        if (durable)
        {
            Native.FsyncDirectory(dir);
        }
    }

    /// <summary>Creates a directory and every missing parent, fsyncing each parent so the new entries survive a crash.</summary>
    public static void CreateDirectoryDurably(string dir)
    {
        var missing = new Stack<string>();
        for (string? d = dir; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
        {
            missing.Push(d);
        }

        while (missing.Count > 0)
        {
            string d = missing.Pop();
            Directory.CreateDirectory(d);
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
    public static int CleanStaleTemps(string root)
    {
        if (!Directory.Exists(root))
        {
            return 0;
        }

        int removed = 0;
        var cutoff = DateTime.UtcNow - StaleTempAge;
        foreach (var file in Directory.EnumerateFiles(root, "*" + TempSuffix, new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
        {
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
