using System.Runtime.InteropServices;

namespace OpenCode.Rpc.Core.Transfer;

/// <summary>syncfs(2): one call makes every file written so far on that filesystem durable. A bulk import writes
/// thousands of files without an fsync each, then syncs once before the session file makes them visible.</summary>
internal static partial class TransferNative
{
    private const int O_RDONLY = 0;
    private const int O_CLOEXEC = 0x80000;
    private const int O_DIRECTORY = 0x10000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int SyncFs(int fd);

    [LibraryImport("libc", EntryPoint = "sync")]
    private static partial void Sync();

    /// <summary>Flushes the filesystem that holds <paramref name="dir"/>. Returns false where that is not possible
    /// (not Linux), so the caller can fall back to per-file fsync.</summary>
    public static bool SyncFilesystem(string dir)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        int fd = Open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            Sync();
            return true;
        }

        try
        {
            if (SyncFs(fd) != 0)
            {
                Sync();
            }
        }
        finally
        {
            Close(fd);
        }

        return true;
    }
}
