using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// Group durability for the hot write path (<c>message/update</c>, <c>part/update</c>). A durable file replacement
/// costs two device flushes (the temp file, then its folder), three when the folder is new; a streaming agent makes
/// hundreds of them. Here each file is still replaced atomically (temp file + rename, so readers, OpenCode
/// included, see old or new content and never a torn file), but without its flushes; instead the new contents are
/// appended to a per-process journal and the journal alone is flushed, once per batch, before the write is
/// acknowledged. About once a second a checkpoint makes the files themselves durable (one <c>syncfs</c>) and drops
/// the journal segment that covered them.
/// <para>
/// What the journal protects against is a lost page cache: a power cut or a kernel crash. A killed process loses
/// nothing (its renames are in the kernel already), so a journal left by a dead process is replayed only when the
/// machine has rebooted since it was written (<c>/proc/sys/kernel/random/boot_id</c> differs); in the same boot it
/// is simply removed. Replay writes a file back only if the file is missing or is not newer than the journalled
/// write and differs from it, so a later write by anyone else wins.
/// </para>
/// <para>
/// Removals are not journalled. The store checkpoints before it removes anything, so a replay can never bring back
/// a message or part this process removed. (Another program that removes a file in the second before a power cut
/// may see it come back: the window is one checkpoint interval, and its own removal is not durable either.)
/// </para>
/// Layout: <c>&lt;data&gt;/opencode-rpc/journal/&lt;pid&gt;-&lt;guid&gt;/</c> holding <c>lock</c> (flock'd while the
/// owner lives), <c>boot</c> and <c>seg-&lt;n&gt;.wal</c>. A record is <c>"OCJ1"</c>, the payload length (u32 LE),
/// the first 8 bytes of the payload's SHA-256, then the payload: a count (u16) and per file its mtime in .NET ticks
/// (i64), its path relative to the data dir (u16 length + UTF-8) and its bytes (u32 length + bytes). A torn last
/// record fails its hash and is ignored: it was never acknowledged.
/// </summary>
public sealed class WriteJournal : IDisposable
{
    /// <summary>How long the newest acknowledged write may rely on the journal alone.</summary>
    public static readonly TimeSpan CheckpointInterval = TimeSpan.FromSeconds(1);

    private const uint Magic = 0x314A434F; // "OCJ1" little-endian
    private const int HeaderSize = 16;

    /// <summary>Past this many bytes of file contents, a <see cref="Record"/> batch starts another record.</summary>
    private const int RecordChunkBytes = 8 << 20;

    // One journal per data dir per process, for the life of the process: every store over that data dir shares it,
    // and the process's exit checkpoints it (a SIGKILL leaves it for the next start, which removes it).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, WriteJournal> Shared = new(StringComparer.Ordinal);
    private static int exitHooked;

    private readonly StoreLayout layout;
    private readonly Action<string> warn;
    private readonly string bootId;
    private readonly Lock gate = new();
    private readonly Timer timer;
    private string? dir;
    private int lockFd = -1;
    private Segment? segment;
    private int segmentNo;
    private bool dirty;
    private bool flushing; // a checkpoint's syncfs is running
    private bool timerArmed;
    private bool disposed;

    public WriteJournal(StoreLayout layout, Action<string>? warn = null, string? bootId = null)
    {
        this.layout = layout;
        this.warn = warn ?? (_ => { });
        this.bootId = bootId ?? CurrentBootId();
        timer = new Timer(_ => CheckpointQuietly(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>This process's journal for <paramref name="layout"/>'s data dir.</summary>
    public static WriteJournal For(StoreLayout layout, Action<string>? warn = null)
    {
        if (Interlocked.Exchange(ref exitHooked, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                foreach (var j in Shared.Values)
                {
                    j.Dispose();
                }
            };
        }

        return Shared.GetOrAdd(layout.DataDir, _ => new WriteJournal(layout, warn));
    }

    public static string JournalRoot(StoreLayout layout) => Path.Combine(layout.SideDir, "journal");

    /// <summary>
    /// Set by a one-shot CLI verb. At exit a journal with writes since its last checkpoint must wait for a
    /// <c>syncfs</c> before it can go, and after an import that is most of the verb's time: a 2,000-message session is
    /// 8,000 new inodes and ~25 MB of blocks on their way to the disk. With a hand-off, the exit passes the journal to
    /// a helper process instead, which waits for that flush after we are gone and then removes the journal. The writes
    /// were durable through the journal before the verb reported them; only the files' own flush is deferred, and a
    /// machine crash before it is what the journal is for. Gets the journal folder and a descriptor of its lock that
    /// the helper inherits (so no other process takes the journal for a dead one's in between); returns whether the
    /// helper started. Without it, or when it fails, the exit flushes in place.
    /// </summary>
    public Func<string, int, bool>? ExitHandOff { get; set; }

    /// <summary>Replaces each file atomically and returns once the batch is durable through the journal. The files
    /// are renamed in the order given, before the record is appended, so a checkpoint that runs after the append
    /// covers every rename it describes. Returns each file's new mtime (UTC ticks).</summary>
    public long[] Write(IReadOnlyList<(string Path, byte[] Bytes)> files)
    {
        long[] stamps = AtomicFile.WriteAll(files, durable: false);
        Append([Encode(layout.DataDir, files, stamps)]);
        return stamps;
    }

    /// <summary>Appends whole records to the current segment and flushes it once.</summary>
    private void Append(List<byte[]> records)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            // A batch that fills most of a preallocated segment by itself (an import, a fork) gains nothing from the
            // zeros: it goes into a bare segment, and its one flush carries the size with the data.
            long size = records.Sum(r => (long)r.Length);
            bool preallocate = size < Segment.Preallocated / 2;
            var seg = segment ??= dir is null ? Open(preallocate) : NewSegment(SegmentPath(++segmentNo), preallocate);
            try
            {
                seg.WriteDurably(records, size);
            }
            catch
            {
                // A half-appended record would hide every record after it from a replay: later writes go to a new
                // segment. This one stays until the journal closes; its earlier records are still good.
                seg.Dispose();
                segment = null;
                throw;
            }

            dirty = true;
            if (!timerArmed)
            {
                timerArmed = true;
                timer.Change(CheckpointInterval, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>
    /// Journals files that are already in place, renamed there without flushes by <see cref="BulkWriter"/> (a fork's
    /// or an import's thousands of files), and returns once they are durable through the journal: one flush for the
    /// lot instead of a <c>syncfs</c> before and after the renames. Every file gets the same stamp, taken now, after
    /// every rename, so a replay writes a file back only if it is missing, or not newer than this batch and different.
    /// </summary>
    public void Record(IReadOnlyList<(string Path, byte[] Bytes)> files)
    {
        if (files.Count == 0)
        {
            return;
        }

        long stamp = DateTime.UtcNow.Ticks;
        // A record counts its files in a u16 and is built in one buffer: a big batch is several records.
        var records = new List<byte[]>();
        var chunk = new List<(string Path, byte[] Bytes)>();
        long chunkBytes = 0;
        for (int i = 0; i < files.Count; i++)
        {
            chunk.Add(files[i]);
            chunkBytes += files[i].Bytes.Length;
            if (chunk.Count == ushort.MaxValue || chunkBytes >= RecordChunkBytes || i == files.Count - 1)
            {
                records.Add(Encode(layout.DataDir, chunk, Enumerable.Repeat(stamp, chunk.Count).ToArray()));
                chunk.Clear();
                chunkBytes = 0;
            }
        }

        Append(records);
    }

    /// <summary>Makes every journalled write durable in the files themselves and drops the journal segments that
    /// covered them. Cheap when nothing was written since the last one.</summary>
    public void Checkpoint()
    {
        int no;
        lock (gate)
        {
            if (disposed || !dirty || segment is null)
            {
                timerArmed = false;
                return;
            }

            no = segmentNo + 1;
        }

        // The next segment is made here, off the request path: preallocating it is what keeps each append's flush
        // a pure data flush (see Segment).
        var next = NewSegment(SegmentPath(no));
        Segment old;
        lock (gate)
        {
            timerArmed = false;
            if (disposed || segment is null || segmentNo + 1 != no)
            {
                next.Dispose();
                File.Delete(next.Path);
                return;
            }

            // Rotate first, so writers carry on into the fresh segment while the file system is flushed.
            old = segment;
            segment = next;
            segmentNo = no;
            dirty = false;
            flushing = true;
        }

        // Every write whose record is in the old segment renamed its files before appending, so this flush
        // covers them all. Removing the old segment need not be durable: replaying it again is harmless.
        try
        {
            Native.SyncFileSystem(layout.DataDir);
        }
        finally
        {
            lock (gate)
            {
                flushing = false;
            }
        }

        old.Dispose();
        File.Delete(old.Path);
    }

    public void Dispose()
    {
        bool unflushed;
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            // Nothing appended since the last checkpoint, and its flush is done: nothing here needs one.
            unflushed = dirty || flushing;
        }

        timer.Dispose();
        try
        {
            if (dir is not null)
            {
                if (unflushed)
                {
                    if (HandOff())
                    {
                        return;
                    }

                    Native.SyncFileSystem(layout.DataDir);
                }

                segment?.Dispose();
                Directory.Delete(dir, recursive: true);
            }
        }
        catch (IOException ex)
        {
            warn($"write journal: could not close {dir}: {ex.Message}");
        }
        finally
        {
            if (lockFd >= 0)
            {
                Native.Unlock(lockFd);
            }
        }
    }

    /// <summary>Passes the journal to <see cref="ExitHandOff"/>'s helper: true when it took it. The lock then lives on in
    /// the helper's inherited descriptor, so ours is closed without unlocking (an unlock would release it for both).</summary>
    private bool HandOff()
    {
        // Linux only: the helper recognises the lock it inherits through /proc/self/fd; elsewhere it would wait on a
        // second lock of its own against the one it holds.
        if (ExitHandOff is not { } handOff || lockFd < 0 || !OperatingSystem.IsLinux())
        {
            return false;
        }

        int inherited = Native.DupInheritable(lockFd);
        if (inherited < 0)
        {
            return false;
        }

        bool started;
        try
        {
            started = handOff(dir!, inherited);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            warn($"write journal: could not start the checkpoint helper, flushing here: {ex.Message}");
            started = false;
        }
        finally
        {
            Native.Close(inherited);
        }

        if (started)
        {
            segment?.Dispose();
            Native.Close(lockFd);
            lockFd = -1;
        }

        return started;
    }

    /// <summary>
    /// The helper's side of <see cref="ExitHandOff"/>: makes the journal's writes durable in their files and removes
    /// it. <paramref name="lockFd"/> is the lock it inherited; when it is not that (a platform that closed it), the
    /// lock is taken here, which waits for the exiting owner. Only a folder of this data dir's journal root is touched.
    /// </summary>
    public static void CompleteHandOff(StoreLayout layout, string journalDir, int lockFd, Action<string>? warn = null)
    {
        string full = Path.GetFullPath(journalDir);
        string root = JournalRoot(layout);
        if (!IsUnder(full, root) || full.IndexOf(Path.DirectorySeparatorChar, root.Length + 1) >= 0)
        {
            throw new ArgumentException($"{journalDir} is not a journal of {layout.DataDir}.", nameof(journalDir));
        }

        string lockPath = Path.Combine(full, "lock");
        int fd = lockFd >= 0 && Native.IsSameFile(lockFd, lockPath) ? lockFd : -1;
        if (fd < 0)
        {
            if (!File.Exists(lockPath))
            {
                return; // already dealt with by another process's recovery
            }

            fd = Native.LockExclusive(lockPath);
        }

        try
        {
            if (Directory.Exists(full))
            {
                RecoverOne(layout, full, CurrentBootId(), warn ?? (_ => { }));
            }
        }
        finally
        {
            Native.Unlock(fd);
        }
    }

    /// <summary>What a SIGKILL does: the handles close, nothing is checkpointed. For tests of recovery.</summary>
    internal void Abandon()
    {
        lock (gate)
        {
            disposed = true;
            timer.Dispose();
            segment?.Dispose();
            if (lockFd >= 0)
            {
                Native.Unlock(lockFd);
                lockFd = -1;
            }
        }
    }

    /// <summary>
    /// Deals with the journals of processes that are gone: removed when written in this boot (nothing was lost),
    /// replayed first when the machine has rebooted since. Journals whose owner is alive are left alone.
    /// Returns how many files were written back.
    /// </summary>
    public static int Recover(StoreLayout layout, Action<string>? warn = null, string? bootId = null) => Recover(layout, out _, warn, bootId);

    /// <summary><see cref="Recover(StoreLayout, Action{string}?, string?)"/>, also saying how many journals of dead
    /// processes it dealt with (<paramref name="abandoned"/>): a process that died without closing its journal may
    /// have left temp files mid-write too.</summary>
    public static int Recover(StoreLayout layout, out int abandoned, Action<string>? warn = null, string? bootId = null)
    {
        abandoned = 0;
        string root = JournalRoot(layout);
        if (!Directory.Exists(root) || !Native.IsUnix)
        {
            return 0;
        }

        warn ??= _ => { };
        bootId ??= CurrentBootId();
        int restored = 0;
        foreach (string d in Directory.EnumerateDirectories(root))
        {
            int fd = Native.TryLockExclusive(Path.Combine(d, "lock"));
            if (fd < 0)
            {
                continue; // its owner is alive
            }

            try
            {
                abandoned++;
                restored += RecoverOne(layout, d, bootId, warn);
            }
            catch (IOException ex)
            {
                warn($"write journal: could not recover {d}: {ex.Message}");
            }
            finally
            {
                Native.Unlock(fd);
            }
        }

        if (restored > 0)
        {
            warn($"write journal: restored {restored} file(s) whose last write was lost by a crash of the machine");
        }

        return restored;
    }

    /// <summary>
    /// One journal whose owner is gone (its lock held by the caller): replayed when the machine rebooted since it was
    /// written, then flushed, then removed. The flush is needed in the same boot too: a killed owner's last writes may
    /// still be only in the page cache, and once the journal is gone nothing else could bring them back.
    /// </summary>
    private static int RecoverOne(StoreLayout layout, string d, string bootId, Action<string> warn)
    {
        int restored = TryRead(Path.Combine(d, "boot")) != bootId ? Replay(layout, d, warn) : 0;
        Native.SyncFileSystem(layout.DataDir);
        Directory.Delete(d, recursive: true);
        return restored;
    }

    private static int Replay(StoreLayout layout, string journalDir, Action<string> warn)
    {
        // The last journalled write of each path is what was acknowledged last; earlier ones are superseded.
        var last = new Dictionary<string, (long Stamp, byte[] Bytes)>(StringComparer.Ordinal);
        var segments = Directory.EnumerateFiles(journalDir, "seg-*.wal")
            .Select(f => (File: f, No: int.TryParse(Path.GetFileNameWithoutExtension(f).AsSpan(4), out int n) ? n : -1))
            .Where(s => s.No >= 0)
            .OrderBy(s => s.No);
        foreach (var (file, _) in segments)
        {
            foreach (var (rel, stamp, bytes) in Decode(File.ReadAllBytes(file)))
            {
                last[rel] = (stamp, bytes);
            }
        }

        int restored = 0;
        foreach (var (rel, (stamp, bytes)) in last)
        {
            string? path = Resolve(layout, rel);
            if (path is null)
            {
                warn($"write journal: ignored a record for {rel}, which is outside storage/");
                continue;
            }

            var info = new FileInfo(path);
            bool lost = !info.Exists
                || (info.LastWriteTimeUtc.Ticks <= stamp && !SameContent(path, bytes));
            if (lost)
            {
                AtomicFile.Write(path, bytes);
                restored++;
            }
        }

        return restored;
    }

    private static bool SameContent(string path, byte[] bytes)
    {
        try
        {
            return File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>A journalled path, back to an absolute one, or null when it would leave the replayable folders (a
    /// damaged or forged journal must not write anywhere else).</summary>
    private static string? Resolve(StoreLayout layout, string rel)
    {
        string full = Path.GetFullPath(Path.Combine(layout.DataDir, rel));
        return IsReplayable(layout, full) ? full : null;
    }

    /// <summary>Where a replay may write: <c>storage/</c>, and the fork origins beside it (a fork's one side file,
    /// journalled with the fork).</summary>
    public static bool IsReplayable(StoreLayout layout, string fullPath) =>
        IsUnder(fullPath, layout.Storage) || IsUnder(fullPath, layout.ForksDir);

    private static bool IsUnder(string path, string dir) =>
        path.Length > dir.Length + 1 && path[dir.Length] == Path.DirectorySeparatorChar && path.StartsWith(dir, StringComparison.Ordinal);

    private static byte[] Encode(string dataDir, IReadOnlyList<(string Path, byte[] Bytes)> files, long[] stamps)
    {
        int size = 2;
        var rels = new byte[files.Count][];
        for (int i = 0; i < files.Count; i++)
        {
            rels[i] = Encoding.UTF8.GetBytes(Path.GetRelativePath(dataDir, files[i].Path));
            size += 8 + 2 + rels[i].Length + 4 + files[i].Bytes.Length;
        }

        var buf = new byte[HeaderSize + size];
        var p = buf.AsSpan(HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(p, checked((ushort)files.Count));
        int o = 2;
        for (int i = 0; i < files.Count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(p[o..], stamps[i]);
            o += 8;
            BinaryPrimitives.WriteUInt16LittleEndian(p[o..], checked((ushort)rels[i].Length));
            o += 2;
            rels[i].CopyTo(p[o..]);
            o += rels[i].Length;
            BinaryPrimitives.WriteInt32LittleEndian(p[o..], files[i].Bytes.Length);
            o += 4;
            files[i].Bytes.CopyTo(p[o..]);
            o += files[i].Bytes.Length;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(buf, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(4), size);
        SHA256.HashData(p)[..8].CopyTo(buf.AsSpan(8));
        return buf;
    }

    /// <summary>The records of a segment up to the first one that is torn or damaged.</summary>
    internal static IEnumerable<(string Rel, long Stamp, byte[] Bytes)> Decode(byte[] seg)
    {
        var result = new List<(string, long, byte[])>();
        int at = 0;
        while (seg.Length - at >= HeaderSize)
        {
            var h = seg.AsSpan(at);
            int size = BinaryPrimitives.ReadInt32LittleEndian(h[4..]);
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != Magic || size < 2 || size > seg.Length - at - HeaderSize)
            {
                break;
            }

            var p = seg.AsSpan(at + HeaderSize, size);
            if (!SHA256.HashData(p)[..8].AsSpan().SequenceEqual(h.Slice(8, 8)))
            {
                break;
            }

            try
            {
                int count = BinaryPrimitives.ReadUInt16LittleEndian(p);
                int o = 2;
                for (int i = 0; i < count; i++)
                {
                    long stamp = BinaryPrimitives.ReadInt64LittleEndian(p[o..]);
                    int relLen = BinaryPrimitives.ReadUInt16LittleEndian(p[(o + 8)..]);
                    string rel = Encoding.UTF8.GetString(p.Slice(o + 10, relLen));
                    o += 10 + relLen;
                    int len = BinaryPrimitives.ReadInt32LittleEndian(p[o..]);
                    result.Add((rel, stamp, p.Slice(o + 4, len).ToArray()));
                    o += 4 + len;
                }
            }
            catch (ArgumentOutOfRangeException)
            {
                break; // a hash-valid record that does not parse: not ours; stop as for a torn one
            }

            at += HeaderSize + size;
        }

        return result;
    }

    private Segment Open(bool preallocate)
    {
        dir = Path.Combine(JournalRoot(layout), $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        AtomicFile.CreateDirectoryDurably(dir);
        lockFd = Native.TryLockExclusive(Path.Combine(dir, "lock"));
        AtomicFile.Write(Path.Combine(dir, "boot"), Encoding.UTF8.GetBytes(bootId));
        return NewSegment(SegmentPath(segmentNo), preallocate);
    }

    private static Segment NewSegment(string path, bool preallocate = true)
    {
        var seg = new Segment(path, preallocate);

        // The new segment's name must survive a crash, or its records could not be found.
        Native.FsyncDirectory(Path.GetDirectoryName(path)!);
        return seg;
    }

    /// <summary>
    /// One journal file. It is created full of zeros (written and flushed, not just reserved), so an append inside
    /// that space changes neither the file's size nor its block map, and <c>fdatasync</c> then flushes the data alone:
    /// no file-system journal commit, which on ext4 would carry everyone's pending metadata (the renames just made
    /// included) and cost as much as the fsyncs the journal saves. An append past the end still works, with a
    /// dearer flush. A replay stops at the zeros (they are no record).
    /// </summary>
    private sealed class Segment : IDisposable
    {
        internal const int Preallocated = 4 << 20;
        private readonly Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        private long end;

        public Segment(string path, bool preallocate = true)
        {
            Path = path;
            handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
            if (!preallocate)
            {
                return;
            }

            try
            {
                var zeros = new byte[1 << 20];
                for (long at = 0; at < Preallocated; at += zeros.Length)
                {
                    RandomAccess.Write(handle, zeros, at);
                }

                Native.Fsync(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }

        public string Path { get; }

        /// <summary>Appends the records and returns once they are on the disk. One <c>pwritev2</c> with <c>RWF_DSYNC</c>
        /// where the kernel has it: the write and its flush in a single call, instead of a write and an
        /// <c>fdatasync</c>; that call is most of what an acknowledged <c>message/update</c> waits for.</summary>
        public void WriteDurably(List<byte[]> records, long size)
        {
            if (Native.TryWriteDsync(handle, records, end) != size)
            {
                // Not supported here, or a short write: all of it the plain way (rewriting what did land is harmless:
                // the same bytes at the same place), then a flush of the file's data.
                long at = end;
                foreach (var record in records)
                {
                    RandomAccess.Write(handle, record, at);
                    at += record.Length;
                }

                Native.Fdatasync(handle);
            }

            end += size;
        }

        public void Dispose() => handle.Dispose();
    }

    private string SegmentPath(int n) => Path.Combine(dir!, $"seg-{n}.wal");

    private void CheckpointQuietly()
    {
        try
        {
            Checkpoint();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            // The journal still holds everything; the next checkpoint (or a recovery) finishes the job.
            warn($"write journal: checkpoint failed: {ex.Message}");
            lock (gate)
            {
                if (!disposed && !timerArmed)
                {
                    timerArmed = true;
                    timer.Change(CheckpointInterval, Timeout.InfiniteTimeSpan);
                }
            }
        }
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>This boot's id (Linux); elsewhere a fresh value, so a dead process's journal is always replayed
    /// (replay never overwrites a newer file, so that is only slower).</summary>
    public static string CurrentBootId()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Guid.NewGuid().ToString("N");
        }
    }
}
