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

    /// <summary>Replaces each file atomically and returns once the batch is durable through the journal. The files
    /// are renamed in the order given, before the record is appended, so a checkpoint that runs after the append
    /// covers every rename it describes.</summary>
    public void Write(IReadOnlyList<(string Path, byte[] Bytes)> files)
    {
        long[] stamps = AtomicFile.WriteAll(files, durable: false);
        Append([Encode(layout.DataDir, files, stamps)]);
    }

    /// <summary>Appends whole records to the current segment and flushes it once.</summary>
    private void Append(List<byte[]> records)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            var seg = segment ??= dir is null ? Open() : NewSegment(SegmentPath(++segmentNo));
            try
            {
                foreach (var record in records)
                {
                    seg.Write(record);
                }

                seg.Flush();
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
        }

        // Every write whose record is in the old segment renamed its files before appending, so this flush
        // covers them all. Removing the old segment need not be durable: replaying it again is harmless.
        Native.SyncFileSystem(layout.DataDir);
        old.Dispose();
        File.Delete(old.Path);
    }

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
        }

        timer.Dispose();
        try
        {
            if (dir is not null)
            {
                Native.SyncFileSystem(layout.DataDir);
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
    public static int Recover(StoreLayout layout, Action<string>? warn = null, string? bootId = null)
    {
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
                string? written = TryRead(Path.Combine(d, "boot"));
                if (written != bootId)
                {
                    restored += Replay(layout, d, warn);
                    Native.SyncFileSystem(layout.DataDir);
                }

                Directory.Delete(d, recursive: true);
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

    private Segment Open()
    {
        dir = Path.Combine(JournalRoot(layout), $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        AtomicFile.CreateDirectoryDurably(dir);
        lockFd = Native.TryLockExclusive(Path.Combine(dir, "lock"));
        AtomicFile.Write(Path.Combine(dir, "boot"), Encoding.UTF8.GetBytes(bootId));
        return NewSegment(SegmentPath(segmentNo));
    }

    private static Segment NewSegment(string path)
    {
        var seg = new Segment(path);

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

        public Segment(string path)
        {
            Path = path;
            handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
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

        public void Write(byte[] record)
        {
            RandomAccess.Write(handle, record, end);
            end += record.Length;
        }

        public void Flush() => Native.Fdatasync(handle);

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
