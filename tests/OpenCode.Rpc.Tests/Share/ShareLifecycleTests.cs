using System.Net;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Share;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using OpenCode.Rpc.Tests.Revert;
using static OpenCode.Rpc.Tests.Share.ShareTestKit;

namespace OpenCode.Rpc.Tests.Share;

/// <summary>A shared session through the rest of its life: undone (the diff reaches the server) and deleted (the
/// share is deleted on the server, or the delete waits durably until the server is back). Our client against our
/// share server (Kestrel) on 127.0.0.1; config in the test's injected config dir.</summary>
public sealed class ShareLifecycleTests
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task UndoOfASharedSession_SendsTheNewSessionDiffToTheShareServer()
    {
        await using var h = await RevertHarness.StartAsync(true, p => File.WriteAllText(Path.Combine(p, "a.txt"), "alpha\n"));
        await using var server = await StartServerAsync(Path.Combine(h.Dirs.Root, "share-server"));
        WriteConfigFile(h.ConfigDir, "opencode.json", server.BaseUrl);
        var (user1, _, _) = await h.TurnAsync("first", () => File.WriteAllText(h.P("a.txt"), "alpha, edited once\n"));
        var (user2, _, _) = await h.TurnAsync("second", () => File.WriteAllText(h.P("b.txt"), "a new file\nwith two lines\n"));
        string sid = h.SessionId;
        string shareId = sid[^8..];
        await h.Client.CallAsync(Methods.SessionShare, new { sessionID = sid });
        var share = ((InProcServer)h.Client).Server.Context.Share;
        await WaitUntilAsync(() => share.Pending(sid) == 0, "the full sync drains");
        var before = Diff(await DataAsync(server.BaseUrl, shareId));

        await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = sid }); // undoes the second turn
        Assert.False(File.Exists(h.P("b.txt")));
        string stored = await File.ReadAllTextAsync(new StoreLayout(h.Dirs.DataDir).SessionDiffFile(sid));
        var expected = JsonNode.Parse(stored)!.AsArray();
        Assert.Contains(expected, d => ((string?)d!["file"])!.EndsWith("b.txt", StringComparison.Ordinal));
        await WaitUntilAsync(() => share.Pending(sid) == 0, "the undo's items drain");

        var data = await DataAsync(server.BaseUrl, shareId);
        var after = Diff(data);
        Assert.True(JsonNode.DeepEquals(expected, after), $"the server holds {after?.ToJsonString()}, the store {stored}");
        Assert.False(JsonNode.DeepEquals(before, after));
        // The revert marker went too, so a reader of the share sees the session as undone.
        var session = data!.Single(i => (string?)i!["type"] == "session")!["data"]!;
        Assert.Equal(user2, (string?)session["revert"]?["messageID"]);
        _ = user1;
    }

    [Fact]
    public async Task DeleteOfASharedSession_DeletesTheShareOnTheServer()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "share-server"));
        WriteConfig(dirs, server.BaseUrl);
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s, "shared then deleted");
        await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "a", "b");
        await s.CallAsync(Methods.SessionShare, new { sessionID = sid });
        var share = s.Server.Context.Share;
        await WaitUntilAsync(() => share.Pending(sid) == 0, "the full sync drains");
        Assert.NotNull(await DataAsync(server.BaseUrl, sid[^8..]));

        await s.CallAsync(Methods.SessionDelete, new { sessionID = sid });

        await WaitUntilAsync(() => share.PendingDeletes == 0, "the share delete is sent");
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{sid[^8..]}/data")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/share/{sid[^8..]}")).Status);
        var layout = new StoreLayout(dirs.DataDir);
        Assert.False(File.Exists(layout.SessionShareFile(sid)));
        Assert.False(File.Exists(layout.ShareDeleteFile(sid)));
        Assert.Contains(s.Log, l => l.Contains($"deleted the share {sid[^8..]} of deleted session {sid}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DeleteOfASharedSession_ServerDown_TheDeleteWaitsOnDisk_AndIsSentWhenTheServerIsBack()
    {
        using var dirs = new TestDirs();
        string serverData = Path.Combine(dirs.Root, "share-server");
        var server = await StartServerAsync(serverData);
        int port = PortOf(server.BaseUrl);
        string baseUrl = server.BaseUrl;
        WriteConfig(dirs, baseUrl);
        string sid;
        var layout = new StoreLayout(dirs.DataDir);
        await using (var s = await InProcServer.StartAsync(dirs))
        {
            sid = await Conversation.NewSessionAsync(s);
            await Conversation.TurnAsync(s, sid, 1_700_000_000_000, "a", "b");
            await s.CallAsync(Methods.SessionShare, new { sessionID = sid });
            await WaitUntilAsync(() => s.Server.Context.Share.Pending(sid) == 0, "the full sync drains");
            await server.DisposeAsync(); // the share server goes down

            await s.CallAsync(Methods.SessionDelete, new { sessionID = sid });
            Assert.Equal(1, s.Server.Context.Share.PendingDeletes);
            // The first attempt failed: the record (with its secret) waits on disk, pinned to the server it came from.
            await WaitUntilAsync(() => s.Log.Any(l => l.Contains($"could not delete the share {sid[^8..]} of deleted session {sid}", StringComparison.Ordinal) && l.Contains("it stays queued", StringComparison.Ordinal)), "a failed attempt");
        }

        var queued = JsonNode.Parse(await File.ReadAllTextAsync(layout.ShareDeleteFile(sid)))!.AsObject();
        Assert.Equal(sid[^8..], (string?)queued["id"]);
        Assert.Equal(baseUrl, (string?)queued["baseUrl"]);
        Assert.False(string.IsNullOrEmpty((string?)queued["secret"]));

        // Both come back (a new sidecar: the queue survived the restart).
        await using var server2 = await StartServerAsync(serverData, port);
        Assert.NotNull(await DataAsync(baseUrl, sid[^8..])); // still public until the delete arrives
        await using var s2 = await InProcServer.StartAsync(dirs);
        await WaitUntilAsync(() => s2.Server.Context.Share.PendingDeletes == 0, "the queued delete is sent");
        Assert.Null(await DataAsync(baseUrl, sid[^8..]));
        Assert.False(File.Exists(layout.ShareDeleteFile(sid)));
    }

    [Fact]
    public async Task CliSessionDelete_OfASharedSession_DeletesTheShare_OrQueuesItWhenTheServerIsDown()
    {
        using var dirs = new TestDirs();
        string serverData = Path.Combine(dirs.Root, "share-server");
        var server = await StartServerAsync(serverData);
        string baseUrl = server.BaseUrl;
        WriteConfig(dirs, baseUrl);
        string up, down;
        await using (var s = await InProcServer.StartAsync(dirs))
        {
            up = await Conversation.NewSessionAsync(s, "deleted while the server is up");
            down = await Conversation.NewSessionAsync(s, "deleted while the server is down");
            foreach (var id in new[] { up, down })
            {
                await Conversation.TurnAsync(s, id, 1_700_000_000_000, "a", "b");
                await s.CallAsync(Methods.SessionShare, new { sessionID = id });
                await WaitUntilAsync(() => s.Server.Context.Share.Pending(id) == 0, "the full sync drains");
            }
        }

        string[] cli(string id) => ["session", "delete", id, "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir, "--config-dir", dirs.ConfigDir];
        var r1 = await ProcessServer.RunCliAsync(cli(up));
        Assert.True(r1.Code == 0, r1.Stderr);
        Assert.Equal($"Session {up} deleted\n", r1.Stdout);
        Assert.Null(await DataAsync(baseUrl, up[^8..]));

        await server.DisposeAsync();
        var r2 = await ProcessServer.RunCliAsync(cli(down));
        Assert.True(r2.Code == 0, r2.Stderr); // the session is deleted; only its share waits
        Assert.Contains("the delete is queued", r2.Stderr, StringComparison.Ordinal);
        var layout = new StoreLayout(dirs.DataDir);
        Assert.True(File.Exists(layout.ShareDeleteFile(down)));

        await using var server2 = await StartServerAsync(serverData, PortOf(baseUrl));
        await using var sidecar = await InProcServer.StartAsync(dirs);
        await WaitUntilAsync(() => sidecar.Server.Context.Share.PendingDeletes == 0, "the sidecar sends the queued delete");
        Assert.Null(await DataAsync(baseUrl, down[^8..]));
    }

    /// <summary>share mode and enterprise.url come from the injected global config dir and the project's files,
    /// merged as OpenCode 1.1.65 merges them; the real home is never read.</summary>
    [Fact]
    public void ShareSettings_ReadTheInjectedConfigDir_ThenTheProject_ThenItsDotOpencodeFolders()
    {
        using var dirs = new TestDirs(git: true);
        var loc = new ConfigLocations(dirs.ConfigDir);
        string sub = Path.Combine(dirs.ProjectDir, "sub");
        Directory.CreateDirectory(sub);
        Assert.Equal((OpenCodeConfig.DefaultShareBaseUrl, ShareMode.Manual), Where(ShareSettings.Read(new ConfigLocations(Path.Combine(dirs.Root, "none")), sub, dirs.ProjectDir)));

        WriteConfigFile(dirs.ConfigDir, "opencode.json", "https://global.test/", "auto");
        Assert.Equal(("https://global.test", ShareMode.Auto), Where(ShareSettings.Read(loc, sub, dirs.ProjectDir)));

        // Project files: every opencode.jsonc (root down), then every opencode.json: a root .json beats a sub .jsonc.
        WriteConfigFile(sub, "opencode.jsonc", "https://sub-jsonc.test");
        WriteConfigFile(dirs.ProjectDir, "opencode.json", "https://root-json.test", "disabled");
        Assert.Equal(("https://root-json.test", ShareMode.Disabled), Where(ShareSettings.Read(loc, sub, dirs.ProjectDir)));

        // .opencode folders come last, from the directory up: an outer one beats an inner one.
        WriteConfigFile(Path.Combine(sub, ".opencode"), "opencode.json", "https://inner-dot.test", "manual");
        Assert.Equal(("https://inner-dot.test", ShareMode.Manual), Where(ShareSettings.Read(loc, sub, dirs.ProjectDir)));
        WriteConfigFile(Path.Combine(dirs.ProjectDir, ".opencode"), "opencode.jsonc", "https://outer-dot.test");
        Assert.Equal(("https://outer-dot.test", ShareMode.Manual), Where(ShareSettings.Read(loc, sub, dirs.ProjectDir)));

        // The deprecated autoshare: true, when share is not set.
        File.WriteAllText(Path.Combine(dirs.ConfigDir, "opencode.json"), """{ "autoshare": true }""");
        foreach (var f in new[] { Path.Combine(sub, "opencode.jsonc"), Path.Combine(dirs.ProjectDir, "opencode.json"), Path.Combine(sub, ".opencode", "opencode.json"), Path.Combine(dirs.ProjectDir, ".opencode", "opencode.jsonc") })
        {
            File.Delete(f);
        }

        Assert.Equal((OpenCodeConfig.DefaultShareBaseUrl, ShareMode.Auto), Where(ShareSettings.Read(loc, sub, dirs.ProjectDir)));
    }

    private static JsonArray? Diff(JsonArray? data) =>
        data?.SingleOrDefault(i => (string?)i!["type"] == "session_diff")?["data"] as JsonArray;

    // Where sharing goes and whether it may: the settings' meaning (they also carry the config they came from).
    private static (string BaseUrl, ShareMode Mode) Where(ShareSettings s) => (s.BaseUrl, s.Mode);
}
