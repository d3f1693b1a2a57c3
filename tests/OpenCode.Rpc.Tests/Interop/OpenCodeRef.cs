using System.Diagnostics;
using System.Text;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Interop;

/// <summary>
/// The real OpenCode 1.1.65 CLI through ../shared/tools/opencode-ref.sh, which installs it on first use (nothing is
/// skipped when it is missing). Every run gets its own OCREF_HOME, so OpenCode's data dir is
/// <c>$OCREF_HOME/data/opencode</c>; stdout goes to a file, never a pipe (1.1.65 truncates piped output at 64 KiB).
/// Both sides run with TZ=UTC so the "Updated" column is comparable.
/// </summary>
public static class OpenCodeRef
{
    public const string Version = "1.1.65";

    public static string Script => Path.Combine(RepoPaths.Shared, "tools", "opencode-ref.sh");

    public static string DataDir(string home) => Path.Combine(home, "data", "opencode");

    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string home, string cwd, params string[] args)
    {
        Directory.CreateDirectory(home);
        string outFile = Path.Combine(home, $"stdout-{Guid.NewGuid():N}.txt");
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = cwd,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("bash \"$0\" \"$@\" > \"$OCREF_STDOUT\"");
        psi.ArgumentList.Add(Script);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OCREF_VERSION"] = Version;
        psi.Environment["OCREF_HOME"] = home;
        psi.Environment["OCREF_TIMEOUT"] = "300";
        psi.Environment["OPENCODE_EXTRA_ENV"] = "TZ=UTC";
        psi.Environment["OCREF_STDOUT"] = outFile;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        var outText = p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(6));
        string stdout = File.Exists(outFile) ? Encoding.UTF8.GetString(await File.ReadAllBytesAsync(outFile)) : string.Empty;
        File.Delete(outFile);
        return (p.ExitCode, stdout + await outText, await err);
    }

    /// <summary>Our CLI, as a real process, with the same TZ as the reference.</summary>
    public static async Task<(int Code, string Stdout, string Stderr)> RunOursAsync(string cwd, params string[] args)
    {
        var psi = ProcessServer.SidecarStartInfo(args, cwd);
        psi.Environment["TZ"] = "UTC";
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (p.ExitCode, await outTask, await errTask);
    }

    public static ServerOptions Options(string home, string projectDir) => new(DataDir(home), projectDir);
}
