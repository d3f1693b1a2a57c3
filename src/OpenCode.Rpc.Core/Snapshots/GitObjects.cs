using System.Buffers;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>
/// Writes git objects (blobs and trees) into a repository's loose object store, byte for byte as git names them:
/// the id is the SHA-1 of <c>"&lt;type&gt; &lt;size&gt;\0"</c> + content, and the file is the zlib of the same bytes. As git
/// does, an object that already exists is not written again but "freshened" (its mtime set to now), so a
/// <c>git gc --prune=7.days</c> (which OpenCode runs on a shared shadow repo) never removes an object a snapshot we
/// just returned refers to.
/// </summary>
internal sealed class GitObjects(string gitDir)
{
    public const int ModeFile = 0x81A4; // 100644
    public const int ModeExec = 0x81ED; // 100755
    public const int ModeLink = 0xA000; // 120000
    public const int ModeTree = 0x4000; // 40000

    /// <summary>Files read whole into memory; bigger ones are hashed and compressed in one streaming pass.</summary>
    private const int InMemoryLimit = 8 * 1024 * 1024;

    private readonly string objects = Path.Combine(gitDir, "objects");
    private readonly Lock packedGate = new();
    private HashSet<string>? packed;
    private int written;
    private GitPackWriter? pack;

    /// <summary>Objects written (not already present) since this writer was made.</summary>
    public int Written => Volatile.Read(ref written);

    /// <summary>From now until <see cref="FinishPack"/>, objects go into one new pack instead of loose files (the first
    /// snapshot of a tree, into an empty object store: nothing to look up, everything to write).</summary>
    public void BeginPack() => pack = new GitPackWriter(objects);

    /// <summary>Publishes the pack begun by <see cref="BeginPack"/>; only then do the ids handed out exist.</summary>
    public void FinishPack()
    {
        if (pack is null)
        {
            return;
        }

        var p = pack;
        pack = null;
        Interlocked.Add(ref written, p.Count);
        p.Finish();
        lock (packedGate)
        {
            packed = null; // re-read with the new pack
        }
    }

    public void AbortPack()
    {
        pack?.Dispose();
        pack = null;
    }

    /// <summary>Touches packs untouched for a day: snapshot trees are unreachable objects, which a
    /// <c>git gc --prune=7.days</c> (OpenCode runs one hourly on a shared shadow repo) removes by the pack's age.
    /// Called when a model starts, so no object a model may refer to is near that age.</summary>
    public void FreshenPacks()
    {
        string dir = Path.Combine(objects, "pack");
        if (!Directory.Exists(dir))
        {
            return;
        }

        foreach (var p in Directory.EnumerateFiles(dir, "pack-*.pack"))
        {
            if (File.GetLastWriteTimeUtc(p) < DateTime.UtcNow.AddDays(-1))
            {
                Freshen(p);
            }
        }
    }

    /// <summary>True when the object store holds no object yet (a new shadow repo).</summary>
    public bool IsEmpty
    {
        get
        {
            if (!Directory.Exists(objects))
            {
                return true;
            }

            bool loose = Directory.EnumerateDirectories(objects)
                .Any(d => Path.GetFileName(d) is { Length: 2 } n && n.All(char.IsAsciiHexDigit) && Directory.EnumerateFileSystemEntries(d).Any());
            return !loose && PackedIds().Count == 0;
        }
    }

    public static string Hex(byte[] oid) => Convert.ToHexStringLower(oid);

    public static string ModeText(int mode) => mode switch
    {
        ModeFile => "100644",
        ModeExec => "100755",
        ModeLink => "120000",
        ModeTree => "40000",
        _ => Convert.ToString(mode, 8),
    };

    /// <summary>git's tree order (<c>base_name_compare</c>): bytes, with a folder's name compared as if it ended in '/'.</summary>
    public static int CompareNames(byte[] a, bool aTree, byte[] b, bool bTree)
    {
        int n = Math.Min(a.Length, b.Length);
        int c = a.AsSpan(0, n).SequenceCompareTo(b.AsSpan(0, n));
        if (c != 0)
        {
            return c;
        }

        int ca = a.Length > n ? a[n] : aTree ? '/' : 0;
        int cb = b.Length > n ? b[n] : bTree ? '/' : 0;
        return ca - cb;
    }

    /// <summary>Writes a tree from its entries (already in git's order); returns its id.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public byte[] WriteTree(IReadOnlyList<(int Mode, byte[] Name, byte[] Oid)> entries)
    {
        if (entries.Count == 0)
        {
            return Store("tree", new byte[HeaderRoom], 0); // 4b825dc6…, git's empty tree
        }

        var body = new ArrayBufferWriter<byte>(HeaderRoom + (entries.Count * 48));
        body.Advance(HeaderRoom);
        foreach (var (mode, name, oid) in entries)
        {
            Encoding.ASCII.GetBytes(ModeText(mode), body);
            body.Write(" "u8);
            body.Write(name);
            body.Write([(byte)0]);
            body.Write(oid);
        }

        return Store("tree", MemoryMarshalSpan(body), body.WrittenCount - HeaderRoom);
    }

    // Room kept before an object's content for its "<type> <size>\0" header, so header and content are one span:
    // hashed in one call (thread-safe, unlike a shared incremental hash) and compressed in one call.
    private const int HeaderRoom = 32;

    private static Span<byte> MemoryMarshalSpan(ArrayBufferWriter<byte> w) =>
        System.Runtime.InteropServices.MemoryMarshal.AsMemory(w.WrittenMemory).Span;

    /// <summary>Writes a blob from bytes in memory (a symlink's target).</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public byte[] WriteBlob(ReadOnlySpan<byte> content)
    {
        var buf = new byte[HeaderRoom + content.Length];
        content.CopyTo(buf.AsSpan(HeaderRoom));
        return Store("blob", buf, content.Length);
    }

    /// <summary>Hashes and stores the content behind an open file, from its start to its end as read now (not as
    /// <paramref name="expectedSize"/> said: the file may be changing, and the caller compares its stat before and
    /// after to know whether what was read can be trusted).</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public byte[] WriteBlob(SafeFileHandle file, long expectedSize)
    {
        if (expectedSize <= InMemoryLimit)
        {
            byte[] buf = ArrayPool<byte>.Shared.Rent(HeaderRoom + (int)Math.Max(expectedSize + 1, 4096));
            try
            {
                int total = 0;
                while (HeaderRoom + total < buf.Length)
                {
                    int n = RandomAccess.Read(file, buf.AsSpan(HeaderRoom + total), total);
                    total += n;

                    // Short of the buffer's end means end of file (a regular file reads whole); the caller's stat after
                    // reading tells whether the file moved meanwhile.
                    if (n == 0 || HeaderRoom + total < buf.Length)
                    {
                        return Store("blob", buf, total);
                    }
                }

                // It grew past what we allowed for: stream it instead.
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buf);
            }
        }

        return WriteBlobStreaming(file);
    }

    /// <summary>A big file: the object header needs the size before the content, so the content is first copied to a
    /// temp file (which fixes its size), then hashed and compressed from there in one pass.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private byte[] WriteBlobStreaming(SafeFileHandle file)
    {
        Directory.CreateDirectory(objects);
        string copy = Path.Combine(objects, $"tmp_copy_{Guid.NewGuid():N}");
        string tmp = Path.Combine(objects, $"tmp_obj_{Guid.NewGuid():N}");
        try
        {
            long size = 0;
            using (var dst = new FileStream(copy, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                byte[] chunk = ArrayPool<byte>.Shared.Rent(1 << 20);
                try
                {
                    int n;
                    while ((n = RandomAccess.Read(file, chunk, size)) > 0)
                    {
                        dst.Write(chunk, 0, n);
                        size += n;
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(chunk);
                }
            }

            byte[] header = Encoding.ASCII.GetBytes($"blob {size}\0");
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha.AppendData(header);
            using (var src = new FileStream(copy, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
            using (var dst = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead }))
            using (var z = new ZLibStream(dst, CompressionLevel.Fastest))
            {
                z.Write(header);
                byte[] chunk = ArrayPool<byte>.Shared.Rent(1 << 20);
                try
                {
                    int n;
                    while ((n = src.Read(chunk, 0, chunk.Length)) > 0)
                    {
                        sha.AppendData(chunk, 0, n);
                        z.Write(chunk, 0, n);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(chunk);
                }
            }

            byte[] oid = sha.GetHashAndReset();
            string path = PathOf(oid);
            if (File.Exists(path))
            {
                Freshen(path);
            }
            else
            {
                Publish(tmp, path);
            }

            return oid;
        }
        finally
        {
            TryDelete(copy);
            TryDelete(tmp);
        }
    }

    /// <summary>Ids in the store's packs, read from their indexes (so an object packed earlier is not written again
    /// as a loose duplicate).</summary>
    private HashSet<string> PackedIds()
    {
        lock (packedGate)
        {
            return packed ??= ReadPackedIds();
        }
    }

    private HashSet<string> ReadPackedIds()
    {
        var packed = new HashSet<string>(StringComparer.Ordinal);
        string dir = Path.Combine(objects, "pack");
        if (!Directory.Exists(dir))
        {
            return packed;
        }

        foreach (var idx in Directory.EnumerateFiles(dir, "pack-*.idx"))
        {
            try
            {
                byte[] b = File.ReadAllBytes(idx);
                if (b.Length < 8 + 1024 || b[0] != 0xFF || b[1] != (byte)'t' || b[2] != (byte)'O' || b[3] != (byte)'c')
                {
                    continue; // version 1 indexes predate git 1.5: not worth reading
                }

                int n = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(8 + (255 * 4)));
                for (int i = 0; i < n && 8 + 1024 + ((i + 1) * 20) <= b.Length; i++)
                {
                    packed.Add(Convert.ToHexStringLower(b, 8 + 1024 + (i * 20), 20));
                }
            }
            catch (IOException)
            {
                // a pack being removed by a gc: its objects are loose again or gone, either way not counted
            }
        }

        return packed;
    }

    /// <summary>Stores an object whose content sits in <paramref name="buffer"/> after <see cref="HeaderRoom"/> bytes
    /// (its header is written just before it). Safe to call from several threads.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private byte[] Store(string type, Span<byte> buffer, int length)
    {
        Span<byte> h = stackalloc byte[HeaderRoom];
        int hl = Encoding.ASCII.GetBytes($"{type} {length}", h);
        h[hl++] = 0;
        var full = buffer.Slice(HeaderRoom - hl, hl + length);
        h[..hl].CopyTo(full);
        byte[] oid = SHA1.HashData(full);
        var content = full[hl..];
        var header = full[..hl];

        if (pack is { } p)
        {
            p.Add(type == "tree" ? 2 : 3, content, oid);
            return oid;
        }

        string path = PathOf(oid);
        if (File.Exists(path))
        {
            Freshen(path);
            return oid;
        }

        if (PackedIds().Contains(Hex(oid)))
        {
            return oid; // packs are freshened whole, when a model starts (WorktreeModel)
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string tmp = Path.Combine(Path.GetDirectoryName(path)!, $"tmp_obj_{Guid.NewGuid():N}");
        try
        {
            // Read-only like git's own loose objects; not fsync'd, like git's default (core.fsync leaves loose
            // objects out): a crash of the machine, not of the process, can lose the newest ones.
            using (var fs = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead }))
            using (var z = new ZLibStream(fs, CompressionLevel.Fastest))
            {
                z.Write(header);
                z.Write(content);
            }

            Publish(tmp, path);
        }
        finally
        {
            TryDelete(tmp);
        }

        return oid;
    }

    /// <summary>Moves a finished temp object to its name; another writer (git, OpenCode, a second sidecar) may have
    /// put the identical object there first, which is fine.</summary>
    private void Publish(string tmp, string path)
    {
        try
        {
            File.Move(tmp, path, overwrite: false);
            Interlocked.Increment(ref written);
        }
        catch (IOException) when (File.Exists(path))
        {
        }
    }

    private string PathOf(byte[] oid)
    {
        string hex = Hex(oid);
        return Path.Combine(objects, hex[..2], hex[2..]);
    }

    private static void Freshen(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // someone else's object in a shared repo: it is there, which is what matters now
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
