using System.Runtime.ExceptionServices;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// How wide the store goes when it reads or writes thousands of small files (a fork, an import, a long session's
/// message folder). Each file costs a few syscalls that mostly wait on the kernel, so twice the cores keeps them busy.
/// </summary>
internal static class IoParallel
{
    public static ParallelOptions Options(CancellationToken ct = default) =>
        new() { CancellationToken = ct, MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount * 2) };

    /// <summary>
    /// Runs <paramref name="body"/> for 0 to <paramref name="count"/> - 1 with <see cref="Options"/>, or on the calling
    /// thread when there are fewer than <paramref name="sequentialBelow"/> items (for a handful of small files the
    /// parallel loop costs more than it saves). The first failure is rethrown as itself, not wrapped, so callers see
    /// the same exceptions as from a plain loop.
    /// </summary>
    public static void For(int count, Action<int> body, CancellationToken ct = default, int sequentialBelow = 2)
    {
        if (count < sequentialBelow)
        {
            for (int i = 0; i < count; i++)
            {
                ct.ThrowIfCancellationRequested();
                body(i);
            }

            return;
        }

        try
        {
            Parallel.For(0, count, Options(ct), body);
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
    }
}
