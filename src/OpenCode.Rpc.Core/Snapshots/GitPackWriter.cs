using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>
/// Writes one git pack (version 2, whole objects, no deltas) and its index (version 2), as
/// Documentation/gitformat-pack.txt describes, into <c>objects/pack/</c>. The first snapshot of a tree stores every
/// file: as loose objects that is one file (and a rename, a folder entry) per object, which is what makes
/// <c>git add</c> of 20,000 files take seconds; in a pack it is one file written sequentially. The pack appears only
/// when complete: it is written under a temp name, the <c>.pack</c> is renamed first and the <c>.idx</c> last (readers
/// find packs by their index), both read-only like git's.
/// </summary>
internal sealed class GitPackWriter : IDisposable
{
    private static readonly uint[] CrcTable = MakeCrcTable();

    private readonly string packDir;
    private readonly string tmpPack;
    private readonly FileStream file;
    private readonly List<(byte[] Oid, long Offset, uint Crc)> entries = [];
    private readonly HashSet<string> seen = new(StringComparer.Ordinal);
    private readonly Lock gate = new();
    private bool finished;

    public GitPackWriter(string objectsDir)
    {
        packDir = Path.Combine(objectsDir, "pack");
        Directory.CreateDirectory(packDir);
        tmpPack = Path.Combine(packDir, $"tmp_pack_{Guid.NewGuid():N}");
        file = new FileStream(tmpPack, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        Span<byte> header = stackalloc byte[12];
        "PACK"u8.CopyTo(header);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], 2);
        file.Write(header); // the count (bytes 8..12) is filled in at the end
    }

    public int Count => entries.Count;

    /// <summary>Adds an object (type 2 = tree, 3 = blob) whose id the caller computed from the same content.</summary>
    public void Add(int type, ReadOnlySpan<byte> content, byte[] oid)
    {
        lock (gate)
        {
            AddLocked(type, content, oid);
        }
    }

    private void AddLocked(int type, ReadOnlySpan<byte> content, byte[] oid)
    {
        if (!seen.Add(Convert.ToHexStringLower(oid)))
        {
            return;
        }

        long offset = file.Position;
        Span<byte> header = stackalloc byte[16];
        long size = content.Length;
        int n = 0;
        byte c = (byte)((type << 4) | (int)(size & 0x0F));
        size >>= 4;
        while (size != 0)
        {
            header[n++] = (byte)(c | 0x80);
            c = (byte)(size & 0x7F);
            size >>= 7;
        }

        header[n++] = c;
        using var compressed = new MemoryStream();
        if (content.IsEmpty)
        {
            // ZLibStream writes nothing at all for no input; git needs a zlib stream (header, empty final block,
            // Adler-32 of nothing) even for the empty blob.
            compressed.Write([0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        }
        else
        {
            using var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true);
            z.Write(content);
        }

        var body = compressed.GetBuffer().AsSpan(0, (int)compressed.Length);
        uint crc = Crc32(Crc32(0xFFFFFFFFu, header[..n]), body) ^ 0xFFFFFFFFu;
        file.Write(header[..n]);
        file.Write(body);
        entries.Add((oid, offset, crc));
    }

    /// <summary>Completes the pack and its index and publishes both; nothing is published when nothing was added.</summary>
    public void Finish()
    {
        finished = true;
        if (entries.Count == 0)
        {
            file.Dispose();
            File.Delete(tmpPack);
            return;
        }

        Span<byte> count = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint)entries.Count);
        file.Position = 8;
        file.Write(count);
        file.Position = 0;
        byte[] packSum = SHA1.HashData(file);
        file.Seek(0, SeekOrigin.End);
        file.Write(packSum);
        file.Flush();
        file.Dispose();

        string name = "pack-" + Convert.ToHexStringLower(packSum);
        string tmpIdx = Path.Combine(packDir, $"tmp_idx_{Guid.NewGuid():N}");
        try
        {
            File.WriteAllBytes(tmpIdx, Index(packSum));
            var readOnly = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(tmpPack, readOnly);
                File.SetUnixFileMode(tmpIdx, readOnly);
            }

            File.Move(tmpPack, Path.Combine(packDir, name + ".pack"), overwrite: true);
            File.Move(tmpIdx, Path.Combine(packDir, name + ".idx"), overwrite: true);
        }
        finally
        {
            TryDelete(tmpIdx);
            TryDelete(tmpPack);
        }
    }

    /// <summary>Index v2: magic, version, fan-out, sorted ids, CRC-32s, 31-bit offsets (64-bit ones apart), the
    /// pack's checksum, then its own.</summary>
    private byte[] Index(byte[] packSum)
    {
        var sorted = entries.OrderBy(e => e.Oid, ByteOrder.Instance).ToList();
        var large = sorted.Where(e => e.Offset >= 0x80000000L).Select(e => e.Offset).ToList();
        int size = 8 + (256 * 4) + (sorted.Count * (20 + 4 + 4)) + (large.Count * 8) + 40;
        var idx = new byte[size];
        var s = idx.AsSpan();
        new byte[] { 0xFF, (byte)'t', (byte)'O', (byte)'c' }.CopyTo(s);
        BinaryPrimitives.WriteUInt32BigEndian(s[4..], 2);
        int off = 8;
        for (int b = 0, i = 0; b < 256; b++)
        {
            while (i < sorted.Count && sorted[i].Oid[0] <= b)
            {
                i++;
            }

            BinaryPrimitives.WriteUInt32BigEndian(s[(off + (b * 4))..], (uint)i);
        }

        off += 256 * 4;
        foreach (var e in sorted)
        {
            e.Oid.CopyTo(s[off..]);
            off += 20;
        }

        foreach (var e in sorted)
        {
            BinaryPrimitives.WriteUInt32BigEndian(s[off..], e.Crc);
            off += 4;
        }

        int nextLarge = 0;
        foreach (var e in sorted)
        {
            uint v = e.Offset < 0x80000000L ? (uint)e.Offset : 0x80000000u | (uint)nextLarge++;
            BinaryPrimitives.WriteUInt32BigEndian(s[off..], v);
            off += 4;
        }

        foreach (var l in large)
        {
            BinaryPrimitives.WriteUInt64BigEndian(s[off..], (ulong)l);
            off += 8;
        }

        packSum.CopyTo(s[off..]);
        off += 20;
        SHA1.HashData(s[..off]).CopyTo(s[off..]);
        return idx;
    }

    public void Dispose()
    {
        if (!finished)
        {
            file.Dispose();
            TryDelete(tmpPack);
        }
    }

    private static uint Crc32(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc;
    }

    private static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            t[n] = c;
        }

        return t;
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

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
