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

    private static string? Id(JsonElement p, string key) =>
        p.TryGetProperty(key, out var o) && o.TryGetProperty("id", out var id) ? id.GetString() : null;
}
