namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// How wide the store goes when it reads or writes thousands of small files (a fork, an import, a long session's
/// message folder). Each file costs a few syscalls that mostly wait on the kernel, so twice the cores keeps them busy.
/// </summary>
internal static class IoParallel
{
    public static ParallelOptions Options(CancellationToken ct = default) =>
        new() { CancellationToken = ct, MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount * 2) };
}
