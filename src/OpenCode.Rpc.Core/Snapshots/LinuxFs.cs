using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>A path's stat data, the fields git keeps in its index (<c>struct stat_data</c>) plus the full size.</summary>
internal readonly record struct Stamp(long MtimeSec, uint MtimeNsec, long CtimeSec, uint CtimeNsec, ulong Ino, long Size, uint Mode, uint Nlink = 1, uint Uid = 0, uint Gid = 0, ulong Dev = 0)
{
    public const uint TypeMask = 0xF000;
    public const uint Regular = 0x8000;
    public const uint Directory = 0x4000;
    public const uint Symlink = 0xA000;

    public bool IsRegular => (Mode & TypeMask) == Regular;

    public bool IsDirectory => (Mode & TypeMask) == Directory;

    public bool IsSymlink => (Mode & TypeMask) == Symlink;

    /// <summary>The git mode a file with this stat gets from <c>git add</c> (core.filemode and core.symlinks on).</summary>
    public int GitMode => IsSymlink ? GitObjects.ModeLink : (Mode & 0x40) != 0 ? GitObjects.ModeExec : GitObjects.ModeFile;

    public long MtimeTicks => (MtimeSec * TimeSpan.TicksPerSecond) + (MtimeNsec / 100);

    /// <summary>Equal as git compares stat data: the index keeps 32 bits of size and inode, so compare those.</summary>
    public bool SameAs(in Stamp o) =>
        MtimeSec == o.MtimeSec && MtimeNsec == o.MtimeNsec && CtimeSec == o.CtimeSec && CtimeNsec == o.CtimeNsec
        && (uint)Ino == (uint)o.Ino && (uint)Size == (uint)o.Size && Mode == o.Mode;
}

/// <summary>
/// The Linux calls the in-process snapshot engine needs and .NET does not expose: <c>statx</c> (arch-independent
/// layout, with ctime and inode, which git's stat check uses), <c>readlinkat</c> (a link's raw bytes), and
/// <c>openat</c> relative to a folder's descriptor (so 20,000 files are not 20,000 full path walks).
/// </summary>
internal static unsafe partial class LinuxFs
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;
    private const int ORdOnly = 0;
    private const int ONonBlock = 0x800;
    private static readonly int ONoFollow = Storage.Native.O_NOFOLLOW; // by architecture: see Native
    private static readonly int OCloExec = Storage.Native.O_CLOEXEC;
    private static readonly int ODirectory = Storage.Native.O_DIRECTORY;
    internal const int ENOENT = 2;
    internal const int ENOTDIR = 20;
    internal const int ELOOP = 40;
    internal const int EAGAIN = 11;
    internal const int EINTR = 4;

    private static readonly Lazy<bool> Probe = new(() =>
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return TryStat(AtFdCwd, "/", out _, out _);
        }
        catch (EntryPointNotFoundException)
        {
            return false; // a libc without statx (glibc < 2.28): the git CLI path serves every track
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    });

    /// <summary>True on Linux with a libc that has statx.</summary>
    public static bool Available => Probe.Value;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buf);

    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint ReadLinkAt(int dirfd, string path, byte* buf, nint size);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatFs(string path, byte* buf);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    /// <summary>lstat relative to a folder descriptor (<paramref name="dirfd"/> -100 = the current folder). False with
    /// the errno when the path cannot be stat'ed (ENOENT: it vanished).</summary>
    public static bool TryStat(int dirfd, string name, out Stamp stamp, out int errno)
    {
        byte* buf = stackalloc byte[256];
        if (Statx(dirfd, name, AtSymlinkNoFollow, StatxBasicStats, buf) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            stamp = default;
            return false;
        }

        errno = 0;
        stamp = FromStatx(buf);
        return true;
    }

    /// <summary>fstat of an open descriptor: the stat data that belongs to exactly the content read through it.</summary>
    public static bool TryStatFd(SafeFileHandle fd, out Stamp stamp)
    {
        byte* buf = stackalloc byte[256];
        bool added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            if (Statx((int)fd.DangerousGetHandle(), string.Empty, AtEmptyPath | AtSymlinkNoFollow, StatxBasicStats, buf) != 0)
            {
                stamp = default;
                return false;
            }
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }

        stamp = FromStatx(buf);
        return true;
    }

    // struct statx: the layout is the same on every Linux architecture (include/uapi/linux/stat.h).
    private static Stamp FromStatx(byte* b) => new(
        MtimeSec: *(long*)(b + 112),
        MtimeNsec: *(uint*)(b + 120),
        CtimeSec: *(long*)(b + 96),
        CtimeNsec: *(uint*)(b + 104),
        Ino: *(ulong*)(b + 32),
        Size: *(long*)(b + 40),
        Mode: *(ushort*)(b + 28),
        Nlink: *(uint*)(b + 16),
        Uid: *(uint*)(b + 20),
        Gid: *(uint*)(b + 24),
        Dev: MakeDev(*(uint*)(b + 136), *(uint*)(b + 140)));

    /// <summary>glibc's makedev: what git stores (truncated) as a file's device in its index.</summary>
    private static ulong MakeDev(ulong major, ulong minor) =>
        ((major & 0x00000fffUL) << 8) | ((major & 0xfffff000UL) << 32) | (minor & 0x000000ffUL) | ((minor & 0xffffff00UL) << 12);

    /// <summary>Opens a folder for <c>*at</c> calls; -1 with errno when it cannot (vanished, not a folder, a symlink).</summary>
    public static int OpenDir(string path, bool follow, out int errno)
    {
        int fd = OpenAt(AtFdCwd, path, ORdOnly | ODirectory | OCloExec | (follow ? 0 : ONoFollow), 0);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd;
    }

    /// <summary>Opens a regular file in a folder for reading, never through a symlink, and without blocking should a
    /// fifo have taken the file's place since it was stat'ed.</summary>
    public static SafeFileHandle? OpenFile(int dirfd, string name, out int errno)
    {
        int fd = OpenAt(dirfd, name, ORdOnly | OCloExec | ONoFollow | ONonBlock, 0);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        errno = 0;
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>A symlink's target as raw bytes (what git stores as the link's blob).</summary>
    public static byte[]? ReadLink(int dirfd, string name, out int errno)
    {
        int size = 256;
        while (true)
        {
            var buf = new byte[size];
            nint n;
            fixed (byte* p = buf)
            {
                n = ReadLinkAt(dirfd, name, p, size);
            }

            if (n < 0)
            {
                errno = Marshal.GetLastPInvokeError();
                return null;
            }

            if (n < size)
            {
                errno = 0;
                return buf.AsSpan(0, (int)n).ToArray();
            }

            size *= 4;
        }
    }

    /// <summary>False for a filesystem whose changes can happen elsewhere, unseen by this kernel's inotify: NFS, SMB/CIFS,
    /// 9p (WSL's Windows drives), FUSE (sshfs and friends), Ceph, AFS, Lustre, GlusterFS.</summary>
    public static bool InotifySeesEverything(string path)
    {
        byte* buf = stackalloc byte[256];
        if (StatFs(path, buf) != 0)
        {
            return false;
        }

        long type = (long)*(nint*)buf & 0xFFFFFFFFL; // f_type is the first field (a long) of struct statfs
        return type is not (0x6969 or 0x517B or 0xFF534D42 or 0xFE534D42 or 0x01021997 or 0x65735546 or 0x00C36400 or 0x5346414F or 0x0BD00BD0 or 0x47504653);
    }

    /// <summary>True when a name decodes to UTF-16 and back to the same bytes: .NET replaces invalid UTF-8 with
    /// U+FFFD, and such a path cannot be opened again by its string.</summary>
    public static bool RoundTrips(string name) => !name.Contains('\uFFFD', StringComparison.Ordinal);
}
