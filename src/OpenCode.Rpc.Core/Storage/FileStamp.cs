using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>A file's or folder's mtime (UTC ticks) and size, or that it does not exist.</summary>
internal readonly record struct FileStamp(bool Exists, bool IsDirectory, long MtimeTicks, long Length)
{
    public static readonly FileStamp Missing = new(false, false, 0, 0);
}

/// <summary>
/// One <c>statx</c> per file where the kernel has it, else <see cref="FileInfo"/>. A warm <c>session/context</c>
/// stats every file of the session (OpenCode rewrites files in place, so only the file's own stamp shows a change),
/// and on our VMs a syscall costs microseconds: <see cref="FileInfo"/> pays two of them (lstat, then geteuid for its
/// read-only check) plus a path normalization, and a full path makes the kernel walk every folder from the root.
/// A <see cref="StampRoot"/> stats relative to an open folder (<c>storage/</c>), so each lookup walks two or three
/// names instead of eight or more.
/// </summary>
internal static partial class FileStamps
{
    internal const int AtFdCwd = -100;
    private const int O_RDONLY = 0;
    private static readonly int O_CLOEXEC = Native.O_CLOEXEC;
    private const uint StatxType = 0x1;
    private const uint StatxMtime = 0x40;
    private const uint StatxSize = 0x200;
    private const int EPERM = 1;
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;
    private const int ENOSYS = 38;

    // struct statx is the same on every Linux architecture (256 bytes): stx_mask at 0, stx_mode (u16) at 28,
    // stx_size (u64) at 40, stx_mtime {i64 tv_sec; u32 tv_nsec} at 112.
    private const int StatxBufferSize = 256;
    private const int ModeOffset = 28;
    private const int SizeOffset = 40;
    private const int MtimeOffset = 112;
    private const int ModeTypeMask = 0xF000;
    private const int ModeDirectory = 0x4000;

    private static volatile bool statxUnavailable = !OperatingSystem.IsLinux();

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static unsafe partial int Statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    /// <summary>The stamp of <paramref name="path"/>, following symlinks as <see cref="FileInfo"/> does.</summary>
    public static FileStamp Of(string path) => Of(AtFdCwd, path, path);

    /// <summary>Stats from an open folder; <see cref="Of(string)"/>'s stamps, fewer path walks.</summary>
    public static StampRoot OpenRoot(string dir)
    {
        if (statxUnavailable)
        {
            return new StampRoot(-1, dir);
        }

        int fd = Open(dir, O_RDONLY | O_CLOEXEC, 0);
        return new StampRoot(fd, dir);
    }

    /// <summary><paramref name="relative"/> to <paramref name="dirfd"/>; <paramref name="full"/> is the same file,
    /// for the fallback.</summary>
    internal static FileStamp Of(int dirfd, ReadOnlySpan<char> relative, string full)
    {
        if (!statxUnavailable)
        {
            try
            {
                if (TryStatx(dirfd, relative, out var stamp))
                {
                    return stamp;
                }
            }
            catch (EntryPointNotFoundException)
            {
                statxUnavailable = true; // a libc without statx (glibc < 2.28, musl < 1.2.5)
            }
            catch (DllNotFoundException)
            {
                statxUnavailable = true;
            }
        }

        return ViaFileInfo(full);
    }

    private static unsafe bool TryStatx(int dirfd, ReadOnlySpan<char> path, out FileStamp stamp)
    {
        int max = Encoding.UTF8.GetMaxByteCount(path.Length) + 1;
        byte[]? rented = max > 1024 ? ArrayPool<byte>.Shared.Rent(max) : null;
        Span<byte> name = rented ?? stackalloc byte[1024];
        int n = Encoding.UTF8.GetBytes(path, name);
        name[n] = 0;
        byte* buf = stackalloc byte[StatxBufferSize];
        int rc;
        fixed (byte* p = name)
        {
            rc = Statx(dirfd, p, 0, StatxType | StatxMtime | StatxSize, buf);
        }

        int errno = rc != 0 ? Marshal.GetLastPInvokeError() : 0;
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        if (rc != 0)
        {
            stamp = FileStamp.Missing;
            if (errno is ENOENT or ENOTDIR)
            {
                return true;
            }

            if (errno is ENOSYS or EPERM)
            {
                statxUnavailable = true; // an old kernel, or a seccomp filter that refuses statx
            }

            return false; // anything else: let FileInfo say what it is
        }

        uint mask = *(uint*)buf;
        if ((mask & (StatxMtime | StatxSize)) != (StatxMtime | StatxSize))
        {
            stamp = FileStamp.Missing;
            return false; // a filesystem that did not fill them in
        }

        long sec = *(long*)(buf + MtimeOffset);
        uint nsec = *(uint*)(buf + MtimeOffset + 8);
        long length = *(long*)(buf + SizeOffset);
        bool dir = (*(ushort*)(buf + ModeOffset) & ModeTypeMask) == ModeDirectory;
        stamp = new FileStamp(true, dir, DateTime.UnixEpoch.Ticks + (sec * TimeSpan.TicksPerSecond) + (nsec / 100), length);
        return true;
    }

    private static FileStamp ViaFileInfo(string path)
    {
        try
        {
            var fi = new FileInfo(path);
            if (fi.Exists)
            {
                return new FileStamp(true, false, fi.LastWriteTimeUtc.Ticks, fi.Length);
            }

            var di = new DirectoryInfo(path);
            return di.Exists ? new FileStamp(true, true, di.LastWriteTimeUtc.Ticks, 0) : FileStamp.Missing;
        }
        catch (FileNotFoundException)
        {
            return FileStamp.Missing;
        }
        catch (DirectoryNotFoundException)
        {
            return FileStamp.Missing;
        }
    }
}

/// <summary>An open folder to stat its descendants from (see <see cref="FileStamps"/>); paths outside it, or a
/// folder that could not be opened, are stat'ed by their full path.</summary>
internal sealed class StampRoot(int fd, string dir) : IDisposable
{
    private readonly string prefix = Path.TrimEndingDirectorySeparator(dir) + "/";
    private int fd = fd;

    public FileStamp Of(string path) =>
        fd >= 0 && path.StartsWith(prefix, StringComparison.Ordinal)
            ? FileStamps.Of(fd, path.AsSpan(prefix.Length), path)
            : FileStamps.Of(path);

    public void Dispose()
    {
        if (fd >= 0)
        {
            Native.Close(fd);
            fd = -1;
        }
    }
}
