using System.Diagnostics;
using System.Text;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Transfer;

/// <summary>The interactive picker, on a real pseudo-terminal made by script(1).</summary>
public sealed class ExportPickerTests
{
    [Fact]
    public async Task Export_NoIdOnATerminal_PicksFromNewestFirst_TitleThenUpdatedAndLast8()
    {
        using var dirs = new TestDirs();
        string[] common = ["--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir];
        foreach (var f in new[] { "http-session-2user-msgs.json", "fake-llm-session-with-tool.json" })
        {
            Assert.Equal(0, (await ProcessServer.RunCliAsync(["import", TransferTestKit.ExportFixture(f), .. common])).Code);
        }

        string outFile = Path.Combine(dirs.Root, "picked.json");
        string dll = Path.Combine(AppContext.BaseDirectory, "opencode-rpc.dll");
        string cmd = $"dotnet exec '{dll}' export --data-dir '{dirs.DataDir}' --directory '{dirs.ProjectDir}' > '{outFile}'";
        var psi = new ProcessStartInfo("script")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-qefc", cmd, "/dev/null" })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["TERM"] = "xterm";
        using var p = Process.Start(psi)!;
        var screen = new StringBuilder();
        var prompted = new TaskCompletionSource();
        var reader = Task.Run(async () =>
        {
            var buf = new char[4096];
            int n;
            while ((n = await p.StandardOutput.ReadAsync(buf)) > 0)
            {
                lock (screen)
                {
                    screen.Append(buf, 0, n);
                    if (screen.ToString().Contains("46fCazeu", StringComparison.Ordinal) && screen.ToString().Contains("kdnDCX6s", StringComparison.Ordinal))
                    {
                        prompted.TrySetResult();
                    }
                }
            }
        });
        await prompted.Task.WaitAsync(TimeSpan.FromSeconds(60));
        string shown;
        lock (screen)
        {
            shown = screen.ToString();
        }

        // newest updated first: "fake llm session" (updated 1795468730419) above "renamed" (1795468510859)
        Assert.True(shown.IndexOf("fake llm session", StringComparison.Ordinal) < shown.IndexOf("renamed", StringComparison.Ordinal), shown);
        Assert.Contains(" • 46fCazeu", shown, StringComparison.Ordinal);
        await p.StandardInput.WriteAsync("\u001b[B\r"); // arrow down, enter: the second, older session
        await p.StandardInput.FlushAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await reader.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, p.ExitCode);
        TransferTestKit.SameContent(
            TransferTestKit.Normalize(await File.ReadAllTextAsync(TransferTestKit.ExportFixture("http-session-2user-msgs.json"))),
            TransferTestKit.Normalize(await File.ReadAllTextAsync(outFile)));
        Assert.Contains("\"id\": \"ses_df5bd1602ffe7PW8nTkdnDCX6s\"", await File.ReadAllTextAsync(outFile), StringComparison.Ordinal);
    }
}
