using System.Diagnostics;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Transfer;

public sealed class ExportCliTests
{
    /// <summary>A 2000-message session (~3 MB of export) made by the shared bench generator.</summary>
    internal static async Task<string> BenchExportAsync(string dir, int messages)
    {
        string file = Path.Combine(dir, $"bench-{messages}.json");
        var psi = new ProcessStartInfo("python3") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(RepoPaths.Shared, "tools", "gen-opencode-bench.py"));
        psi.ArgumentList.Add("export");
        psi.ArgumentList.Add(file);
        psi.ArgumentList.Add(messages.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var p = Process.Start(psi)!;
        await p.StandardOutput.ReadToEndAsync();
        await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(0, p.ExitCode);
        return file;
    }

    [Fact]
    public async Task Export_Cli_ToAPipe_WritesEveryByteOfA3MbExport()
    {
        using var dirs = new TestDirs();
        string[] common = ["--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir];
        string bench = await BenchExportAsync(dirs.Root, 2000);
        var imported = await ProcessServer.RunCliAsync(["import", bench, .. common]);
        Assert.Equal(0, imported.Code);
        string id = imported.Stdout.Trim().Split(' ')[^1];

        string file = Path.Combine(dirs.Root, "out.json");
        var toFile = await ProcessServer.RunCliAsync(["export", id, "-o", file, .. common]);
        Assert.Equal(0, toFile.Code);
        long expected = new FileInfo(file).Length;
        Assert.True(expected > 3_000_000, $"the export is only {expected} bytes");

        // stdout is a pipe here (the test reads it to the end): the `| wc -c` of the issue.
        var piped = await ProcessServer.RunCliAsync(["export", id, .. common]);
        Assert.Equal(0, piped.Code);
        Assert.Equal(expected, System.Text.Encoding.UTF8.GetByteCount(piped.Stdout));
        Assert.Equal(await File.ReadAllTextAsync(file), piped.Stdout);
        Assert.Equal($"Exporting session: {id}\n", piped.Stderr);
    }

    /// <summary>The import returns once its files are in place and durable through the write journal; the flush of the
    /// files themselves is left to a detached helper, which then removes the journal. The helper must not hold the
    /// verb's stdout (a caller reading it to the end would wait for the flush).</summary>
    [Fact]
    public async Task Import_Cli_HandsItsJournalToAHelper_ThatRemovesItAfterTheFlush()
    {
        using var dirs = new TestDirs();
        string bench = await BenchExportAsync(dirs.Root, 200);
        var imported = await ProcessServer.RunCliAsync(["import", bench, "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir]);
        Assert.Equal(0, imported.Code);
        Assert.StartsWith("Imported session: ses_", imported.Stdout, StringComparison.Ordinal);
        Assert.Equal(200, Directory.GetFiles(Path.Combine(dirs.Storage, "message"), "*.json", SearchOption.AllDirectories).Length);

        string root = Core.Storage.WriteJournal.JournalRoot(new Core.Storage.StoreLayout(dirs.DataDir));
        Assert.True(await Poll.UntilAsync(() => !Directory.Exists(root) || Directory.GetDirectories(root).Length == 0, 30));
        Assert.Equal(string.Empty, imported.Stderr);
    }

    [Fact]
    public async Task Export_Cli_UnknownId_SessionNotFound_Exit1()
    {
        using var dirs = new TestDirs();
        var r = await ProcessServer.RunCliAsync(["export", "ses_nonexistent", "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir]);
        Assert.Equal(1, r.Code);
        Assert.Equal(string.Empty, r.Stdout);
        Assert.Equal("Exporting session: ses_nonexistent\nError: Session not found: ses_nonexistent\n", r.Stderr);
    }

    [Fact]
    public async Task Export_Cli_NoIdAndNoTerminal_FailsClearly()
    {
        using var dirs = new TestDirs();
        var r = await ProcessServer.RunCliAsync(["export", "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir]);
        Assert.Equal(1, r.Code);
        Assert.Equal(string.Empty, r.Stdout);
        Assert.StartsWith("Error: No session ID given, and there is no terminal to pick one on.", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_Cli_Markdown_ToFile_UsesTheSameFormatter()
    {
        using var dirs = new TestDirs();
        string[] common = ["--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir];
        Assert.Equal(0, (await ProcessServer.RunCliAsync(["import", TransferTestKit.ExportFixture("fake-llm-session-with-tool.json"), .. common])).Code);
        string file = Path.Combine(dirs.Root, "t.md");
        var r = await ProcessServer.RunCliAsync(["export", "ses_df5b97920ffeUFbu7k46fCazeu", "--format", "markdown", "-o", file, .. common]);
        Assert.Equal(0, r.Code);
        string md = await File.ReadAllTextAsync(file);
        Assert.StartsWith("# fake llm session\n\n**Session ID:** ses_df5b97920ffeUFbu7k46fCazeu\n**Created:** ", md, StringComparison.Ordinal);
        Assert.EndsWith("## Assistant\n\nDone: wrote the file.\n\n---\n\n", md, StringComparison.Ordinal);
    }
}
