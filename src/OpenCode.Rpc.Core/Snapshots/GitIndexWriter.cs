using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>
/// Writes the shadow repo's index (version 2) after the in-process first snapshot, as <c>git add -A</c> would have:
/// every snapshotted file with its blob id and stat data, so the next sidecar (and OpenCode, which shares the shadow
/// repo) start from it instead of hashing the tree again. git's locking protocol: the index is written as
/// <c>index.lock</c>, created exclusively (if another git holds it, we skip: the index is a cache), then renamed.
/// Racy entries (modified less than 2 s before the write) get size 0, git's own "smudge", so git and we re-read
/// them rather than trust stat data taken too close to a change.
/// </summary>
internal static class GitIndexWriter
{
    public static bool TryWrite(string indexFile, IEnumerable<(string Path, int Mode, byte[] Oid, Stamp Stamp)> entries, long nowTicks, long racyTicks)
    {
        var sorted = entries.Select(e => (Name: Encoding.UTF8.GetBytes(e.Path), e.Mode, e.Oid, e.Stamp)).ToList();
        sorted.Sort((a, b) => a.Name.AsSpan().SequenceCompareTo(b.Name));
        using var body = new MemoryStream(sorted.Count * 96);
        Span<byte> head = stackalloc byte[12];
        "DIRC"u8.CopyTo(head);
        BinaryPrimitives.WriteUInt32BigEndian(head[4..], 2);
        BinaryPrimitives.WriteUInt32BigEndian(head[8..], (uint)sorted.Count);
        body.Write(head);
        Span<byte> e = stackalloc byte[62];
        Span<byte> zeros = stackalloc byte[8];
        foreach (var (name, mode, oid, st) in sorted)
        {
            bool racy = nowTicks - st.MtimeTicks < racyTicks;
            BinaryPrimitives.WriteUInt32BigEndian(e, (uint)st.CtimeSec);
            BinaryPrimitives.WriteUInt32BigEndian(e[4..], st.CtimeNsec);
            BinaryPrimitives.WriteUInt32BigEndian(e[8..], (uint)st.MtimeSec);
            BinaryPrimitives.WriteUInt32BigEndian(e[12..], st.MtimeNsec);
            BinaryPrimitives.WriteUInt32BigEndian(e[16..], (uint)st.Dev);
            BinaryPrimitives.WriteUInt32BigEndian(e[20..], (uint)st.Ino);
            BinaryPrimitives.WriteUInt32BigEndian(e[24..], (uint)mode);
            BinaryPrimitives.WriteUInt32BigEndian(e[28..], st.Uid);
            BinaryPrimitives.WriteUInt32BigEndian(e[32..], st.Gid);
            BinaryPrimitives.WriteUInt32BigEndian(e[36..], racy ? 0 : (uint)st.Size);
            oid.CopyTo(e[40..]);
            BinaryPrimitives.WriteUInt16BigEndian(e[60..], (ushort)Math.Min(name.Length, 0xFFF));
            body.Write(e);
            body.Write(name);
            int pad = 8 - ((62 + name.Length) % 8); // 1 to 8 NULs: the name's terminator and the padding
            body.Write(zeros[..pad]);
        }

        byte[] sum = SHA1.HashData(body.GetBuffer().AsSpan(0, (int)body.Length));
        body.Write(sum);
        string lockFile = indexFile + ".lock";
        FileStream fs;
        try
        {
            fs = new FileStream(lockFile, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
        catch (IOException) when (File.Exists(lockFile))
        {
            return false; // another git is writing the index now
        }

        try
        {
            using (fs)
            {
                fs.Write(body.GetBuffer(), 0, (int)body.Length);
            }

            File.Move(lockFile, indexFile, overwrite: true);
            return true;
        }
        catch
        {
            File.Delete(lockFile);
            throw;
        }
    }
}
