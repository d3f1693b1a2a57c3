using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OpenCode.Rpc.Tests.Revert;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RevertProcessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Process_UndoAndRedo_OverStdio()
    {
        await using var h = await RevertHarness.StartAsync(true, p => File.WriteAllText(Path.Combine(p, "a.txt"), "alpha\n"), processOutput: output);
        var before = h.Files();
        await h.TurnAsync("edit", () =>
        {
            File.WriteAllText(h.P("a.txt"), "changed by the AI\n");
            File.WriteAllText(h.P("created.txt"), "new\n");
        });
        var after = h.Files();
        var undo = await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.Equal(2, undo.GetProperty("files").GetArrayLength());
        Assert.Equal(before, h.Files());
        await h.Client.CallAsync(Methods.SessionRedo, new { sessionID = h.SessionId });
        Assert.Equal(after, h.Files());
    }

    [Fact]
    public async Task InterruptedRevert_IsRolledBack_AtTheNextStart()
    {
        string user;
        string hash;
        string sessionId;
        using var dirs = new TestDirs(git: true);
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "a.txt"), "alpha\n");
        RevertHarness.CommitAll(dirs.ProjectDir);
        string configDir = RevertHarness.NewConfigDir(dirs);
        var options = new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: configDir);
        string projectId;
        await using (var s = await InProcServer.StartAsync(dirs, options: options))
        {
            var session = await s.CallAsync(Methods.SessionCreate, new { title = "t" });
            sessionId = session.GetProperty("id").GetString()!;
            projectId = session.GetProperty("projectID").GetString()!;
            var u = await s.CallAsync(Methods.MessageUpdate, new { info = new { sessionID = sessionId, role = "user", time = new { created = 1 }, agent = "build", model = new { providerID = "p", modelID = "m" } } });
            user = u.GetProperty("id").GetString()!;
            File.WriteAllText(Path.Combine(dirs.ProjectDir, "a.txt"), "AI version\n");
            hash = (await s.CallAsync(Methods.SnapshotTrack, new { sessionID = sessionId })).GetProperty("hash").GetString()!;
        }

        // A revert killed after it rewrote a.txt but before it recorded the revert in the session.
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "a.txt"), "alpha\n");
        var journal = new JsonObject
        {
            ["sessionID"] = sessionId,
            ["gitDir"] = Path.Combine(dirs.DataDir, "snapshot", projectId),
            ["workTree"] = dirs.ProjectDir,
            ["userGitDir"] = Path.Combine(dirs.ProjectDir, ".git"),
            ["before"] = hash,
            ["files"] = new JsonArray("a.txt"),
            ["revert"] = new JsonObject { ["messageID"] = user, ["snapshot"] = hash },
            ["expect"] = "revert",
        };
        string journalFile = Path.Combine(dirs.DataDir, "opencode-rpc", "revert", sessionId + ".journal.json");
        Directory.CreateDirectory(Path.GetDirectoryName(journalFile)!);
        File.WriteAllBytes(journalFile, JsJson.ToBytes(journal));

        await using (var s = await InProcServer.StartAsync(dirs, options: options))
        {
            await s.CallAsync(Methods.SessionRevert, new { sessionID = sessionId, messageID = user, dryRun = true });
            Assert.Contains(s.Log, l => l.Contains("rolled back", StringComparison.Ordinal));
        }

        Assert.Equal("AI version\n", File.ReadAllText(Path.Combine(dirs.ProjectDir, "a.txt")));
        Assert.False(File.Exists(journalFile));
    }

    /// <summary>A sidecar killed in the middle of a revert leaves a journal. The next sidecar to start on the data dir
    /// puts the worktree right before it answers <c>initialize</c>, with no revert call: rolled back when the revert
    /// was not recorded yet, left finished when it was (the session is written last).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task KilledMidRevert_IsRolledBackOrFinished_WhenTheNextSidecarStarts_WithoutAnyRevertCall(bool sessionRecordedIt)
    {
        using var dirs = new TestDirs(git: true);
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "a.txt"), "alpha\n");
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "keep.txt"), "untouched\n");
        RevertHarness.CommitAll(dirs.ProjectDir);
        string configDir = RevertHarness.NewConfigDir(dirs);
        string P(string rel) => Path.Combine(dirs.ProjectDir, rel);
        string sessionId;
        string user;
        string aiState;
        IReadOnlyDictionary<string, string> afterAi;
        IReadOnlyDictionary<string, string> reverted;
        JsonObject? recorded = null;
        await using (var s = await InProcServer.StartAsync(dirs, options: new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: configDir)))
        {
            sessionId = (await s.CallAsync(Methods.SessionCreate, new { title = "t" })).GetProperty("id").GetString()!;
            user = (await s.CallAsync(Methods.MessageUpdate, new { info = new { sessionID = sessionId, role = "user", time = new { created = 1 }, agent = "build", model = new { providerID = "p", modelID = "m" } } })).GetProperty("id").GetString()!;
            string asst = (await s.CallAsync(Methods.MessageUpdate, new { info = new { sessionID = sessionId, role = "assistant", time = new { created = 2 }, parentID = user, modelID = "m", providerID = "p", mode = "build", agent = "build", path = new { cwd = dirs.ProjectDir, root = dirs.ProjectDir }, cost = 0, tokens = new { input = 0, output = 0, reasoning = 0, cache = new { read = 0, write = 0 } } } })).GetProperty("id").GetString()!;
            await s.CallAsync(Methods.StepStart, new { sessionID = sessionId, messageID = asst });
            File.WriteAllText(P("a.txt"), "AI version\n");
            File.WriteAllText(P("made.txt"), "made by the AI\n");
            await s.CallAsync(Methods.StepFinish, new { sessionID = sessionId, messageID = asst, reason = "stop" });
            aiState = (await s.CallAsync(Methods.SnapshotTrack, new { sessionID = sessionId })).GetProperty("hash").GetString()!;
            afterAi = RevertHarness.FileMap(dirs.ProjectDir);
            if (sessionRecordedIt)
            {
                await s.CallAsync(Methods.SessionRevert, new { sessionID = sessionId, messageID = user });
                recorded = JsonNode.Parse((await s.CallAsync(Methods.SessionGet, new { sessionID = sessionId })).GetProperty("revert").GetRawText())!.AsObject();
            }
        }

        // The state a SIGKILL leaves: the journal written before the first file, and the worktree half restored
        // (a.txt put back, made.txt not yet deleted) or, when the session already records it, fully restored.
        if (!sessionRecordedIt)
        {
            File.WriteAllText(P("a.txt"), "alpha\n");
        }

        reverted = RevertHarness.FileMap(dirs.ProjectDir);

        // The kill also caught a restore mid-write: its temp file is beside the file (found by the revert kill soak).
        string stray = P($".made.txt.ocrpc-{Guid.NewGuid():N}.tmp");
        File.WriteAllText(stray, "half a file");
        var journal = new JsonObject
        {
            ["sessionID"] = sessionId,
            ["gitDir"] = Path.Combine(dirs.DataDir, "snapshot", ProjectIdOf(dirs)),
            ["workTree"] = dirs.ProjectDir,
            ["userGitDir"] = Path.Combine(dirs.ProjectDir, ".git"),
            ["before"] = aiState,
            ["files"] = new JsonArray("a.txt", "made.txt"),
            ["revert"] = new JsonObject { ["messageID"] = user, ["snapshot"] = recorded?["snapshot"]?.GetValue<string>() ?? aiState },
            ["expect"] = "revert",
        };
        string journalFile = Path.Combine(dirs.DataDir, "opencode-rpc", "revert", sessionId + ".journal.json");
        Directory.CreateDirectory(Path.GetDirectoryName(journalFile)!);
        File.WriteAllBytes(journalFile, JsJson.ToBytes(journal));

        await using var next = await ProcessServer.StartAsync(dirs, output, true, "--config-dir", configDir);

        // initialize has answered; nothing else was asked.
        Assert.False(File.Exists(journalFile));
        Assert.False(File.Exists(stray));
        if (sessionRecordedIt)
        {
            Assert.Equal(reverted, RevertHarness.FileMap(dirs.ProjectDir)); // finished: left reverted
            Assert.False(File.Exists(P("made.txt")));
            Assert.Equal("alpha\n", File.ReadAllText(P("a.txt")));
        }
        else
        {
            Assert.Equal(afterAi, RevertHarness.FileMap(dirs.ProjectDir)); // rolled back to just before the revert
            Assert.Contains(next.Stderr, l => l.Contains("rolled back", StringComparison.Ordinal));
        }

        var session = await next.CallAsync(Methods.SessionGet, new { sessionID = sessionId });
        Assert.Equal(sessionRecordedIt, session.TryGetProperty("revert", out _));
    }

    private static string ProjectIdOf(TestDirs dirs) => OpenCode.Rpc.Core.Projects.ProjectResolver.Resolve(dirs.ProjectDir).Id;

    /// <summary>The real OpenCode 1.1.65, driven offline by the fake LLM, writes hello.txt in a session; our
    /// session/undo removes it and session/redo puts it back.</summary>
    [Fact]
    public async Task Interop_RealOpenCode1165Session_UndoAndRedoByUs()
    {
        using var dirs = new TestDirs(git: true);
        string home = Path.Combine(dirs.Root, "ochome");
        string configDir = Path.Combine(home, "config", "opencode");
        Directory.CreateDirectory(configDir);
        int port = FreePort();
        string config = File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "opencode.jsonc.used-for-fake-llm")).Replace("4097", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(configDir, "opencode.jsonc"), config);

        using var fake = Process.Start(new ProcessStartInfo("python3", [Path.Combine(RepoPaths.Shared, "tools", "fake-llm-share-server.py"), port.ToString(System.Globalization.CultureInfo.InvariantCulture), Path.Combine(home, "fake.log")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // OpenCode 1.1.65 snapshots the step start asynchronously: with a fast model (or a loaded machine) the
            // tool writes first and no patch part is recorded. A slow fake model keeps the order real.
            Environment = { ["FAKE_LLM_DELAY"] = "1.5" },
        })!;
        try
        {
            await WaitForPortAsync(port);
            var psi = new ProcessStartInfo("bash", [Path.Combine(RepoPaths.Shared, "tools", "opencode-ref.sh"), "run", "--model", "fake/fake-model", "WRITE " + dirs.ProjectDir])
            {
                WorkingDirectory = dirs.ProjectDir,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.Environment["OCREF_VERSION"] = "1.1.65";
            psi.Environment["OCREF_HOME"] = home;
            psi.Environment["OCREF_TIMEOUT"] = "180";
            using var oc = Process.Start(psi)!;
            var so = oc.StandardOutput.ReadToEndAsync();
            var se = oc.StandardError.ReadToEndAsync();
            await oc.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(240));
            output.WriteLine(await so);
            output.WriteLine(await se);
            Assert.Equal(0, oc.ExitCode);
        }
        finally
        {
            fake.Kill();
        }

        string hello = Path.Combine(dirs.ProjectDir, "hello.txt");
        Assert.Equal("hello from fake llm\n", File.ReadAllText(hello));

        string dataDir = Path.Combine(home, "data", "opencode");
        var patchParts = Directory.EnumerateFiles(Path.Combine(dataDir, "storage", "part"), "*.json", SearchOption.AllDirectories)
            .Select(File.ReadAllText).Where(t => t.Contains("\"type\": \"patch\"", StringComparison.Ordinal)).ToList();
        Assert.True(patchParts.Count == 1 && patchParts[0].Contains(hello, StringComparison.Ordinal), "OpenCode recorded no patch part for hello.txt (its step-start snapshot raced the tool)");
        var testDirs = dirs;
        var options = new ServerOptions(dataDir, dirs.ProjectDir, ConfigDir: configDir);
        await using var s = await InProcServer.StartAsync(testDirs, options: options);
        var sessions = await s.CallAsync(Methods.SessionList);
        string sessionId = sessions.EnumerateArray().Single().GetProperty("id").GetString()!;

        var undo = await s.CallAsync(Methods.SessionUndo, new { sessionID = sessionId });
        output.WriteLine(undo.ToString());
        Assert.False(File.Exists(hello));
        Assert.Contains(undo.GetProperty("files").EnumerateArray(), f => f.GetProperty("path").GetString() == hello && f.GetProperty("status").GetString() == "deleted");
        Assert.Equal("hello\n", File.ReadAllText(Path.Combine(dirs.ProjectDir, "README.md")));

        await s.CallAsync(Methods.SessionRedo, new { sessionID = sessionId });
        Assert.Equal("hello from fake llm\n", File.ReadAllText(hello));
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
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
                await Task.Delay(50);
            }
        }

        throw new TimeoutException("the fake LLM did not start");
    }
}
