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
    private readonly HashSet<string> createdDirs = new(StringComparer.Ordinal);

    public void Write(string path, ReadOnlySpan<byte> bytes)
    {
        string dir = Path.GetDirectoryName(path)!;
        if (!createdDirs.Contains(dir) && !Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            createdDirs.Add(dir);
        }

        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            fs.Write(bytes);
        }

        written.Add(path);
    }

    /// <summary>Makes every file written so far durable.</summary>
    public void Flush(string anyDirOnTheFileSystem) => Native.SyncFileSystem(anyDirOnTheFileSystem);

    /// <summary>Removes every file and folder this writer created (after a failure).</summary>
    public void Rollback()
    {
        foreach (var f in written)
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
