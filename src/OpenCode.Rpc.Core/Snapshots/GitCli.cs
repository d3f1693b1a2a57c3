using System.Diagnostics;
using System.Text;

namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>
/// Runs the git CLI against the shadow repository: <c>GIT_DIR</c> is the shadow git dir and
/// <c>GIT_WORK_TREE</c> the project, exactly as OpenCode does, so both tools can share one shadow repo.
/// Every inherited <c>GIT_*</c> variable is dropped (a hook's <c>GIT_INDEX_FILE</c> must never point us at the
/// user's index), and the settings that change what gets hashed are pinned on the command line.
/// </summary>
internal sealed class GitCli(string gitDir, string workTree)
{
    private static readonly string[] Pinned =
    [
        "-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "core.symlinks=true", "-c", "core.longpaths=true",
        "-c", "core.fsmonitor=false", "-c", "core.quotepath=false", "-c", "core.untrackedCache=true", "-c", "gc.auto=0",
        "-c", "advice.addEmbeddedRepo=false", "-c", "diff.external=", "-c", "color.ui=false",
    ];

    public string GitDir { get; } = gitDir;

    public string WorkTree { get; } = workTree;

    public async Task<byte[]> RunAsync(IReadOnlyList<string> args, CancellationToken ct, byte[]? stdin = null, bool allowFailure = false)
    {
        var (code, stdout, stderr) = await RunRawAsync(args, ct, stdin).ConfigureAwait(false);
        if (code != 0 && !allowFailure)
        {
            throw new GitFailedException(args, code, stderr);
        }

        return stdout;
    }

    public async Task<string> RunTextAsync(IReadOnlyList<string> args, CancellationToken ct, byte[]? stdin = null) =>
        Encoding.UTF8.GetString(await RunAsync(args, ct, stdin).ConfigureAwait(false));

    public async Task<(int Code, byte[] Stdout, string Stderr)> RunRawAsync(IReadOnlyList<string> args, CancellationToken ct, byte[]? stdin = null)
    {
        var psi = new ProcessStartInfo("git")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = WorkTree,
        };
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("GIT_", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["GIT_DIR"] = GitDir;
        psi.Environment["GIT_WORK_TREE"] = WorkTree;
        psi.Environment["GIT_TERMINAL_PROMPT"] = "0";
        psi.Environment["GIT_OPTIONAL_LOCKS"] = "0";
        psi.Environment["LC_ALL"] = "C";
        foreach (var a in Pinned)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = new Process { StartInfo = psi };
        try
        {
            p.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new SnapshotUnavailableException("git is not installed or cannot be started: " + ex.Message, ex);
        }

        using var reg = ct.Register(() =>
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // already exited
            }
        });
        var outTask = ReadAllAsync(p.StandardOutput.BaseStream);
        var errTask = p.StandardError.ReadToEndAsync(CancellationToken.None);
        if (stdin is not null)
        {
            try
            {
                await p.StandardInput.BaseStream.WriteAsync(stdin, ct).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // git exited early; its exit code and stderr tell why
            }
        }

        try
        {
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // the same early exit, seen when the pipe is closed (found by GitTrack_WaitsForAnIndexLockHeldByAnotherGit)
        }

        byte[] stdout = await outTask.ConfigureAwait(false);
        string stderr = await errTask.ConfigureAwait(false);
        await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        return (p.ExitCode, stdout, stderr);
    }

    private static async Task<byte[]> ReadAllAsync(Stream s)
    {
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms).ConfigureAwait(false);
        return ms.ToArray();
    }
}

/// <summary>A git command failed. Internal: the snapshot store turns it into a sentence for a person.</summary>
internal sealed class GitFailedException(IReadOnlyList<string> args, int code, string stderr)
    : Exception($"git {string.Join(' ', args.Take(3))} failed ({code}): {stderr.Trim()}")
{
    public string Stderr { get; } = stderr;
}
