using System.Collections.Concurrent;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// Serializes writers of one session across threads and across processes (two editor windows on one
/// data dir). Sessions hash onto 256 stripes; each stripe is an in-process semaphore plus an flock'd file
/// under <c>&lt;data&gt;/opencode-rpc/locks/</c>, outside <c>storage/</c> so OpenCode never sees it.
/// flock is released by the kernel when a process dies, so a crash cannot leave a stale lock behind.
/// Callers never hold two stripes at once, so stripes cannot deadlock.
/// </summary>
public sealed class StoreLock
{
    private const int Stripes = 256;
    private readonly string lockDir;
    private readonly SemaphoreSlim[] local = Enumerable.Range(0, Stripes).Select(_ => new SemaphoreSlim(1, 1)).ToArray();
    private readonly ConcurrentDictionary<int, bool> dirReady = new();

    public StoreLock(string lockDir)
    {
        this.lockDir = lockDir;
    }

    public async Task<IDisposable> AcquireAsync(string key, CancellationToken ct)
    {
        int stripe = Stripe(key);
        await local[stripe].WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!Native.IsUnix)
            {
                return new Releaser(local[stripe], -1);
            }

            if (!dirReady.ContainsKey(0))
            {
                Directory.CreateDirectory(lockDir);
                dirReady[0] = true;
            }

            // flock blocks only while another process holds this stripe, which is a single file write.
            int fd = Native.LockExclusive(Path.Combine(lockDir, $"{stripe:x2}.lock"));
            return new Releaser(local[stripe], fd);
        }
        catch
        {
            local[stripe].Release();
            throw;
        }
    }

    private static int Stripe(string key)
    {
        // FNV-1a: stable across processes, unlike string.GetHashCode.
        uint h = 2166136261;
        foreach (char c in key)
        {
            h = (h ^ c) * 16777619;
        }

        return (int)(h % Stripes);
    }

    private sealed class Releaser(SemaphoreSlim sem, int fd) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                if (fd >= 0)
                {
                    Native.Unlock(fd);
                }

                sem.Release();
            }
        }
    }
}
