using System.Diagnostics;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Store;

public sealed class NativeFlagsTests
{
    /// <summary>The open(2) flags the store passes to libc, against this machine's own &lt;fcntl.h&gt;, compiled by its
    /// C compiler (the one NativeAOT links with). They differ by system and by architecture (arm64's O_DIRECTORY is
    /// x86's O_DIRECT), and a wrong one fails every durable write there; this holds the table in Native to whichever
    /// machine runs the tests.</summary>
    [Fact]
    public void OpenFlags_MatchThisSystemsFcntlHeader()
    {
        using var dirs = new TestDirs();
        string source = Path.Combine(dirs.Root, "flags.c");
        string exe = Path.Combine(dirs.Root, "flags");
        File.WriteAllText(source, """
            #define _GNU_SOURCE
            #include <fcntl.h>
            #include <stdio.h>
            int main(void) { printf("%d %d %d %d %d", O_CREAT, O_EXCL, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW); return 0; }
            """);
        string compiler = new[] { "cc", "clang", "gcc" }.FirstOrDefault(OnPath)
            ?? throw new InvalidOperationException("No C compiler (cc, clang or gcc) on PATH: the NativeAOT publish needs one too.");
        Run(compiler, source, "-o", exe);
        string printed = Run(exe);
        Assert.Equal(printed, $"{Native.O_CREAT} {Native.O_EXCL} {Native.O_CLOEXEC} {Native.O_DIRECTORY} {Native.O_NOFOLLOW}");
    }

    private static bool OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, name)));

    private static string Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} exited {p.ExitCode}: {error}");
        return output.Trim();
    }
}
