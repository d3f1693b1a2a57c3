using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Share;
using OpenCode.Rpc.Tests.Infrastructure;
using Xunit.Abstractions;
using static OpenCode.Rpc.Tests.Share.ShareTestKit;
using static OpenCode.Rpc.Tests.Transfer.TransferTestKit;

namespace OpenCode.Rpc.Tests.Share;

/// <summary>The real OpenCode 1.18.33 against our share server (installed by ../shared/tools/opencode-ref.sh when missing).</summary>
public sealed class ShareInteropTests(ITestOutputHelper output)
{
    private const string Version = "1.18.33";

    [Fact]
    public async Task RealServe_ShareSession_LandsInOurServer()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        string home = Path.Combine(dirs.Root, "ochome");
        Directory.CreateDirectory(Path.Combine(home, "config", "opencode"));
        await File.WriteAllTextAsync(Path.Combine(home, "config", "opencode", "opencode.jsonc"),
            $$"""{ "enterprise": { "url": "{{server.BaseUrl}}" }, "share": "manual", "autoupdate": false }""");
        int port = FreePort();
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dirs.ProjectDir };
        psi.ArgumentList.Add(OpenCodeRef);
        foreach (var a in new[] { "serve", "--port", port.ToString(), "--hostname", "127.0.0.1" })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OCREF_HOME"] = home;
        psi.Environment["OCREF_VERSION"] = Version;
        psi.Environment["OCREF_TIMEOUT"] = "0";
        psi.Environment["OPENCODE_DISABLE_SHARE"] = "0";
        using var serve = Process.Start(psi)!;
        serve.OutputDataReceived += (_, e) => Log("serve: " + e.Data);
        serve.ErrorDataReceived += (_, e) => Log("serve! " + e.Data);
        serve.BeginOutputReadLine();
        serve.BeginErrorReadLine();
        try
        {
            string api = $"http://127.0.0.1:{port}";
            // Its first start runs an npm install in the config dir (the first request waits for it): poll until it
            // answers.
            var deadline = DateTime.UtcNow.AddMinutes(8);
            while (true)
            {
                Assert.False(serve.HasExited, "opencode serve exited early");
                try
                {
                    if ((await SendAsync(HttpMethod.Get, api + "/session")).Status == HttpStatusCode.OK)
                    {
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                }
                catch (TaskCanceledException)
                {
                    // Still installing: the request timed out.
                }

                Assert.True(DateTime.UtcNow < deadline, "opencode serve never answered");
                await Task.Delay(500);
            }

            var created = await SendAsync(HttpMethod.Post, api + "/session", "{}");
            Assert.Equal(HttpStatusCode.OK, created.Status);
            string sid = (string)JsonNode.Parse(created.Body)!["id"]!;
            var shared = await SendAsync(HttpMethod.Post, $"{api}/session/{sid}/share", null);
            Assert.True(shared.Status == HttpStatusCode.OK, shared.Body);
            string url = (string)JsonNode.Parse(shared.Body)!["share"]!["url"]!;
            string shareId = sid[^8..];
            Assert.Equal($"{server.BaseUrl}/share/{shareId}", url);

            // Its full sync follows about a second later.
            JsonArray? data = null;
            await WaitUntilAsync(() =>
            {
                data = DataAsync(server.BaseUrl, shareId).GetAwaiter().GetResult();
                return data?.Any(i => (string?)i!["type"] == "session") == true;
            }, "OpenCode's sync reaches our server");
            Assert.Equal(sid, (string?)data!.First(i => (string?)i!["type"] == "session")!["data"]!["id"]);

            // And its unshare deletes it here.
            var un = await SendAsync(HttpMethod.Delete, $"{api}/session/{sid}/share", null);
            Assert.True(un.Status == HttpStatusCode.OK, un.Body);
            Assert.Null(await DataAsync(server.BaseUrl, shareId));
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task RealImport_OfAShareMadeByOurClient_EqualsOurExport()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, ExportFixture("fake-llm-session-with-tool.json"), ProjectResolver.Resolve(dirs.ProjectDir));
        using (var share = new ShareService(store, () => new ShareSettings(server.BaseUrl, ShareMode.Manual), m => Log(m)))
        {
            await share.ShareAsync(r.SessionID, sanitize: false, CancellationToken.None);
            Assert.True(await share.FlushAsync(CancellationToken.None));
            Assert.Equal(0, share.Pending(r.SessionID));
        }

        string home = Path.Combine(dirs.Root, "ochome");
        string cwd = Path.Combine(dirs.Root, "occwd");
        Directory.CreateDirectory(home);
        Directory.CreateDirectory(cwd);
        var imp = await RunOpenCodeAsync(home, cwd, Version, "import", $"{server.BaseUrl}/share/{r.SessionID[^8..]}");
        Assert.True(imp.Code == 0, imp.Stderr);
        Assert.Equal($"Imported session: {r.SessionID}\n", imp.Stdout);
        var exp = await RunOpenCodeAsync(home, cwd, Version, "export", r.SessionID);
        Assert.True(exp.Code == 0, exp.Stderr);
        SameContent(Normalize(await ExportAsync(store, r.SessionID)), Normalize(exp.Stdout));
    }

    private void Log(string? line)
    {
        try
        {
            output.WriteLine(line ?? string.Empty);
        }
        catch (InvalidOperationException)
        {
            // The test already finished.
        }
    }
}
