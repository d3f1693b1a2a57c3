using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using OpenCode.Rpc.Tests.Rpc;
using OpenCode.Rpc.Tests.Store;
using Xunit.Abstractions;
using static OpenCode.Rpc.Tests.Rpc.RpcScenario;

namespace OpenCode.Rpc.Tests.Interop;

/// <summary>Both directions against the real OpenCode 1.1.65 binary.</summary>
public sealed class OpenCodeInteropTests(ITestOutputHelper output)
{
    private void Show(string what, (int Code, string Stdout, string Stderr) r)
    {
        output.WriteLine($"== {what}: rc={r.Code}\n{r.Stdout}\n-- stderr --\n{r.Stderr}");
    }

    [Fact]
    public async Task WhatOurRpcWrites_IsListedAndExportedByRealOpenCode_Intact()
    {
        using var dirs = new TestDirs(git: true);
        string home = Path.Combine(dirs.Root, "oc");
        string storage = Path.Combine(OpenCodeRef.DataDir(home), "storage");
        string sid, childId, otherId;
        JsonObject session;
        JsonArray messages;
        await using (var s = await InProcServer.StartAsync(dirs, options: OpenCodeRef.Options(home, dirs.ProjectDir)))
        {
            (sid, _, _) = await KeyScenarioAsync(s, storage);
            otherId = Id(await s.CallAsync(Methods.SessionCreate, new { title = "second 日本語 😀 \"quoted\"" }));
            childId = Id(await s.CallAsync(Methods.SessionCreate, new { parentID = sid }));
            session = Obj(await s.CallAsync(Methods.SessionGet, new { sessionID = sid }));
            messages = (JsonArray)JsJson.Parse(JsonSerializer.SerializeToUtf8Bytes(await s.CallAsync(Methods.MessageList, new { sessionID = sid })))!;
        }

        var table = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "session", "list");
        Show("session list", table);
        Assert.Equal(0, table.Code);
        var rows = table.Stdout.Split('\n');
        Assert.Contains(rows, r => r.StartsWith(sid, StringComparison.Ordinal) && r.Contains("renamed", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith(otherId, StringComparison.Ordinal));
        Assert.DoesNotContain(rows, r => r.StartsWith(childId, StringComparison.Ordinal)); // roots only

        var json = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "session", "list", "--format", "json");
        Show("session list --format json", json);
        Assert.Equal(0, json.Code);
        var listed = JsonNode.Parse(json.Stdout)!.AsArray();
        var entry = listed.Single(e => (string)e!["id"]! == sid)!;
        Assert.Equal("renamed", (string)entry["title"]!);
        Assert.Equal((string)session["projectID"]!, (string)entry["projectId"]!);
        Assert.Equal(dirs.ProjectDir, (string)entry["directory"]!);
        Assert.Equal((long)session["time"]!["updated"]!, (long)entry["updated"]!);
        Assert.Equal((long)session["time"]!["created"]!, (long)entry["created"]!);
        Assert.Equal("second 日本語 😀 \"quoted\"", (string)listed.Single(e => (string)e!["id"]! == otherId)!["title"]!);

        var export = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "export", sid);
        output.WriteLine("export stderr: " + export.Stderr);
        Assert.Equal(0, export.Code);
        var exported = JsJson.ParseObject(Encoding.UTF8.GetBytes(export.Stdout));
        Samples.AssertSameJson(session, exported["info"]);
        Samples.AssertSameJson(messages, exported["messages"]);
        var parts = exported["messages"]![1]!["parts"]!.AsArray();
        Assert.Equal(["step-start", "tool", "text", "step-finish", "patch"], parts.Select(p => (string)p!["type"]!));
        Assert.Equal("héllo 日本 😀\n", (string)parts[1]!["state"]!["input"]!["content"]!);

        // And byte for byte: the export is JSON.stringify of what is on disk, so our writer must agree with theirs.
        var envelope = new JsonObject { ["info"] = session.DeepClone(), ["messages"] = messages.DeepClone() };
        Assert.Equal(JsJson.ToText(envelope) + "\n", export.Stdout);
    }

    [Fact]
    public async Task FixtureStore_WrittenBy1165_IsReadLosslessly()
    {
        using var dirs = new TestDirs(git: true);
        Samples.CopyDirectory(Samples.FixtureStorage, dirs.Storage);
        var before = Snapshot(dirs);
        await using var s = await InProcServer.StartAsync(dirs);

        var session = Obj(await s.CallAsync(Methods.SessionGet, new { sessionID = Samples.FixtureSessionId }));
        string sessionFile = Path.Combine(dirs.Storage, "session", Samples.FixtureProjectId, Samples.FixtureSessionId + ".json");
        Samples.AssertSameJson(Samples.ReadJson(sessionFile), session);

        var list = await s.CallAsync(Methods.MessageList, new { sessionID = Samples.FixtureSessionId });
        Assert.Equal(5, list.GetArrayLength());
        foreach (var m in list.EnumerateArray())
        {
            string mid = Id(m.GetProperty("info"));
            Samples.AssertSameJson(Samples.ReadJson(Path.Combine(dirs.Storage, "message", Samples.FixtureSessionId, mid + ".json")), Obj(m.GetProperty("info")));
            var partFiles = Directory.GetFiles(Path.Combine(dirs.Storage, "part", mid)).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(partFiles.Count, m.GetProperty("parts").GetArrayLength());
            for (int i = 0; i < partFiles.Count; i++)
            {
                Samples.AssertSameJson(Samples.ReadJson(partFiles[i]), Obj(m.GetProperty("parts")[i]));
            }

            var one = await s.CallAsync(Methods.MessageGet, new { sessionID = Samples.FixtureSessionId, messageID = mid });
            Assert.Equal(JsonSerializer.Serialize(m), JsonSerializer.Serialize(one));
        }

        // Our session/get + message/list, wrapped as an export, is byte-identical to 1.1.65's own export of that store.
        var envelope = new JsonObject
        {
            ["info"] = session,
            ["messages"] = JsJson.Parse(JsonSerializer.SerializeToUtf8Bytes(list)),
        };
        string fixtureExport = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Fixtures, "v1.1.65", "export-fake-llm-session.json"));
        Assert.Equal(fixtureExport, JsJson.ToText(envelope) + "\n");

        // Rewriting the session with its own title changes no byte; reading changed nothing at all.
        await s.CallAsync(Methods.SessionUpdate, new { sessionID = Samples.FixtureSessionId, title = "fake llm session" });
        AssertUnchanged(before, dirs);
    }

    /// <summary>Sessions for the list comparison: some through our RPC, some written with old times (so the date
    /// branch of the Updated column shows), a child and an archived one, another project's, more than 100 roots.</summary>
    private static async Task<string> BuildListStoreAsync(TestDirs dirs, string home)
    {
        string data = OpenCodeRef.DataDir(home);
        await using (var s = await InProcServer.StartAsync(dirs, options: OpenCodeRef.Options(home, dirs.ProjectDir)))
        {
            for (int i = 0; i < 103; i++)
            {
                await s.CallAsync(Methods.SessionCreate, new { title = i % 10 == 0 ? $"Session {i} with a rather long title, longer than the 25 minimum" : $"s{i}" });
            }

            string parent = Id(await s.CallAsync(Methods.SessionCreate, new { title = "parent" }));
            await s.CallAsync(Methods.SessionCreate, new { title = "child", parentID = parent });
            string archived = Id(await s.CallAsync(Methods.SessionCreate, new { title = "archived ünïcødé 日本語" }));
            await s.CallAsync(Methods.SessionUpdate, new { sessionID = archived, archived = true });
            await s.CallAsync(Methods.SessionCreate);
        }

        var project = ProjectResolver.Resolve(dirs.ProjectDir);
        var layout = new StoreLayout(data);
        long[] old = [1_700_000_000_000, 1_731_000_000_123, 1_760_000_000_999, 1_700_000_000_000];
        for (int i = 0; i < old.Length; i++)
        {
            string id = $"ses_{i:D12}OLDSESSION{i:D4}";
            var info = new JsonObject
            {
                ["id"] = id, ["slug"] = "calm-otter", ["version"] = "1.1.65", ["projectID"] = project.Id, ["directory"] = dirs.ProjectDir,
                ["title"] = i == 3 ? "emoji 😀 tie" : $"old {i}", ["time"] = new JsonObject { ["created"] = old[i] - 1000, ["updated"] = old[i] },
            };
            AtomicFile.Write(layout.SessionFile(project.Id, id), JsJson.ToBytes(info));
        }

        // another project's session must not show up
        var foreign = new JsonObject
        {
            ["id"] = "ses_000000000000FOREIGNxxxxxx", ["slug"] = "x-y", ["version"] = "1.1.65", ["projectID"] = "global", ["directory"] = "/elsewhere",
            ["title"] = "foreign", ["time"] = new JsonObject { ["created"] = 1, ["updated"] = 2_000_000_000_000 },
        };
        AtomicFile.Write(layout.SessionFile("global", "ses_000000000000FOREIGNxxxxxx"), JsJson.ToBytes(foreign));
        return data;
    }

    [Fact]
    public async Task OurSessionListCli_PrintsExactlyWhatReal1165Prints()
    {
        using var dirs = new TestDirs(git: true);
        string home = Path.Combine(dirs.Root, "oc");
        string data = await BuildListStoreAsync(dirs, home);

        string[][] variants =
        [
            [],
            ["--format", "json"],
            ["-n", "3"],
            ["--max-count", "2", "--format", "json"],
            ["-n", "0"],
            ["--format", "table", "-n", "105"],
            ["-n", "-1"],
            ["-n", "1.5", "--format", "json"],
        ];
        foreach (var args in variants)
        {
            var theirs = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, ["session", "list", .. args]);
            var ours = await OpenCodeRef.RunOursAsync(dirs.ProjectDir, ["session", "list", "--data-dir", data, .. args]);
            string label = "session list " + string.Join(' ', args);
            Show("1.1.65 " + label, theirs);
            Show("ours " + label, ours);
            Assert.Equal(0, theirs.Code);
            Assert.Equal(0, ours.Code);
            Assert.Equal(theirs.Stdout, ours.Stdout);
        }

        // From a subdirectory of the repo: the same project, the same list.
        string sub = Path.Combine(dirs.ProjectDir, "src", "deep");
        Directory.CreateDirectory(sub);
        var theirsSub = await OpenCodeRef.RunAsync(home, sub, "session", "list", "--format", "json");
        var oursSub = await OpenCodeRef.RunOursAsync(sub, "session", "list", "--data-dir", data, "--format", "json");
        Assert.Equal(0, theirsSub.Code);
        Assert.NotEqual(string.Empty, theirsSub.Stdout);
        Assert.Equal(theirsSub.Stdout, oursSub.Stdout);

        var all = await OpenCodeRef.RunOursAsync(dirs.ProjectDir, "session", "list", "--data-dir", data, "--format", "json");
        Assert.Equal(103 + 1 + 1 + 1 + 4, JsonNode.Parse(all.Stdout)!.AsArray().Count); // no 100-row cap in 1.1.65
    }

    [Fact]
    public async Task EmptyProject_BothPrintNothing()
    {
        using var dirs = new TestDirs(git: true);
        string home = Path.Combine(dirs.Root, "oc");
        foreach (var args in new[] { Array.Empty<string>(), ["--format", "json"] })
        {
            var theirs = await OpenCodeRef.RunAsync(home, dirs.ProjectDir, ["session", "list", .. args]);
            var ours = await OpenCodeRef.RunOursAsync(dirs.ProjectDir, ["session", "list", "--data-dir", OpenCodeRef.DataDir(home), .. args]);
            Assert.Equal(0, theirs.Code);
            Assert.Equal(0, ours.Code);
            Assert.Equal(string.Empty, theirs.Stdout);
            Assert.Equal(theirs.Stdout, ours.Stdout);
        }
    }

    [Fact]
    public async Task ProjectFiles_HaveTheShapeReal1165Writes_ForGitAndNonGitDirectories()
    {
        using var dirs = new TestDirs(git: true);
        string nonGit = Path.Combine(dirs.Root, "plain");
        Directory.CreateDirectory(nonGit);
        string home = Path.Combine(dirs.Root, "oc");
        Assert.Equal(0, (await OpenCodeRef.RunAsync(home, nonGit, "session", "list")).Code);
        Assert.Equal(0, (await OpenCodeRef.RunAsync(home, dirs.ProjectDir, "session", "list")).Code);
        var theirLayout = new StoreLayout(OpenCodeRef.DataDir(home));
        var ourLayout = new StoreLayout(Path.Combine(dirs.Root, "ours"));

        foreach (var dir in new[] { nonGit, dirs.ProjectDir })
        {
            var project = ProjectResolver.Resolve(dir);
            var theirs = Samples.ReadJson(theirLayout.ProjectFile(project.Id));
            Assert.Equal(JsJson.ToText(theirs), await File.ReadAllTextAsync(theirLayout.ProjectFile(project.Id)));
            long created = (long)theirs["time"]!["created"]!;
            // 1.1.65 bumps time.updated on every start (a git project is written twice on creation, 1 ms apart);
            // we write created == updated once. Everything else must be byte-identical.
            Assert.True((long)theirs["time"]!["updated"]! >= created);
            theirs["time"]!["updated"] = created;
            ProjectResolver.EnsureProjectFile(ourLayout, project, created);
            Assert.Equal(JsJson.ToText(theirs), await File.ReadAllTextAsync(ourLayout.ProjectFile(project.Id)));
        }

        Assert.True(File.Exists(theirLayout.ProjectFile("global")));
    }
}
