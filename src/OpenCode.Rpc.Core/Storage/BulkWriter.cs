namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// Writes many new files whose visibility is gated by one last file (a fork's or an import's session file): the
/// files are written plainly, then one <c>syncfs</c> makes them all durable, then the gate is written atomically.
/// Until the gate exists nobody lists them, so a crash midway leaves only unreachable debris, never a half session;
/// on failure everything written is removed. One syncfs instead of thousands of fsyncs is what makes a
/// 2,000-message fork take milliseconds, not seconds.
/// </summary>
public sealed class BulkWriter
{
    private readonly List<string> written = [];
    private readonly List<(string Temp, string Path)> pending = [];
    private readonly HashSet<string> createdDirs = new(StringComparer.Ordinal);

    public void Write(string path, ReadOnlySpan<byte> bytes)
    {
        string dir = Path.GetDirectoryName(path)!;
        if (!createdDirs.Contains(dir) && !Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            createdDirs.Add(dir);
        }

        // Under a temp name until Flush: a SIGKILL between create and write must not leave an empty (or short)
        // *.json at the final name, which every later reader of the store (OpenCode's own JSON-to-SQLite migration
        // included) would trip on. The soak driver found exactly that.
        string tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{AtomicFile.TempSuffix}";
        using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            fs.Write(bytes);
        }

        pending.Add((tmp, path));
    }

    /// <summary>Makes every file written so far durable: one syncfs for the contents, the renames to the final
    /// names, one syncfs for the renames.</summary>
    public void Flush(string anyDirOnTheFileSystem)
    {
        Native.SyncFileSystem(anyDirOnTheFileSystem);
        foreach (var (tmp, path) in pending)
        {
            File.Move(tmp, path, overwrite: true);
            written.Add(path);
        }

        pending.Clear();
        Native.SyncFileSystem(anyDirOnTheFileSystem);
    }

    /// <summary>Removes every file and folder this writer created (after a failure).</summary>
    public void Rollback()
    {
        foreach (var f in written.Concat(pending.Select(p => p.Temp)))
        {
            try
            {
                File.Delete(f);
            }
            catch (IOException)
            {
            }
        }

        foreach (var d in createdDirs.OrderByDescending(d => d.Length))
        {
            try
            {
                if (Directory.Exists(d) && !Directory.EnumerateFileSystemEntries(d).Any())
                {
                    Directory.Delete(d);
                }
            }
            catch (IOException)
            {
            }
        }
    }
}
