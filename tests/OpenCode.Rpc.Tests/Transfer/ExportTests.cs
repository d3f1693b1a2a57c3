using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Transfer.TransferTestKit;

namespace OpenCode.Rpc.Tests.Transfer;

public sealed class ExportTests
{
    [Theory]
    [InlineData("http-session-2user-msgs.json")]
    [InlineData("fake-llm-session-with-tool.json")]
    public async Task Export_FixtureImportedIntoItsOwnProject_IsByteForByteOpenCodesExport(string fixture)
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, ExportFixture(fixture), FixtureProject);
        string ours = await ExportAsync(store, r.SessionID);
        Assert.Equal(await File.ReadAllTextAsync(ExportFixture(fixture)), ours);
        Assert.EndsWith("}\n", ours, StringComparison.Ordinal); // JSON.stringify + EOL, as OpenCode writes to stdout
    }

    /// <summary>A store that keeps no parsed files (the CLI's) exports from parsed documents instead of the read
    /// cache's nodes: the bytes must be the same, down to escapes and numbers OpenCode never writes itself.</summary>
    [Theory]
    [InlineData("http-session-2user-msgs.json")]
    [InlineData("fake-llm-session-with-tool.json")]
    [InlineData("every-field.export.json")]
    public async Task Export_WithoutReadCache_IsTheSameBytesAsThroughTheCache(string fixture)
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        string file = File.Exists(ExportFixture(fixture)) ? ExportFixture(fixture) : Data(fixture);
        var r = await ImportFileAsync(store, file, FixtureProject);
        // A part the way no JavaScript writer spells it: escapes JSON.stringify never uses, numbers in other forms.
        string msg = store.ListMessages(r.SessionID)[^1].Info["id"]!.GetValue<string>();
        await File.WriteAllTextAsync(Path.Combine(store.Layout.PartDir(msg), "prt_zzzzzzzzzzzzzzzzzzzzzzzzzz.json"),
            "{\"id\":\"prt_zzzzzzzzzzzzzzzzzzzzzzzzzz\",\"messageID\":\"" + msg + "\",\"type\":\"text\",\"text\":\"\\u00e9\\/\\ud800\\ud83d\\ude00\\u001F\",\"k\\u00e9y\":[1.0,-0,1E3,9007199254740993,1e400,{},[]],\"time\":{\"start\":1.5e-7}}");
        string cached = await ExportAsync(store, r.SessionID);
        var uncached = new SessionStore(store.Layout, readCacheBytes: 0);
        Assert.False(uncached.CachesReads);
        Assert.Equal(cached, await ExportAsync(uncached, r.SessionID));
        Assert.Contains("\"k\u00e9y\": [\n", cached, StringComparison.Ordinal); // the odd part is in it, rewritten
    }

    [Fact]
    public async Task Export_WithoutReadCache_SkipsAnUnreadablePartWithAWarning_LikeTheCache()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, ExportFixture("fake-llm-session-with-tool.json"), FixtureProject);
        string msg = store.ListMessages(r.SessionID)[0].Info["id"]!.GetValue<string>();
        await File.WriteAllTextAsync(Path.Combine(store.Layout.PartDir(msg), "prt_zzzzzzzzzzzzzzzzzzzzzzzzzz.json"), "{\"id\":\"prt_z\",\"id\":1}");
        var warnings = new List<string>();
        var uncached = new SessionStore(store.Layout, warn: warnings.Add, readCacheBytes: 0);
        Assert.Equal(await ExportAsync(store, r.SessionID), await ExportAsync(uncached, r.SessionID));
        Assert.Contains(warnings, w => w.Contains("prt_zzzzzzzzzzzzzzzzzzzzzzzzzz.json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Export_Sanitize_IsByteForByteOpenCodesSanitizedFixture()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, ExportFixture("http-session-2user-msgs.json"), FixtureProject);
        string ours = await ExportAsync(store, r.SessionID, new ExportOptions(Sanitize: true));
        Assert.Equal(await File.ReadAllTextAsync(ExportFixture("http-session-2user-msgs.sanitized.json")), ours);
    }

    [Fact]
    public async Task Export_Sanitize_EveryPartTypeAndField_IsWhatOpenCode11833Writes()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        // every-field.export.json is the real binary's export of that session, made in /tmp/tr-exp/proj (global project).
        var project = new ProjectInfo(ProjectInfo.GlobalId, "/", "/", null, "/tmp/tr-exp/proj");
        var r = await ImportFileAsync(store, Data("every-field.export.json"), project);
        Assert.Equal(await File.ReadAllTextAsync(Data("every-field.export.json")), (await ExportAsync(store, r.SessionID)));
        string sanitized = await ExportAsync(store, r.SessionID, new ExportOptions(Sanitize: true));
        Assert.Equal(await File.ReadAllTextAsync(Data("every-field.sanitized.json")), sanitized);
    }

    [Fact]
    public async Task Export_Sanitize_KeepsEmptyStringsAndEmptyRecords()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, Data("every-field.export.json"), FixtureProject);
        var doc = JsonNode.Parse(await ExportAsync(store, r.SessionID, new ExportOptions(Sanitize: true)))!;
        var parts = doc["messages"]![1]!["parts"]!.AsArray();
        var running = parts.First(p => (string?)p!["state"]?["status"] == "running")!;
        Assert.Equal("{}", running["state"]!["input"]!.ToJsonString());
        Assert.Equal("{}", running["state"]!["metadata"]!.ToJsonString());
        var empty = doc["messages"]![0]!["parts"]!.AsArray().First(p => (string?)p!["id"] == "prt_0000000000002AAAAAAAAAAAAA")!;
        Assert.Equal(string.Empty, (string?)empty["text"]);
    }

    [Fact]
    public async Task Export_MessagesByCreatedThenId_PartsById_WhateverTheFileOrder()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var doc = JsonNode.Parse(await File.ReadAllTextAsync(ExportFixture("fake-llm-session-with-tool.json")))!.AsObject();
        var msgs = doc["messages"]!.AsArray();
        var reversed = new JsonArray(msgs.Reverse().Select(m =>
        {
            var c = m!.DeepClone();
            c["parts"] = new JsonArray(c["parts"]!.AsArray().Reverse().Select(p => p!.DeepClone()).ToArray());
            return (JsonNode?)c;
        }).ToArray());
        doc["messages"] = reversed;
        var r = await SessionImporter.ImportJsonAsync(store, Encoding.UTF8.GetBytes(doc.ToJsonString()), "content", FixtureProject, ImportLimits.Default, CancellationToken.None);
        Assert.Equal(await File.ReadAllTextAsync(ExportFixture("fake-llm-session-with-tool.json")), (await ExportAsync(store, r.SessionID)));
        // The same order from parsed documents (a store without a read cache, as the CLI's).
        Assert.Equal(await File.ReadAllTextAsync(ExportFixture("fake-llm-session-with-tool.json")), await ExportAsync(new SessionStore(store.Layout, readCacheBytes: 0), r.SessionID));
    }

    [Fact]
    public async Task Export_Rpc_ReturnsContentAndFilename_SameBytesAsStream()
    {
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var r = await ImportFileAsync(server.Server.Context.Store, ExportFixture("fake-llm-session-with-tool.json"), FixtureProject);
        var json = await server.CallAsync(Methods.SessionExport, new { sessionID = r.SessionID, format = "json" });
        Assert.Equal(await File.ReadAllTextAsync(ExportFixture("fake-llm-session-with-tool.json")), json.GetProperty("content").GetString());
        Assert.Equal($"{r.SessionID}.json", json.GetProperty("filename").GetString());
        var md = await server.CallAsync(Methods.SessionExport, new { sessionID = r.SessionID, format = "markdown" });
        Assert.Equal("session-ses_df5b.md", md.GetProperty("filename").GetString());
        Assert.StartsWith("# fake llm session\n\n**Session ID:** ses_df5b97920ffeUFbu7k46fCazeu\n", md.GetProperty("content").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_Rpc_UnknownSession_IsSessionNotFound()
    {
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionExport, new { sessionID = "ses_nonexistent" });
        Assert.Equal(ErrorCodes.SessionNotFound, err.Code);
        Assert.Equal("Session not found: ses_nonexistent", err.Message);
        var bad = await server.ErrorAsync(Methods.SessionExport, new { sessionID = "ses_nonexistent", format = "pdf" });
        Assert.Equal(ErrorCodes.InvalidParams, bad.Code);
        Assert.Equal("format", bad.Field);
    }
}
