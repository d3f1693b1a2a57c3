using System.Runtime.InteropServices;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// The few libc calls .NET does not expose: fsync of a directory (so a rename is durable) and flock
/// (a cross-process lock that the kernel drops when a process dies, so a SIGKILL never leaves a stale lock).
/// </summary>
internal static partial class Native
{
    private const int O_RDONLY = 0;
    private const int O_WRONLY = 1;
    private const int O_RDWR = 2;

    // The other open(2) flags differ by system, and on Linux by architecture: arm, arm64 and ppc64le have O_DIRECTORY
    // at 0x4000 and O_DIRECT at 0x10000, x86's O_DIRECTORY (opening a folder with O_DIRECT fails with EINVAL, which
    // would fail every durable write there). Values from each system's <fcntl.h>; a test compiles that header and
    // compares on the machine it runs on.
    internal static readonly int O_CREAT = OperatingSystem.IsLinux() ? 0x40 : 0x200;
    internal static readonly int O_EXCL = OperatingSystem.IsLinux() ? 0x80 : 0x800;
    internal static readonly int O_CLOEXEC = OperatingSystem.IsLinux() ? 0x80000 : OperatingSystem.IsFreeBSD() ? 0x100000 : 0x1000000;
    internal static readonly int O_DIRECTORY = OperatingSystem.IsLinux()
        ? RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 or Architecture.Ppc64le ? 0x4000 : 0x10000
        : OperatingSystem.IsFreeBSD() ? 0x20000 : 0x100000;

    internal static readonly int O_NOFOLLOW = OperatingSystem.IsLinux()
        ? RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 or Architecture.Ppc64le ? 0x8000 : 0x20000
        : 0x100;
    internal const int LOCK_EX = 2;
    internal const int LOCK_UN = 8;
    private const int LOCK_NB = 4;
    private const int EINTR = 4;
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;
    private const int EISDIR = 21;

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

    [LibraryImport("libc", EntryPoint = "sync")]
    private static partial void SyncAll();

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int SyncFs(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    internal static bool IsUnix => !OperatingSystem.IsWindows();

    /// <summary>Where the open(2) flag values above are right (they are Linux's): the helpers that open files by
    /// themselves (<see cref="ReadFile"/>, <see cref="WriteNewFile"/>, <see cref="ListFiles"/>) are used only there.</summary>
    internal static bool IsLinux => OperatingSystem.IsLinux();

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
        int fd = OpenExisting(path, O_RDONLY | O_CLOEXEC, "open");
        if (fd < 0)
        {
            return null;
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

                    if (errno == EISDIR)
                    {
                        return null; // a folder named like a file (listed where the filesystem gives no entry types)
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

    /// <summary>open(2) of something that may be gone: the descriptor, or -1 when it (or its folder) does not exist;
    /// any other failure is an IOException saying what could not be done (<paramref name="verb"/>).</summary>
    private static int OpenExisting(string path, int flags, string verb)
    {
        int fd = Open(path, flags, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is not (ENOENT or ENOTDIR))
            {
                throw new IOException($"Cannot {verb} {path} (errno {errno}).");
            }
        }

        return fd;
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

        if (!IsLinux)
        {
            // syncfs(2) is Linux's; elsewhere the whole machine's dirty data (macOS and the BSDs have no per-file-system
            // call in libc).
            SyncAll();
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

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteFd(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenamePath(string from, string to);

    /// <summary>
    /// Creates <paramref name="path"/>, which must not exist, with <paramref name="bytes"/>: open, write, close. .NET's
    /// handle adds an <c>fstat</c>, an <c>lseek</c> and two <c>flock</c>s per file, and a fork or an import creates
    /// thousands (and every acknowledged write at least one).
    /// </summary>
    internal static void WriteNewFile(string path, ReadOnlySpan<byte> bytes) => WriteNewFile(path, bytes, fsync: false, stamp: false);

    /// <summary>
    /// <see cref="WriteNewFile(string, ReadOnlySpan{byte})"/>, then, before the close, an <c>fsync</c> when
    /// <paramref name="fsync"/> and the file's mtime (UTC ticks, as <see cref="File.GetLastWriteTimeUtc(string)"/> gives it)
    /// when <paramref name="stamp"/>; 0 otherwise. Throws <see cref="DirectoryNotFoundException"/> when the folder is missing.
    /// </summary>
    internal static unsafe long WriteNewFile(string path, ReadOnlySpan<byte> bytes, bool fsync, bool stamp)
    {
        int fd = Open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0x1B6 /* 0666, less the umask */);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                ENOENT or ENOTDIR => new DirectoryNotFoundException($"Cannot create {path}: its folder is gone."),
                _ => new IOException($"Cannot create {path} (errno {errno})."),
            };
        }

        try
        {
            fixed (byte* p = bytes)
            {
                nint done = 0;
                while (done < bytes.Length)
                {
                    nint n = WriteFd(fd, p + done, bytes.Length - done);
                    if (n < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno == EINTR)
                        {
                            continue;
                        }

                        throw new IOException($"Cannot write {path} (errno {errno}).");
                    }

                    done += n;
                }
            }

            if (fsync && Fsync(fd) != 0)
            {
                throw new IOException($"fsync of {path} failed (errno {Marshal.GetLastPInvokeError()}).");
            }

            if (!stamp)
            {
                return 0;
            }

            // statx: one layout on every Linux architecture, unlike struct stat.
            const int AT_EMPTY_PATH = 0x1000, STATX_MTIME = 0x40, MtimeOffset = 112;
            byte* buf = stackalloc byte[256];
            if (Statx(fd, "", AT_EMPTY_PATH, STATX_MTIME, buf) != 0)
            {
                throw new IOException($"Cannot stat {path} (errno {Marshal.GetLastPInvokeError()}).");
            }

            long sec = *(long*)(buf + MtimeOffset);
            uint nsec = *(uint*)(buf + MtimeOffset + 8);
            return DateTime.UnixEpoch.Ticks + (sec * TimeSpan.TicksPerSecond) + (nsec / 100);
        }
        finally
        {
            Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, int mask, byte* buf);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Mkdir(string path, int mode);

    /// <summary>mkdir(2) of one folder: true when it made it, false when it already exists; throws
    /// <see cref="DirectoryNotFoundException"/> when its parent is missing. Linux only.</summary>
    internal static bool MakeDirectory(string path)
    {
        const int EEXIST = 17;
        if (Mkdir(path, 0x1FF /* 0777, less the umask */) == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno switch
        {
            EEXIST when Directory.Exists(path) => false,
            ENOENT => throw new DirectoryNotFoundException($"Cannot create {path}: its parent is missing."),
            _ => throw new IOException($"Cannot create the folder {path} (errno {errno})."),
        };
    }

    /// <summary>rename(2), throwing with the errno when it fails. Linux only (see <see cref="IsLinux"/>).</summary>
    internal static void Rename(string from, string to)
    {
        if (RenamePath(from, to) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno == ENOENT
                ? new FileNotFoundException($"Cannot rename {from}: it is gone.")
                : new IOException($"Cannot rename {from} to {to} (errno {errno}).");
        }
    }

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int fromDir, string from, int toDir, string to, uint flags);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkPath(string path);

    // Cleared the first time the file system (or the kernel) says it cannot exchange; plain renames from then on.
    private static volatile bool exchangeWorks = true;

    /// <summary>
    /// Swaps <paramref name="from"/> and <paramref name="to"/> in one step (<c>renameat2</c> with
    /// <c>RENAME_EXCHANGE</c>), then unlinks <paramref name="from"/>, which now holds the old content. True when that
    /// replaced <paramref name="to"/>; false when it could not (<paramref name="to"/> does not exist yet, or the file
    /// system cannot exchange), and then nothing was changed and the caller renames as usual. Readers see the old
    /// or the new file at every instant, as with a rename. Why not a rename: ext4 (auto_da_alloc) starts writing the
    /// new file's data out during a rename that replaces a file, on the caller's thread, and the next device flush
    /// (the write journal's) then waits for that write too (a bare loop of replace + flush: ~0.15 ms more per flush;
    /// in the sidecar 0–0.1 ms per new message, whose session file is replaced). An exchange
    /// leaves the data to the checkpoint's <c>syncfs</c>, and a version replaced again before it is never written at
    /// all. Linux only.
    /// </summary>
    internal static bool TryExchange(string from, string to)
    {
        const int AT_FDCWD = -100, EISDIR = 21, EINVAL = 22, ENOSYS = 38, EOPNOTSUPP = 95;
        const uint RENAME_EXCHANGE = 2;
        if (!exchangeWorks)
        {
            return false;
        }

        if (RenameAt2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) != 0)
        {
            if (Marshal.GetLastPInvokeError() is EINVAL or ENOSYS or EOPNOTSUPP)
            {
                exchangeWorks = false;
            }

            return false;
        }

        // The old content under the temp name: a temp file, which no reader takes for data; if this unlink fails (or
        // the process dies first) the stale-temp sweep removes it.
        if (UnlinkPath(from) != 0 && Marshal.GetLastPInvokeError() == EISDIR)
        {
            // The target was a folder, which a rename would have refused to replace: swap back, and let the rename
            // fail as it does.
            RenameAt2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE);
            return false;
        }

        return true;
    }

    /// <summary>rename(2), one syscall (<c>Directory.Move</c> stats the target first); false when it fails, for
    /// example because the target is a folder that is not empty.</summary>
    internal static bool TryRename(string from, string to) => IsUnix && RenamePath(from, to) == 0;

    [LibraryImport("libc", EntryPoint = "pwritev2", SetLastError = true)]
    private static unsafe partial nint Pwritev2(Microsoft.Win32.SafeHandles.SafeFileHandle fd, IoVec* iov, int iovcnt, long offset, int flags);

    private unsafe struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    /// <summary>
    /// Writes <paramref name="buffers"/> one after another at <paramref name="offset"/> as one <c>pwritev2</c> with
    /// <c>RWF_DSYNC</c>: durable (data, and the metadata needed to read it) when the call returns. Returns the bytes
    /// written, which may be short, or -1 when the kernel or filesystem does not offer it; the caller finishes with a
    /// plain write and <c>fdatasync</c>.
    /// </summary>
    internal static unsafe int TryWriteDsync(Microsoft.Win32.SafeHandles.SafeFileHandle handle, List<byte[]> buffers, long offset)
    {
        const int RWF_DSYNC = 2, MaxIov = 64;
        if (!OperatingSystem.IsLinux() || buffers.Count is 0 or > MaxIov)
        {
            return -1;
        }

        var pins = new System.Buffers.MemoryHandle[buffers.Count];
        try
        {
            IoVec* iov = stackalloc IoVec[buffers.Count];
            for (int i = 0; i < buffers.Count; i++)
            {
                pins[i] = buffers[i].AsMemory().Pin();
                iov[i].Base = (byte*)pins[i].Pointer;
                iov[i].Length = (nuint)buffers[i].Length;
            }

            while (true)
            {
                nint n = Pwritev2(handle, iov, buffers.Count, offset, RWF_DSYNC);
                if (n >= 0)
                {
                    return (int)n;
                }

                if (Marshal.GetLastPInvokeError() != EINTR)
                {
                    return -1;
                }
            }
        }
        finally
        {
            foreach (var pin in pins)
            {
                pin.Dispose();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "getdents64", SetLastError = true)]
    private static unsafe partial nint GetDents64(int fd, byte* buf, nint count);

    [ThreadStatic]
    private static byte[]? direntBuffer;

    /// <summary>
    /// The names of the files in <paramref name="dir"/> that end with <paramref name="suffix"/> (regular files, or
    /// entries whose type the filesystem does not say), or null when the folder does not exist. Linux only (null
    /// elsewhere means: use .NET). <c>Directory.GetFiles</c> adds an <c>fstat</c> per folder and builds and pattern-
    /// matches a full path per entry; an export lists one folder per message.
    /// </summary>
    internal static unsafe List<string>? ListFiles(string dir, ReadOnlySpan<byte> suffix)
    {
        const byte DT_UNKNOWN = 0, DT_REG = 8;
        int fd = OpenExisting(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, "list");
        if (fd < 0)
        {
            return null;
        }

        try
        {
            var names = new List<string>();
            byte[] buf = direntBuffer ??= new byte[32 * 1024];
            fixed (byte* p = buf)
            {
                while (true)
                {
                    nint n = GetDents64(fd, p, buf.Length);
                    if (n < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno == EINTR)
                        {
                            continue;
                        }

                        throw new IOException($"Cannot list {dir} (errno {errno}).");
                    }

                    if (n == 0)
                    {
                        return names;
                    }

                    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                    for (nint at = 0; at < n;)
                    {
                        ushort reclen = *(ushort*)(p + at + 16);
                        byte type = p[at + 18];
                        var name = new ReadOnlySpan<byte>(p + at + 19, reclen - 19);
                        name = name[..name.IndexOf((byte)0)];
                        if ((type == DT_REG || type == DT_UNKNOWN) && name.EndsWith(suffix))
                        {
                            names.Add(System.Text.Encoding.UTF8.GetString(name));
                        }

                        at += reclen;
                    }
                }
            }
        }
        finally
        {
            Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int Dup(int fd);

    /// <summary>A second descriptor of <paramref name="fd"/>'s open file, which a child process inherits (dup clears
    /// close-on-exec): a flock held through it stays held while either is open. -1 when that fails.</summary>
    internal static int DupInheritable(int fd) => IsUnix ? Dup(fd) : -1;

    /// <summary>Whether descriptor <paramref name="fd"/> of this process is the file at <paramref name="path"/> (Linux:
    /// its <c>/proc/self/fd</c> link). False where that cannot be told.</summary>
    internal static bool IsSameFile(int fd, string path)
    {
        try
        {
            return OperatingSystem.IsLinux()
                && new FileInfo($"/proc/self/fd/{fd}").LinkTarget is { } target
                && string.Equals(target, Path.GetFullPath(path), StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal static void Unlock(int fd)
    {
        Flock(fd, LOCK_UN);
        Close(fd);
    }
}
