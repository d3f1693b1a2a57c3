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
/// <item>Durability. With the store's <see cref="WriteJournal"/> (what the store hands out), <see cref="Commit"/>
/// renames everything into place and the gate last, then appends every file's contents to the journal and flushes
/// it once: one sequential write and one flush instead of a <c>syncfs</c> before the renames and one after, which
/// also wait for every other process's dirty pages. A SIGKILL loses nothing the kernel already has; a crash of the
/// machine gets the files back from the journal after the reboot (see WriteJournal). A batch over
/// <see cref="JournalCap"/> bytes (the journal would hold a second copy in memory), or a writer without a journal,
/// uses the two <c>syncfs</c> calls instead.</item>
/// </list>
/// Until the gate exists nobody lists the files, so a crash midway leaves only unreachable debris (staging folders
/// are removed at the next start), never a half session; <see cref="Rollback"/> removes everything written.
/// <see cref="Write"/> may be called from several threads at once.
/// </summary>
public sealed class BulkWriter
{
    private readonly StoreLayout layout;
    private readonly string stagingRoot;
    private readonly ConcurrentDictionary<string, string> staged = new(StringComparer.Ordinal); // final folder -> staging folder
    private readonly ConcurrentDictionary<string, bool> parents = new(StringComparer.Ordinal); // folders known to exist
    private readonly ConcurrentBag<(string Temp, string Path)> pending = [];
    private readonly ConcurrentQueue<string> published = new(); // final files and folders, for Rollback
    private readonly WriteJournal? journal;
    private readonly ConcurrentQueue<(string Path, byte[] Bytes)> journaled = new(); // replayable files, for Commit
    private readonly ConcurrentQueue<(string Path, byte[] Bytes)> outside = new(); // not replayable (journal mode only)
    private long journaledBytes;
    private int nextStage;

    /// <summary>Past this many bytes a batch is made durable with <c>syncfs</c> rather than through the journal.</summary>
    public const long JournalCap = 32L << 20;

    public BulkWriter(StoreLayout layout, WriteJournal? journal = null)
    {
        this.layout = layout;
        stagingRoot = Path.Combine(layout.StagingDir, $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        this.journal = journal;
    }

    /// <summary>True while this batch will be made durable through the journal.</summary>
    private bool Journaling => journal is not null && Interlocked.Read(ref journaledBytes) <= JournalCap;

    public void Write(string path, byte[] bytes) => Write(path, bytes, ifNew: false);

    public void Write(string path, ReadOnlySpan<byte> bytes) => Write(path, bytes.ToArray(), ifNew: false);

    /// <summary>Writes <paramref name="path"/> unless it exists already (a re-import keeps what is there). Free for a
    /// file in a folder this writer creates: nothing can be in it yet.</summary>
    public void WriteNew(string path, byte[] bytes) => Write(path, bytes, ifNew: true);

    private void Write(string path, byte[] bytes, bool ifNew)
    {
        if (journal is not null && !WriteJournal.IsReplayable(layout, path))
        {
            // A file a replay may not write: Commit writes it durably by itself.
            outside.Enqueue((path, bytes));
            return;
        }

        string dir = Path.GetDirectoryName(path)!;
        string target;
        if (staged.TryGetValue(dir, out var stage) || !Directory.Exists(dir))
        {
            stage ??= staged.GetOrAdd(dir, _ => Directory.CreateDirectory(Path.Combine(stagingRoot, Interlocked.Increment(ref nextStage).ToString(System.Globalization.CultureInfo.InvariantCulture))).FullName);
            target = Path.Combine(stage, Path.GetFileName(path));
        }
        else if (ifNew && File.Exists(path))
        {
            return;
        }
        else
        {
            target = AtomicFile.TempName(path);
            pending.Add((target, path));
        }

        if (journal is not null && Interlocked.Add(ref journaledBytes, bytes.Length) <= JournalCap)
        {
            journaled.Enqueue((path, bytes));
        }

        WriteFile(target, bytes);
    }

    /// <summary>
    /// Publishes the batch and then the gate (the session file that makes it visible), durably: through the journal
    /// when it has one and the batch is within <see cref="JournalCap"/>, else with <see cref="Flush"/> and a durable
    /// write of the gate.
    /// </summary>
    public void Commit(string gatePath, byte[] gateBytes)
    {
        // Files outside the journal's reach first, durably, so the batch is never visible without them.
        foreach (var (path, bytes) in outside)
        {
            AtomicFile.Write(path, bytes);
            published.Enqueue(path);
        }

        if (!Journaling)
        {
            Flush();
            AtomicFile.Write(gatePath, gateBytes);
            published.Enqueue(gatePath);
            return;
        }

        Publish();
        AtomicFile.WriteAll([(gatePath, gateBytes)], durable: false);
        published.Enqueue(gatePath);
        var all = new List<(string Path, byte[] Bytes)>(journaled.Count + 1);
        all.AddRange(journaled);
        all.Add((gatePath, gateBytes)); // last: a replay makes the session visible only with everything before it
        journal!.Record(all);
        DeleteStaging();
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
        Native.SyncFileSystem(layout.Storage);
        Publish();
        Native.SyncFileSystem(layout.Storage);
        DeleteStaging();
    }

    /// <summary>
    /// Moves the folder staged for <paramref name="finalDir"/> into place now that every file of it is written (a
    /// new message's part folder), so its rename overlaps the writing of the others instead of queueing at the end.
    /// Only while the batch goes through the journal: with <c>syncfs</c> durability no content may be renamed into
    /// <c>storage/</c> before it is flushed. Nothing lists the folder before the gate, and it arrives whole.
    /// </summary>
    public void Seal(string finalDir)
    {
        if (Journaling && staged.TryRemove(finalDir, out var stage))
        {
            MoveStaged(finalDir, stage);
        }
    }

    /// <summary>Moves every staged folder and temp file to its final name (no flush).</summary>
    private void Publish()
    {
        foreach (var (final, stage) in staged.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            MoveStaged(final, stage);
        }

        foreach (var (tmp, path) in pending)
        {
            File.Move(tmp, path, overwrite: true);
            published.Enqueue(path);
        }

        pending.Clear();
        staged.Clear();
    }

    private void MoveStaged(string final, string stage)
    {
        string parent = Path.GetDirectoryName(final)!;
        if (!parents.ContainsKey(parent))
        {
            if (!Directory.Exists(parent))
            {
                AtomicFile.CreateDirectoryDurably(parent);
            }

            parents.TryAdd(parent, true); // storage/part/ and storage/message/<id>/: checked once, not per folder
        }

        try
        {
            OwnFolders.Mark(final);
            // A plain rename also takes the place of an empty folder that appeared meanwhile, as merging into it would.
            if (!Native.TryRename(stage, final))
            {
                Directory.Move(stage, final); // a folder with files in it (or not Unix): the merge below
            }

            published.Enqueue(final);
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
                    published.Enqueue(target);
                }
            }
        }
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
        if (Native.IsLinux)
        {
            Native.WriteNewFile(path, bytes);
            return;
        }

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
