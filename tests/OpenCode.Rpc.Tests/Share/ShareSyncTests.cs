using System.Net;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Share.ShareTestKit;
using static OpenCode.Rpc.Tests.Transfer.TransferTestKit;

namespace OpenCode.Rpc.Tests.Share;

/// <summary>Our client against our share server, everything on 127.0.0.1.</summary>
public sealed class ShareSyncTests
{
    [Fact]
    public async Task Share_EditThenSync_ImportOfTheLinkEqualsTheExport()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        WriteConfig(dirs, server.BaseUrl);
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s, "shared one");
        await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "hello <b>there</b>", "Here:\n```js\nconsole.log(1)\n```");

        var shared = await s.CallAsync(Methods.SessionShare, new { sessionID = sid });
        string url = shared.GetProperty("share").GetProperty("url").GetString()!;
        string shareId = sid[^8..];
        Assert.Equal($"{server.BaseUrl}/share/{shareId}", url);
        var record = JsonNode.Parse(await File.ReadAllTextAsync(new StoreLayout(dirs.DataDir).SessionShareFile(sid)))!.AsObject();
        Assert.Equal(["id", "secret", "url"], record.Select(k => k.Key));
        Assert.Equal(shareId, (string?)record["id"]);
        Assert.Equal(url, (string?)record["url"]);

        // Edits after sharing: a new turn, a tool call, a rename.
        var (u2, a2) = await Conversation.TurnAsync(s, sid, 1_700_000_010_000, "second ask", "second answer");
        await Conversation.AddAsync(s, Build.Assistant(sid, u2, 1_700_000_020_000), Build.Tool(sid, "", "read", "file contents"));
        await s.CallAsync(Methods.SessionUpdate, new { sessionID = sid, title = "renamed after share" });
        var share = s.Server.Context.Share;
        await WaitUntilAsync(() => share.Pending(sid) == 0, "the queue drains");

        var data = (await DataAsync(server.BaseUrl, shareId))!;
        var keys = data.Select(i => ServerKey(i!.AsObject())).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys); // sorted by key, as OpenCode's server returns it
        Assert.Equal("renamed after share", (string?)data.Single(i => (string?)i!["type"] == "session")!["data"]!["title"]);

        // The user messages' model, as OpenCode's provider record (a share page shows its name, limits and cost).
        var userModel = JsonNode.Parse(File.ReadAllText(new StoreLayout(dirs.DataDir).MessageFile(sid, u2)))!["model"]!;
        var model = data.Single(i => (string?)i!["type"] == "model")!["data"]!.AsArray().Single()!.AsObject();
        Assert.Equal((string?)userModel["providerID"], (string?)model["providerID"]);
        Assert.Equal((string?)userModel["modelID"], (string?)model["id"]);
        Assert.Equal(["id", "api", "status", "name", "providerID", "capabilities", "cost", "options", "limit", "headers", "family", "release_date", "variants"], model.Select(kv => kv.Key));

        // Read back through the CLI into another data dir, and compare with our export.
        using var other = new TestDirs();
        var imp = await ProcessServer.RunCliAsync(["import", url, "--data-dir", other.DataDir, "--directory", other.ProjectDir, "--config-dir", other.ConfigDir], other.ProjectDir);
        Assert.True(imp.Code == 0, imp.Stderr);
        string ours = await ExportAsync(s.Server.Context.Store, sid);
        string theirs = await ExportAsync(NewStore(other), sid);
        SameContent(Normalize(ours), Normalize(theirs));
        Assert.Contains(a2, theirs);
    }

    [Fact]
    public async Task Unshare_ThenTheDataAnswers404_AndTheRecordIsGone()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        WriteConfig(dirs, server.BaseUrl);
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "a", "b");
        await s.CallAsync(Methods.SessionShare, new { sessionID = sid });
        string shareId = sid[^8..];
        Assert.NotNull(await DataAsync(server.BaseUrl, shareId));

        var after = await s.CallAsync(Methods.SessionUnshare, new { sessionID = sid });
        Assert.False(after.TryGetProperty("share", out _));
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{shareId}/data")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/share/{shareId}")).Status);
        Assert.False(File.Exists(new StoreLayout(dirs.DataDir).SessionShareFile(sid)));
        Assert.False(File.Exists(s.Server.Context.Share.QueueFile(sid)));
        Assert.False(s.Server.Context.Store.GetSession(sid).ContainsKey("share"));

        var again = await s.ErrorAsync(Methods.SessionUnshare, new { sessionID = sid });
        Assert.Equal(ErrorCodes.ShareNotFound, again.Code);
    }

    [Fact]
    public async Task Unshare_ImportedSessionWithItsRecord_DeletesOnTheServer()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        WriteConfig(dirs, server.BaseUrl);
        string sid;
        string shareId;
        await using (var s = await InProcServer.StartAsync(dirs))
        {
            sid = await Conversation.NewSessionAsync(s);
            await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "a", "b");
            await s.CallAsync(Methods.SessionShare, new { sessionID = sid });
            shareId = sid[^8..];
        }

        // Another data dir holds the session (imported) and the record (as OpenCode keeps it), nothing else of ours.
        using var other = new TestDirs();
        WriteConfig(other, server.BaseUrl);
        var imp = await ProcessServer.RunCliAsync(["import", $"{server.BaseUrl}/share/{shareId}", "--data-dir", other.DataDir, "--directory", other.ProjectDir, "--config-dir", other.ConfigDir], other.ProjectDir);
        Assert.True(imp.Code == 0, imp.Stderr);
        string recordFile = new StoreLayout(other.DataDir).SessionShareFile(sid);
        Directory.CreateDirectory(Path.GetDirectoryName(recordFile)!);
        File.Copy(new StoreLayout(dirs.DataDir).SessionShareFile(sid), recordFile);

        await using var s2 = await InProcServer.StartAsync(other);
        await s2.CallAsync(Methods.SessionUnshare, new { sessionID = sid });
        Assert.Null(await DataAsync(server.BaseUrl, shareId));
        Assert.False(File.Exists(recordFile));
    }

    [Fact]
    public async Task Sync_WrongSecret_Is403AndChangesNothing()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        var (status, body) = await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", """{"sessionID":"ses_0000000000001AAAAAAAAAAAAA"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var created = JsonNode.Parse(body)!.AsObject();
        string id = (string)created["id"]!;
        Assert.Equal("AAAAAAAA", id);
        string good = $$$"""{"secret":"{{{created["secret"]}}}","data":[{"type":"session","data":{"id":"ses_0000000000001AAAAAAAAAAAAA","title":"one"}}]}""";
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share/{id}/sync", good)).Status);
        string before = (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{id}/data")).Body;

        string bad = """{"secret":"not-the-secret","data":[{"type":"session","data":{"id":"ses_0000000000001AAAAAAAAAAAAA","title":"hijacked"}}]}""";
        var r = await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share/{id}/sync", bad);
        Assert.Equal(HttpStatusCode.Forbidden, r.Status);
        Assert.Equal("wrong secret", (string?)JsonNode.Parse(r.Body)!["error"]);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Delete, $"{server.BaseUrl}/api/share/{id}", """{"secret":"nope"}""")).Status);
        Assert.Equal(before, (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{id}/data")).Body);
    }

    [Fact]
    public async Task ServerAndClientRestartMidSync_NothingIsLost()
    {
        using var dirs = new TestDirs();
        string serverData = Path.Combine(dirs.Root, "share-server");
        var server = await StartServerAsync(serverData);
        int port = PortOf(server.BaseUrl);
        string baseUrl = server.BaseUrl;
        WriteConfig(dirs, baseUrl);
        string sid;
        string queueFile;
        await using (var s = await InProcServer.StartAsync(dirs))
        {
            sid = await Conversation.NewSessionAsync(s);
            await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "before", "the outage");
            await s.CallAsync(Methods.SessionShare, new { sessionID = sid });
            queueFile = s.Server.Context.Share.QueueFile(sid);
            await server.DisposeAsync(); // the share server goes down

            await Conversation.TurnAsync(s, sid, 1_700_000_010_000, "during", "the outage");
            await s.CallAsync(Methods.SessionUpdate, new { sessionID = sid, title = "edited while down" });
            Assert.True(s.Server.Context.Share.Pending(sid) > 0);
            Assert.False(await s.Server.Context.Share.FlushAsync(CancellationToken.None)); // refused: still queued
        }

        // The client is gone too; its queue is on disk.
        var persisted = JsonNode.Parse(await File.ReadAllTextAsync(queueFile))!["items"]!.AsObject();
        Assert.Contains("session", persisted.Select(k => k.Key));

        await using var server2 = await StartServerAsync(serverData, port);
        await using var s2 = await InProcServer.StartAsync(dirs);
        await WaitUntilAsync(() => s2.Server.Context.Share.Pending(sid) == 0, "the restored queue drains");
        var data = (await DataAsync(baseUrl, sid[^8..]))!;
        Assert.Equal("edited while down", (string?)data.Single(i => (string?)i!["type"] == "session")!["data"]!["title"]);
        var texts = data.Where(i => (string?)i!["type"] == "part").Select(i => (string?)i!["data"]!["text"]).ToList();
        Assert.Contains("during", texts);
        Assert.Contains("the outage", texts);
        Assert.Equal(5, data.Count(i => (string?)i!["type"] is "message" or "session")); // session + 4 messages
    }

    [Fact]
    public async Task Share_WhenDisabled_FailsWithShareDisabled()
    {
        using var dirs = new TestDirs();
        WriteConfig(dirs, "http://127.0.0.1:9", "disabled");
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        var e = await s.ErrorAsync(Methods.SessionShare, new { sessionID = sid });
        Assert.Equal(ErrorCodes.ShareDisabled, e.Code);
        Assert.Contains("disabled", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(new StoreLayout(dirs.DataDir).SessionShareFile(sid)));
    }

    [Fact]
    public async Task Share_ServerUnreachable_FailsWithFetchFailedAndRecordsNothing()
    {
        using var dirs = new TestDirs();
        WriteConfig(dirs, $"http://127.0.0.1:{FreePort()}");
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        var e = await s.ErrorAsync(Methods.SessionShare, new { sessionID = sid });
        Assert.Equal(ErrorCodes.FetchFailed, e.Code);
        Assert.False(File.Exists(new StoreLayout(dirs.DataDir).SessionShareFile(sid)));
        Assert.False(s.Server.Context.Store.GetSession(sid).ContainsKey("share"));
    }

    [Fact]
    public async Task Share_AutoMode_SharesNewRootSessionsOnly()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        WriteConfig(dirs, server.BaseUrl, "auto");
        await using var s = await InProcServer.StartAsync(dirs);
        string root = await Conversation.NewSessionAsync(s);
        var child = await s.CallAsync(Methods.SessionCreate, new { title = "child", parentID = root });
        string childId = child.GetProperty("id").GetString()!;
        var layout = new StoreLayout(dirs.DataDir);
        await WaitUntilAsync(() => File.Exists(layout.SessionShareFile(root)) && s.Server.Context.Share.Pending(root) == 0, "the root session is shared");
        Assert.NotNull(await DataAsync(server.BaseUrl, root[^8..]));
        Assert.False(File.Exists(layout.SessionShareFile(childId)));
    }

    [Fact]
    public async Task Share_Sanitize_UploadsTheRedactedForm()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        WriteConfig(dirs, server.BaseUrl);
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s, "secret project title");
        await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "my password is hunter2", "ok");
        await s.CallAsync(Methods.SessionShare, new { sessionID = sid, sanitize = true });
        await Conversation.TurnAsync(s, sid, 1_700_000_010_000, "later secret", "ok2");
        await WaitUntilAsync(() => s.Server.Context.Share.Pending(sid) == 0, "the queue drains");
        string raw = (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{sid[^8..]}/data")).Body;
        Assert.DoesNotContain("hunter2", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("later secret", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("secret project title", raw, StringComparison.Ordinal);
        Assert.Contains("[redacted:", raw, StringComparison.Ordinal);

        // The same redaction as session/export's sanitize.
        string exported = (await s.CallAsync(Methods.SessionExport, new { sessionID = sid, sanitize = true })).GetProperty("content").GetString()!;
        using var other = new TestDirs();
        var imp = await ProcessServer.RunCliAsync(["import", $"{server.BaseUrl}/share/{sid[^8..]}", "--data-dir", other.DataDir, "--directory", other.ProjectDir, "--config-dir", other.ConfigDir], other.ProjectDir);
        Assert.True(imp.Code == 0, imp.Stderr);
        SameContent(Normalize(exported), Normalize(await ExportAsync(NewStore(other), sid)));
    }

    private static string ServerKey(JsonObject item) => OpenCode.Rpc.ShareServer.ShareServerStore.Key(item, out _)!;
}
