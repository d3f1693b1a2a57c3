using System.Collections.Concurrent;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// Writes many new files whose visibility is gated by one last file (a fork's or an import's session file).
/// <list type="bullet">
/// <item>A file whose folder does not exist yet (a new session's message folder, a new message's part folder) is
/// written straight into a staging copy of that folder under <c>&lt;data&gt;/opencode-rpc/staging/</c>, outside
/// <c>storage/</c>; <see cref="Flush"/> renames the whole folder into place. A 2,000-message fork is then 2,001
/// renames instead of 6,000, and no file ever appears in <c>storage/</c> before its contents are complete: a
/// SIGKILL mid-write must not leave an empty or short <c>*.json</c> there, which every later reader (OpenCode's own
/// JSON-to-SQLite migration included) would trip on.</item>
/// <item>A file in a folder that exists is written under a temp name beside its target and renamed by Flush.</item>
/// <item>Flush makes everything durable with one <c>syncfs</c> before the renames and one after, instead of an
/// fsync per file.</item>
/// </list>
/// Until the gate exists nobody lists the files, so a crash midway leaves only unreachable debris (staging folders
/// are removed at the next start), never a half session; <see cref="Rollback"/> removes everything written.
/// <see cref="Write"/> may be called from several threads at once.
/// </summary>
public sealed class BulkWriter
{
    private readonly string storage;
    private readonly string stagingRoot;
    private readonly ConcurrentDictionary<string, string> staged = new(StringComparer.Ordinal); // final folder -> staging folder
    private readonly ConcurrentBag<(string Temp, string Path)> pending = [];
    private readonly List<string> published = []; // final files and folders, for Rollback (only Flush adds: one thread)
    private int nextStage;

    public BulkWriter(StoreLayout layout)
    {
        storage = layout.Storage;
        stagingRoot = Path.Combine(layout.StagingDir, $"{Environment.ProcessId}-{Guid.NewGuid():N}");
    }

    public void Write(string path, ReadOnlySpan<byte> bytes)
    {
        string dir = Path.GetDirectoryName(path)!;
        if (staged.TryGetValue(dir, out var stage) || !Directory.Exists(dir))
        {
            stage ??= staged.GetOrAdd(dir, _ => Directory.CreateDirectory(Path.Combine(stagingRoot, Interlocked.Increment(ref nextStage).ToString(System.Globalization.CultureInfo.InvariantCulture))).FullName);
            WriteFile(Path.Combine(stage, Path.GetFileName(path)), bytes);
            return;
        }

        string tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{AtomicFile.TempSuffix}";
        pending.Add((tmp, path));
        WriteFile(tmp, bytes);
    }

    /// <summary>
    /// Runs <paramref name="write"/> for every item on several threads: creating files is most of the cost of a
    /// fork or an import (a 2,000-message session is ~6,000 files), and items write into separate folders.
    /// The first failure is rethrown as itself, not wrapped.
    /// </summary>
    public void WriteEach<T>(IReadOnlyList<T> items, Action<T, BulkWriter> write, CancellationToken ct)
    {
        IoParallel.For(items.Count, i => write(items[i], this), ct);
    }

    /// <summary>Makes every file written so far durable and moves it to its final name: one syncfs for the
    /// contents, the renames, one syncfs for the renames.</summary>
    public void Flush()
    {
        Native.SyncFileSystem(storage);
        foreach (var (final, stage) in staged.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string parent = Path.GetDirectoryName(final)!;
            if (!Directory.Exists(parent))
            {
                AtomicFile.CreateDirectoryDurably(parent);
            }

            try
            {
                OwnFolders.Mark(final);
                Directory.Move(stage, final);
                published.Add(final);
            }
            catch (IOException)
            {
                // Someone created the folder since Write looked (another process importing the same session), or
                // storage/ is on another filesystem than the data dir: move the files one by one and keep theirs
                // where both have one, as a conflicting insert would.
                Directory.CreateDirectory(final);
                foreach (var file in Directory.EnumerateFiles(stage))
                {
                    string target = Path.Combine(final, Path.GetFileName(file));
                    if (!File.Exists(target))
                    {
                        File.Move(file, target);
                        published.Add(target);
                    }
                }
            }
        }

        foreach (var (tmp, path) in pending)
        {
            File.Move(tmp, path, overwrite: true);
            published.Add(path);
        }

        pending.Clear();
        staged.Clear();
        Native.SyncFileSystem(storage);
        DeleteStaging();
    }

    /// <summary>Removes every file and folder this writer created (after a failure).</summary>
    public void Rollback()
    {
        foreach (var p in published.Concat(pending.Select(x => x.Temp)))
        {
            try
            {
                if (Directory.Exists(p))
                {
                    Directory.Delete(p, recursive: true);
                }
                else
                {
                    File.Delete(p);
                }
            }
            catch (IOException)
            {
            }
        }

        DeleteStaging();
    }

    /// <summary>Removes staging folders that a crashed writer left behind. Young ones may belong to a live writer
    /// in another process, so only those older than <see cref="AtomicFile.StaleTempAge"/> go.</summary>
    public static int CleanStale(StoreLayout layout)
    {
        if (!Directory.Exists(layout.StagingDir))
        {
            return 0;
        }

        int removed = 0;
        var cutoff = DateTime.UtcNow - AtomicFile.StaleTempAge;
        foreach (var dir in Directory.EnumerateDirectories(layout.StagingDir))
        {
            try
            {
                if (Directory.GetLastWriteTimeUtc(dir) < cutoff)
                {
                    Directory.Delete(dir, recursive: true);
                    removed++;
                }
            }
            catch (IOException)
            {
            }
        }

        return removed;
    }

    private static void WriteFile(string path, ReadOnlySpan<byte> bytes)
    {
        // FileShare.ReadWrite skips the advisory flock that FileShare.None costs on Unix; nobody else knows the name.
        using var h = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.Write(h, bytes, 0);
    }

    private void DeleteStaging()
    {
        try
        {
            if (Directory.Exists(stagingRoot))
            {
                Directory.Delete(stagingRoot, recursive: true);
            }
        }
        catch (IOException)
        {
        }
    }
}
