using System.Runtime.InteropServices;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// The few libc calls .NET does not expose: fsync of a directory (so a rename is durable) and flock
/// (a cross-process lock that the kernel drops when a process dies, so a SIGKILL never leaves a stale lock).
/// </summary>
internal static partial class Native
{
    private const int O_RDONLY = 0;
    private const int O_RDWR = 2;
    private const int O_CREAT = 0x40;
    private const int O_CLOEXEC = 0x80000;
    private const int O_DIRECTORY = 0x10000;
    internal const int LOCK_EX = 2;
    internal const int LOCK_UN = 8;
    private const int LOCK_NB = 4;
    private const int EINTR = 4;
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;

    [ThreadStatic]
    private static byte[]? readBuffer;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint ReadFd(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncHandle(Microsoft.Win32.SafeHandles.SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FdatasyncHandle(Microsoft.Win32.SafeHandles.SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int SyncFs(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    internal static bool IsUnix => !OperatingSystem.IsWindows();

    /// <summary>fsync of an open file; throws when the data may not be on disk.</summary>
    internal static void Fsync(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        if (IsUnix && FsyncHandle(handle) != 0)
        {
            throw new IOException($"fsync failed (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    /// <summary>fdatasync of an open file (the data and what is needed to read it back, not its times).</summary>
    internal static void Fdatasync(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        if (IsUnix && FdatasyncHandle(handle) != 0)
        {
            throw new IOException($"fdatasync failed (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    /// <summary>
    /// A whole small file in three syscalls (open, read, close), or null when it does not exist. .NET's
    /// <c>File.ReadAllBytes</c> adds two <c>fstat</c>s per file, and the store reads thousands of small files per call
    /// (an export of 2,000 messages reads 6,000). A read shorter than asked is the end of a regular file.
    /// </summary>
    internal static unsafe byte[]? ReadFile(string path)
    {
        int fd = Open(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is ENOENT or ENOTDIR)
            {
                return null;
            }

            throw new IOException($"Cannot open {path} (errno {errno}).");
        }

        try
        {
            byte[] buf = readBuffer ??= new byte[64 * 1024];
            int total = 0;
            while (true)
            {
                nint n;
                fixed (byte* p = buf)
                {
                    n = ReadFd(fd, p + total, buf.Length - total);
                }

                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR)
                    {
                        continue;
                    }

                    throw new IOException($"Cannot read {path} (errno {errno}).");
                }

                total += (int)n;
                if (n == 0 || total < buf.Length)
                {
                    return buf.AsSpan(0, total).ToArray();
                }

                Array.Resize(ref buf, checked(buf.Length * 2)); // a big file: this call's own buffer, not kept
            }
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Makes a directory entry change (create, rename, unlink) durable.</summary>
    internal static void FsyncDirectory(string dir)
    {
        if (!IsUnix)
        {
            return; // NTFS journals metadata; MoveFileEx with WRITE_THROUGH is what File.Move uses there.
        }

        int fd = Open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            return; // best effort: the data file itself was already fsync'd
        }

        try
        {
            Fsync(fd);
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Flushes every dirty page and directory entry of the filesystem holding <paramref name="dir"/>: one
    /// call instead of an fsync per file, for bulk writes (fork, import) whose visibility is gated by a last file.</summary>
    internal static void SyncFileSystem(string dir)
    {
        if (!IsUnix)
        {
            return;
        }

        int fd = Open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new IOException($"Cannot open {dir} to flush it (errno {Marshal.GetLastPInvokeError()}).");
        }

        try
        {
            if (SyncFs(fd) != 0)
            {
                throw new IOException($"syncfs failed on {dir} (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Opens (creating) a lock file and takes an exclusive flock on it, blocking until granted.</summary>
    internal static int LockExclusive(string path)
    {
        int fd = Open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0x1A4 /* 0644 */);
        if (fd < 0)
        {
            throw new IOException($"Cannot open lock file {path} (errno {Marshal.GetLastPInvokeError()}).");
        }

        while (Flock(fd, LOCK_EX) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                Close(fd);
                throw new IOException($"Cannot lock {path} (errno {errno}).");
            }
        }

        return fd;
    }

    /// <summary>Opens (creating) a lock file and tries to take an exclusive flock without waiting: the fd, or -1 when
    /// another open file (a live process, or another handle in this one) holds the lock.</summary>
    internal static int TryLockExclusive(string path)
    {
        int fd = Open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0x1A4 /* 0644 */);
        if (fd < 0)
        {
            throw new IOException($"Cannot open lock file {path} (errno {Marshal.GetLastPInvokeError()}).");
        }

        while (Flock(fd, LOCK_EX | LOCK_NB) != 0)
        {
            if (Marshal.GetLastPInvokeError() != EINTR)
            {
                Close(fd);
                return -1;
            }
        }

        return fd;
    }

    internal static void Unlock(int fd)
    {
        Flock(fd, LOCK_UN);
        Close(fd);
    }
}
