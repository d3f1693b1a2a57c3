using System.Runtime.InteropServices;
using System.Text;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>A path that changed since the last drain. <see cref="IsDir"/>: a folder was created, deleted or moved there
/// (or, with <see cref="Self"/>, the watched folder itself went away), so that subtree must be looked at again.
/// <see cref="Mask"/> and <see cref="Cookie"/> are the event's own (a rename's two halves share a cookie).</summary>
internal readonly record struct Change(string Path, bool IsDir, bool Self, uint Mask = 0, uint Cookie = 0)
{
    public bool Is(uint events) => (Mask & events) != 0;
}

/// <summary>
/// One inotify instance watching the folders of a worktree, read without a thread: <see cref="Drain"/> reads every
/// queued event without blocking. The kernel queues an event inside the system call that changed the file, before
/// that call returns, so a drain at the start of a snapshot sees every change that finished before the snapshot was
/// asked for; anything later is in the queue for the next one. A full queue (IN_Q_OVERFLOW) makes the caller look at
/// the whole tree again.
/// </summary>
internal sealed unsafe partial class Inotify : IDisposable
{
    private const uint InModify = 0x2;
    private const uint InAttrib = 0x4;
    internal const uint InCloseWrite = 0x8;
    internal const uint InMovedFrom = 0x40;
    internal const uint InMovedTo = 0x80;
    internal const uint InCreate = 0x100;
    private const uint InDelete = 0x200;
    internal const uint InDeleteSelf = 0x400;
    internal const uint InMoveSelf = 0x800;
    private const uint InUnmount = 0x2000;
    private const uint InQOverflow = 0x4000;
    private const uint InIgnored = 0x8000;
    internal const uint InOnlyDir = 0x1000000;
    private const uint InDontFollow = 0x2000000;
    internal const uint InExclUnlink = 0x4000000;
    private const uint InIsDir = 0x40000000;
    private const int InNonBlock = 0x800;
    private const int InCloExec = 0x80000;

    // Content (write, truncate, close after write), mode and times (chmod, touch), and every way an entry appears or
    // goes away. IN_CLOSE_WRITE also covers a writer that changed the file through mmap and then closed it.
    private const uint WorktreeMask = InModify | InAttrib | InCloseWrite | InMovedFrom | InMovedTo | InCreate | InDelete | InDeleteSelf | InMoveSelf
        | InOnlyDir | InExclUnlink;

    private readonly Dictionary<int, string> dirOf = [];
    private readonly Dictionary<string, int> wdOf = new(StringComparer.Ordinal);
    private readonly byte[] buffer = new byte[64 * 1024];
    private readonly uint mask;
    private int fd;

    private Inotify(int fd, uint mask)
    {
        this.fd = fd;
        this.mask = mask;
    }

    public int Count => wdOf.Count;

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInit1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "inotify_rm_watch", SetLastError = true)]
    private static partial int InotifyRmWatch(int fd, int wd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, byte* buf, nint count);

    /// <summary>A new instance, or null (and why) when the system has none to give (the per-user instance limit).</summary>
    public static Inotify? TryCreate(out string? why) => TryCreate(WorktreeMask, out why);

    /// <summary>As <see cref="TryCreate(out string?)"/>, watching for the events in <paramref name="events"/>.</summary>
    public static Inotify? TryCreate(uint events, out string? why)
    {
        int fd = InotifyInit1(InNonBlock | InCloExec);
        if (fd < 0)
        {
            why = $"inotify_init1 failed (errno {Marshal.GetLastPInvokeError()})";
            return null;
        }

        why = null;
        return new Inotify(fd, events);
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    /// <summary>Blocks until an event is queued or <paramref name="timeoutMs"/> passes; true when one is queued.</summary>
    public bool WaitReadable(int timeoutMs)
    {
        const short PollIn = 1;
        var p = new PollFd { Fd = fd, Events = PollIn };
        return fd >= 0 && Poll(&p, 1, timeoutMs) > 0 && (p.Revents & PollIn) != 0;
    }

    /// <summary>Watches a folder (worktree-relative <paramref name="rel"/>, "" for the root). Must be called before the
    /// folder is read, so a change is either seen by the read or queued as an event. False when the watch cannot be
    /// added (the folder vanished, or the per-user watch limit is reached); <paramref name="fatal"/> says the latter.</summary>
    public bool Watch(string rel, string abs, out bool fatal)
    {
        // The root may itself be reached through a symlink (a project opened by a linked path); nothing below it is.
        int wd = InotifyAddWatch(fd, abs, rel.Length == 0 ? mask : mask | InDontFollow);
        if (wd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            fatal = errno is not (LinuxFs.ENOENT or LinuxFs.ENOTDIR or LinuxFs.ELOOP);
            return false;
        }

        fatal = false;

        // The same inode gives back the same watch: a folder moved inside the tree is renamed here.
        if (dirOf.TryGetValue(wd, out var old) && old != rel && wdOf.TryGetValue(old, out int w) && w == wd)
        {
            wdOf.Remove(old);
        }

        dirOf[wd] = rel;
        wdOf[rel] = wd;
        return true;
    }

    /// <summary>Stops watching a folder and everything below it (it was deleted, moved away or became ignored).</summary>
    public void UnwatchTree(string rel)
    {
        var gone = wdOf.Where(kv => rel.Length == 0 || kv.Key == rel || (kv.Key.Length > rel.Length && kv.Key[rel.Length] == '/' && kv.Key.StartsWith(rel, StringComparison.Ordinal))).ToList();
        foreach (var (path, wd) in gone)
        {
            wdOf.Remove(path);
            dirOf.Remove(wd);
            InotifyRmWatch(fd, wd); // fails harmlessly when the kernel already dropped it
        }
    }

    /// <summary>Reads every queued event into <paramref name="changes"/>. False when the queue overflowed and events
    /// were lost: the caller must look at the whole tree.</summary>
    public bool Drain(List<Change> changes)
    {
        bool overflow = false;
        fixed (byte* b = buffer)
        {
            while (true)
            {
                nint n = Read(fd, b, buffer.Length);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LinuxFs.EINTR)
                    {
                        continue;
                    }

                    if (errno == LinuxFs.EAGAIN)
                    {
                        break;
                    }

                    throw new IOException($"reading inotify events failed (errno {errno})");
                }

                if (n == 0)
                {
                    break;
                }

                for (nint off = 0; off + 16 <= n;)
                {
                    int wd = *(int*)(b + off);
                    uint mask = *(uint*)(b + off + 4);
                    uint cookie = *(uint*)(b + off + 8);
                    int len = (int)*(uint*)(b + off + 12);
                    var nameBytes = new ReadOnlySpan<byte>(b + off + 16, len);
                    int nul = nameBytes.IndexOf((byte)0);
                    string name = Encoding.UTF8.GetString(nul >= 0 ? nameBytes[..nul] : nameBytes);
                    off += 16 + len;
                    if ((mask & InQOverflow) != 0)
                    {
                        overflow = true;
                        continue;
                    }

                    if (!dirOf.TryGetValue(wd, out var dir))
                    {
                        continue; // a watch already removed
                    }

                    if ((mask & InIgnored) != 0)
                    {
                        // The kernel dropped the watch (the folder was deleted or its filesystem unmounted).
                        dirOf.Remove(wd);
                        if (wdOf.TryGetValue(dir, out int w) && w == wd)
                        {
                            wdOf.Remove(dir);
                        }

                        changes.Add(new Change(dir, true, true));
                        continue;
                    }

                    if (name.Length == 0)
                    {
                        if ((mask & (InDeleteSelf | InMoveSelf | InUnmount)) != 0)
                        {
                            changes.Add(new Change(dir, true, true));
                        }

                        continue; // a folder's own mode or times: not part of a snapshot
                    }

                    changes.Add(new Change(dir.Length == 0 ? name : dir + "/" + name, (mask & InIsDir) != 0, false, mask, cookie));
                }
            }
        }

        return !overflow;
    }

    public void Dispose()
    {
        int f = Interlocked.Exchange(ref fd, -1);
        if (f >= 0)
        {
            LinuxFs.Close(f);
        }
    }
}
