using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using OpenCode.Rpc.Tests.Store;
using Xunit.Abstractions;
using static OpenCode.Rpc.Tests.Rpc.RpcScenario;

namespace OpenCode.Rpc.Tests.Interop;

/// <summary>A session recorded natively by 1.1.65 (a real agent turn against the loopback fake LLM of
/// ../shared/tools: a user message, an assistant message with step-start, tool, step-finish, patch and text parts,
/// a session_diff file, a permission array and a summary on the session) read and edited through our RPC.</summary>
public sealed class RealAgentTurnTests(ITestOutputHelper output)
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task WaitForPortAsync(int port)
    {
        for (int i = 0; i < 200; i++)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }

        throw new InvalidOperationException($"the fake LLM did not listen on {port}");
    }

    [Fact]
    public async Task SessionRecordedByReal1165_IsReadLosslessly_AndOurEditsAndDeleteAreSeenByIt()
    {
        using var dirs = new TestDirs(git: true);
        string home = Path.Combine(dirs.Root, "oc");
        string storage = Path.Combine(OpenCodeRef.DataDir(home), "storage");
        int port = FreePort();
        Directory.CreateDirectory(Path.Combine(home, "config", "opencode"));
        string config = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Fixtures, "opencode.jsonc.used-for-fake-llm"));
        await File.WriteAllTextAsync(Path.Combine(home, "config", "opencode", "opencode.jsonc"), config.Replace("4097", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

        var psi = new ProcessStartInfo("python3") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(RepoPaths.Shared, "tools", "fake-llm-share-server.py"));
        psi.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.ArgumentList.Add(Path.Combine(dirs.Root, "fake.log"));
        using var fake = Process.Start(psi)!;
        try
        {
            await WaitForPortAsync(port);
            var run = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "run", "--model", "fake/fake-model", "WRITE " + dirs.ProjectDir);
            output.WriteLine($"run rc={run.Code}\n{run.Stdout}\n{run.Stderr}");
            Assert.Equal(0, run.Code);
        }
        finally
        {
            fake.Kill();
            await fake.WaitForExitAsync();
        }

        Assert.True(File.Exists(Path.Combine(dirs.ProjectDir, "hello.txt")));
        string sessionFile = Directory.GetFiles(Path.Combine(storage, "session"), "*.json", SearchOption.AllDirectories).Single();
        string sid = Path.GetFileNameWithoutExtension(sessionFile);
        Assert.True(File.Exists(Path.Combine(storage, "session_diff", sid + ".json")));

        var export = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "export", sid);
        Assert.Equal(0, export.Code);

        await using var s = await InProcServer.StartAsync(dirs, options: OpenCodeRef.Options(home, dirs.ProjectDir));
        async Task<string> EnvelopeAsync() => JsJson.ToText(new JsonObject
        {
            ["info"] = Obj(await s.CallAsync(Methods.SessionGet, new { sessionID = sid })),
            ["messages"] = JsJson.Parse(JsonSerializer.SerializeToUtf8Bytes(await s.CallAsync(Methods.MessageList, new { sessionID = sid }))),
        }) + "\n";

        Samples.AssertSameJson(Samples.ReadJson(sessionFile), Obj(await s.CallAsync(Methods.SessionGet, new { sessionID = sid })));
        Assert.Equal(export.Stdout, await EnvelopeAsync());
        var exported = JsJson.ParseObject(System.Text.Encoding.UTF8.GetBytes(export.Stdout));
        var types = exported["messages"]!.AsArray().SelectMany(m => m!["parts"]!.AsArray()).Select(p => (string)p!["type"]!).ToHashSet();
        Assert.Contains("tool", types);
        Assert.Contains("step-finish", types);
        Assert.Contains("text", types);

        // Our rename is what 1.1.65 exports and lists; nothing else moved.
        await s.CallAsync(Methods.SessionUpdate, new { sessionID = sid, title = "renamed by opencode-rpc" });
        var after = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "export", sid);
        Assert.Equal(0, after.Code);
        Assert.Equal(after.Stdout, await EnvelopeAsync());
        // (only the session's title: the first one in the export; the user message's summary may carry the same text)
        string oldTitle = "\"title\": \"" + (string)exported["info"]!["title"]! + "\"";
        int at = export.Stdout.IndexOf(oldTitle, StringComparison.Ordinal);
        Assert.Equal(export.Stdout[..at] + "\"title\": \"renamed by opencode-rpc\"" + export.Stdout[(at + oldTitle.Length)..], after.Stdout);

        var theirs = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "session", "list", "--format", "json");
        var ours = await OpenCodeRef.RunOursAsync(dirs.ProjectDir, "session", "list", "--data-dir", OpenCodeRef.DataDir(home), "--format", "json");
        Assert.Equal(theirs.Stdout, ours.Stdout);
        Assert.Contains("renamed by opencode-rpc", theirs.Stdout, StringComparison.Ordinal);

        // Our delete removes everything 1.1.65 recorded for it, session_diff included.
        var messageIds = exported["messages"]!.AsArray().Select(m => (string)m!["info"]!["id"]!).ToList();
        await s.CallAsync(Methods.SessionDelete, new { sessionID = sid });
        Assert.False(File.Exists(sessionFile));
        Assert.False(File.Exists(Path.Combine(storage, "session_diff", sid + ".json")));
        Assert.False(Directory.Exists(Path.Combine(storage, "message", sid)));
        Assert.All(messageIds, m => Assert.False(Directory.Exists(Path.Combine(storage, "part", m))));
        var gone = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "session", "list");
        Assert.Equal(0, gone.Code);
        Assert.Equal(string.Empty, gone.Stdout);
    }
}
