using System.Diagnostics;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Share.ShareTestKit;

namespace OpenCode.Rpc.Tests.Share;

/// <summary>The share page in a real browser: Debian's chromium driven by playwright-core (installed by npm into
/// Share/browser/ on first use; chromium by apt-get when it is missing and we are root).</summary>
public sealed class ShareBrowserTests
{
    private static string BrowserDir => Path.Combine(RepoPaths.Root, "tests", "OpenCode.Rpc.Tests", "Share", "browser");

    [Fact]
    public async Task Page_InChromium_ShowsTitleAndFirstMessage_ToolCallExpandsOnClick()
    {
        await EnsureToolsAsync();
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        WriteConfig(dirs, server.BaseUrl);
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s, "Browser check <title>");
        var (u, _) = await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "first question from the user", "an answer");
        await Conversation.AddAsync(s, Build.Assistant(sid, u, 1_700_000_005_000), Build.Tool(sid, "", "read", "TOOL OUTPUT LINE"));
        var shared = await s.CallAsync(Methods.SessionShare, new { sessionID = sid });
        await WaitUntilAsync(() => s.Server.Context.Share.Pending(sid) == 0, "the queue drains");
        string url = shared.GetProperty("share").GetProperty("url").GetString()!;

        var (code, stdout, stderr) = await RunAsync("node", BrowserDir, "check-page.mjs", url, "Browser check <title>", "first question from the user");
        Assert.True(code == 0, stderr);
        var r = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
        Assert.Equal("Browser check <title>", (string?)r["documentTitle"]);
        Assert.True((bool)r["titleVisible"]!);
        Assert.True((bool)r["firstMessageVisible"]!);
        Assert.True((bool)r["toolHiddenBefore"]!);
        Assert.True((bool)r["toolVisibleAfter"]!);
        Assert.Equal("TOOL OUTPUT LINE", (string?)r["toolOutput"]);
    }

    private static async Task EnsureToolsAsync()
    {
        if (!File.Exists("/usr/bin/chromium"))
        {
            var apt = await RunAsync("apt-get", "/", "install", "-y", "chromium");
            Assert.True(apt.Code == 0 && File.Exists("/usr/bin/chromium"), "chromium is missing and apt-get install -y chromium failed: " + apt.Stderr);
        }

        if (!Directory.Exists(Path.Combine(BrowserDir, "node_modules", "playwright-core")))
        {
            var npm = await RunAsync("npm", BrowserDir, "ci", "--no-audit", "--no-fund");
            Assert.True(npm.Code == 0, "npm ci in " + BrowserDir + " failed: " + npm.Stderr);
        }
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, string cwd, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = cwd };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        return (p.ExitCode, await o, await e);
    }
}
