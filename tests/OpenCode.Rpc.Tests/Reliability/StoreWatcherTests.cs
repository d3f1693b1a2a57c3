using System.Text.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>Two sidecars on one data dir (two editor windows): each tells its client about the other's writes.</summary>
public sealed class StoreWatcherTests(ITestOutputHelper output)
{
    [Fact]
    public async Task SecondSidecar_IsNotifiedOfTheFirstsWrites_AndNoOneHearsTheirOwnTwice()
    {
        using var dirs = new TestDirs();
        await using var a = await ProcessServer.StartAsync(dirs, output);
        await using var b = await ProcessServer.StartAsync(dirs, output);

        var session = await Conversation.NewSessionAsync(a, "shared");
        var info = await a.CallAsync(Methods.MessageUpdate, new { info = Build.Json(Build.User(session, 1_700_000_000_000)) });
        string message = info.GetProperty("id").GetString()!;

        await b.WaitForNotificationAsync(Notifications.SessionUpdated, p => Id(p, "info") == session);
        var seen = await b.WaitForNotificationAsync(Notifications.MessageUpdated, p => Id(p, "info") == message);
        Assert.Equal(session, seen.GetProperty("info").GetProperty("sessionID").GetString());

        var part = await b.CallAsync(Methods.PartUpdate, new { part = Build.Json(Build.Text(session, message, "from b")) });
        string partId = part.GetProperty("id").GetString()!;
        var heard = await a.WaitForNotificationAsync(Notifications.MessagePartUpdated, p => Id(p, "part") == partId);
        Assert.Equal("from b", heard.GetProperty("part").GetProperty("text").GetString());

        // A's watcher has drained its own earlier file events by now (B's later write reached A): A heard its own
        // message once (from its own request), not again from the file watcher; likewise B its part.
        Assert.Single(a.Notifications, n => n.Method == Notifications.MessageUpdated && Id(n.Params, "info") == message);
        await b.CallAsync(Methods.SessionList);
        await a.CallAsync(Methods.SessionUpdate, new { sessionID = session, title = "renamed by a" });
        await b.WaitForNotificationAsync(Notifications.SessionUpdated, p => p.GetProperty("info").GetProperty("title").GetString() == "renamed by a");
        Assert.Single(b.Notifications, n => n.Method == Notifications.MessagePartUpdated && Id(n.Params, "part") == partId);

        // A fork bulk-writes its messages without store events: B hears them through its watcher, A (the writer) does not.
        var fork = await a.CallAsync(Methods.SessionFork, new { sessionID = session });
        string fid = fork.GetProperty("id").GetString()!;
        await b.WaitForNotificationAsync(Notifications.MessageUpdated, p => p.GetProperty("info").GetProperty("sessionID").GetString() == fid);
        var later = await b.CallAsync(Methods.PartUpdate, new { part = Build.Json(Build.Text(session, message, "later")) });
        string laterId = later.GetProperty("id").GetString()!;
        await a.WaitForNotificationAsync(Notifications.MessagePartUpdated, p => Id(p, "part") == laterId);
        Assert.DoesNotContain(a.Notifications, n => n.Method == Notifications.MessageUpdated && n.Params.GetProperty("info").GetProperty("sessionID").GetString() == fid);
    }

    [Fact]
    public async Task Search_FindsTextTheOtherWindowStreamsIntoAnExistingPart()
    {
        using var dirs = new TestDirs();
        await using var a = await ProcessServer.StartAsync(dirs, output);
        await using var b = await ProcessServer.StartAsync(dirs, output);
        var session = await Conversation.NewSessionAsync(a, "shared");
        string message = (await a.CallAsync(Methods.MessageUpdate, new { info = Build.Json(Build.User(session, 1_700_000_000_000)) })).GetProperty("id").GetString()!;
        var text = Build.Text(session, message, "first draft");
        string partId = (await a.CallAsync(Methods.PartUpdate, new { part = Build.Json(text) })).GetProperty("id").GetString()!;
        await b.WaitForNotificationAsync(Notifications.MessagePartUpdated, p => Id(p, "part") == partId);

        // B's search keeps the session's text once its message folder has been still for a while (2 s); a part
        // rewritten later changes only the part's own folder.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Single((await b.CallAsync(Methods.SessionSearch, new { query = "first draft" })).EnumerateArray());
        Assert.Single((await b.CallAsync(Methods.SessionSearch, new { query = "first draft" })).EnumerateArray());

        // A (the other window) streams more text into the same part.
        text["id"] = partId;
        text["text"] = "first draft, then the zebra-quokka conclusion";
        await a.CallAsync(Methods.PartUpdate, new { part = Build.Json(text) });
        await b.WaitForNotificationAsync(Notifications.MessagePartUpdated, p => Id(p, "part") == partId && p.GetProperty("part").GetProperty("text").GetString()!.Contains("zebra", StringComparison.Ordinal));
        var hit = Assert.Single((await b.CallAsync(Methods.SessionSearch, new { query = "zebra-quokka" })).EnumerateArray());
        Assert.Equal(partId, hit.GetProperty("partID").GetString());
    }

    private static string? Id(JsonElement p, string key) =>
        p.TryGetProperty(key, out var o) && o.TryGetProperty("id", out var id) ? id.GetString() : null;
}
