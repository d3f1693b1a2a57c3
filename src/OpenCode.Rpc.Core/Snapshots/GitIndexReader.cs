using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>One entry of a git index: path (forward slashes), git mode, blob id and the stat data git recorded.</summary>
internal sealed record IndexEntry(string Path, int Mode, byte[] Oid, Stamp Stamp);

/// <summary>What a git index holds, or why the in-process engine cannot start from it.</summary>
internal sealed record IndexContent(List<IndexEntry> Entries, byte[]? RootTree, string? Unsupported);

/// <summary>
/// Reads a git index file (versions 2, 3 and 4; Documentation/gitformat-index.txt) read-only: the shadow repo's
/// index, which <c>git add</c> wrote, seeds the in-process snapshot engine with git's own stat data and blob ids, so
/// its first track after a restart hashes only the files that changed since. Anything the engine does not model
/// (conflict stages, skip-worktree or intent-to-add entries, gitlinks, a split or sparse index) is reported as
/// unsupported, and snapshots of that repo stay with the git CLI.
/// </summary>
internal static class GitIndexReader
{
    public static IndexContent Read(byte[] data)
    {
        var entries = new List<IndexEntry>();
        if (data.Length < 32 || !data.AsSpan(0, 4).SequenceEqual("DIRC"u8))
        {
            return new IndexContent(entries, null, "not a git index");
        }

        // The trailer is the SHA-1 of everything before it (all zeros when index.skipHash is set).
        var body = data.AsSpan(0, data.Length - 20);
        var trailer = data.AsSpan(data.Length - 20);
        if (trailer.IndexOfAnyExcept((byte)0) >= 0 && !SHA1.HashData(body).AsSpan().SequenceEqual(trailer))
        {
            return new IndexContent(entries, null, "index checksum mismatch");
        }

        uint version = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(4));
        int count = (int)BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(8));
        if (version is < 2 or > 4)
        {
            return new IndexContent(entries, null, $"index version {version}");
        }

        int off = 12;
        byte[] previous = [];
        for (int i = 0; i < count; i++)
        {
            int start = off;
            if (off + 62 > body.Length)
            {
                return new IndexContent(entries, null, "truncated index");
            }

            var e = body[off..];
            var stamp = new Stamp(
                MtimeSec: BinaryPrimitives.ReadUInt32BigEndian(e[8..]),
                MtimeNsec: BinaryPrimitives.ReadUInt32BigEndian(e[12..]),
                CtimeSec: BinaryPrimitives.ReadUInt32BigEndian(e),
                CtimeNsec: BinaryPrimitives.ReadUInt32BigEndian(e[4..]),
                Ino: BinaryPrimitives.ReadUInt32BigEndian(e[20..]),
                Size: BinaryPrimitives.ReadUInt32BigEndian(e[36..]),
                Mode: BinaryPrimitives.ReadUInt32BigEndian(e[24..]));
            byte[] oid = e.Slice(40, 20).ToArray();
            ushort flags = BinaryPrimitives.ReadUInt16BigEndian(e[60..]);
            off += 62;
            if ((flags & 0x4000) != 0)
            {
                if (version < 3)
                {
                    return new IndexContent(entries, null, "extended flags in a version 2 index");
                }

                ushort ext = BinaryPrimitives.ReadUInt16BigEndian(body[off..]);
                off += 2;
                if ((ext & 0x6000) != 0)
                {
                    return new IndexContent(entries, null, "skip-worktree or intent-to-add entries");
                }
            }

            if ((flags & 0x3000) != 0)
            {
                return new IndexContent(entries, null, "merge conflict stages");
            }

            if ((flags & 0x8000) != 0)
            {
                return new IndexContent(entries, null, "assume-unchanged entries");
            }

            byte[] path;
            if (version == 4)
            {
                // Prefix compression: strip N bytes from the previous path, then append a NUL-terminated suffix.
                long strip = ReadOffset(body, ref off);
                int nul = body[off..].IndexOf((byte)0);
                if (nul < 0 || strip > previous.Length)
                {
                    return new IndexContent(entries, null, "corrupt index path");
                }

                path = [.. previous.AsSpan(0, previous.Length - (int)strip), .. body.Slice(off, nul)];
                off += nul + 1;
            }
            else
            {
                int nul = body[off..].IndexOf((byte)0);
                if (nul < 0)
                {
                    return new IndexContent(entries, null, "corrupt index path");
                }

                path = body.Slice(off, nul).ToArray();
                off = start + ((off - start + nul + 8) & ~7); // 1 to 8 NULs pad the entry to a multiple of 8
            }

            previous = path;
            int mode = (int)stamp.Mode;
            if ((mode & 0xF000) == 0xE000)
            {
                return new IndexContent(entries, null, "submodules (gitlinks)");
            }

            if (mode is not (GitObjects.ModeFile or GitObjects.ModeExec or GitObjects.ModeLink))
            {
                return new IndexContent(entries, null, $"an entry with mode {Convert.ToString(mode, 8)}");
            }

            string text;
            try
            {
                text = new UTF8Encoding(false, true).GetString(path);
            }
            catch (DecoderFallbackException)
            {
                return new IndexContent(entries, null, "a path that is not UTF-8");
            }

            entries.Add(new IndexEntry(text, mode, oid, stamp));
        }

        // Extensions: 4-byte signature, 4-byte size. Lower-case signatures are required ones we would have to honour.
        byte[]? root = null;
        while (off + 8 <= body.Length)
        {
            var sig = body.Slice(off, 4);
            int size = (int)BinaryPrimitives.ReadUInt32BigEndian(body[(off + 4)..]);
            var ext = body.Slice(off + 8, Math.Min(size, body.Length - off - 8));
            if (sig.SequenceEqual("TREE"u8))
            {
                root = RootOfCacheTree(ext);
            }
            else if (sig[0] is >= (byte)'a' and <= (byte)'z')
            {
                return new IndexContent(entries, null, $"index extension '{Encoding.ASCII.GetString(sig)}' (split or sparse index)");
            }

            off += 8 + size;
        }

        return new IndexContent(entries, root, null);
    }

    /// <summary>The root tree id from the cache-tree extension, when git marked it valid (entry count ≥ 0).</summary>
    private static byte[]? RootOfCacheTree(ReadOnlySpan<byte> ext)
    {
        // "" NUL, entry count (ASCII, -1 when invalid), space, subtree count, LF, then the id when valid.
        if (ext.Length < 2 || ext[0] != 0)
        {
            return null;
        }

        int lf = ext.IndexOf((byte)'\n');
        int space = ext.IndexOf((byte)' ');
        if (lf < 0 || space < 0 || space > lf || ext[1] == '-' || ext.Length < lf + 21)
        {
            return null;
        }

        return ext.Slice(lf + 1, 20).ToArray();
    }

    /// <summary>git's varint of index v4 and packs' OFS_DELTA (<c>decode_varint</c>).</summary>
    private static long ReadOffset(ReadOnlySpan<byte> s, ref int off)
    {
        byte c = s[off++];
        long val = c & 0x7f;
        while ((c & 0x80) != 0)
        {
            c = s[off++];
            val = ((val + 1) << 7) | (long)(c & 0x7f);
        }

        return val;
    }
}
