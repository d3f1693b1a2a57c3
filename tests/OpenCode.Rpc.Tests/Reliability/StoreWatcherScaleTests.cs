using System.Collections.Concurrent;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>A store with more part folders than the watcher's cap is watched shallowly in its part area: no inotify
/// watch per message folder, and what is still reported is what the warning says.</summary>
public sealed class StoreWatcherScaleTests
{
    [Fact]
    public async Task OverThePartFolderCap_SessionsMessagesAndNewMessagesPartsAreReported_ButNotPartsAddedToOldMessages()
    {
        using var dirs = new TestDirs();
        var store = new SessionStore(new StoreLayout(dirs.DataDir));
        store.Initialize();
        for (int i = 0; i < 5; i++)
        {
            Directory.CreateDirectory(store.Layout.PartDir($"msg_old{i}"));
        }

        var events = new ConcurrentQueue<StoreEvent>();
        var warnings = new ConcurrentQueue<string>();
        using var watcher = new StoreWatcher(store, events.Enqueue, warnings.Enqueue, TimeSpan.FromMilliseconds(20), maxPartFolders: 3);
        Assert.Contains(warnings, w => w.Contains("over 3 part folders", StringComparison.Ordinal));

        // Another process (no temp name of ours): a part into an old message, a message, and a new message's part.
        await File.WriteAllTextAsync(store.Layout.PartFile("msg_old1", "prt_a"), "{\"id\":\"prt_a\",\"sessionID\":\"ses_x\",\"messageID\":\"msg_old1\",\"type\":\"text\",\"text\":\"old\"}");
        Directory.CreateDirectory(store.Layout.MessageDir("ses_x"));
        await File.WriteAllTextAsync(store.Layout.MessageFile("ses_x", "msg_new"), "{\"id\":\"msg_new\",\"sessionID\":\"ses_x\",\"role\":\"user\",\"time\":{\"created\":1}}");
        Directory.CreateDirectory(store.Layout.PartDir("msg_new"));
        await File.WriteAllTextAsync(store.Layout.PartFile("msg_new", "prt_b"), "{\"id\":\"prt_b\",\"sessionID\":\"ses_x\",\"messageID\":\"msg_new\",\"type\":\"text\",\"text\":\"new\"}");

        await Poll.UntilAsync(() => Has(events, "msg_new") && Has(events, "prt_b"));
        Assert.True(Has(events, "msg_new"), "the message was not reported");
        Assert.True(Has(events, "prt_b"), "the new message's part was not reported");
        await Task.Delay(200); // past the debounce: a report of prt_a would be in by now
        Assert.False(Has(events, "prt_a"));
    }

    [Fact]
    public async Task UnderThePartFolderCap_APartAddedToAnOldMessageIsReported()
    {
        using var dirs = new TestDirs();
        var store = new SessionStore(new StoreLayout(dirs.DataDir));
        store.Initialize();
        Directory.CreateDirectory(store.Layout.PartDir("msg_old1"));
        var events = new ConcurrentQueue<StoreEvent>();
        var warnings = new ConcurrentQueue<string>();
        using var watcher = new StoreWatcher(store, events.Enqueue, warnings.Enqueue, TimeSpan.FromMilliseconds(20), maxPartFolders: 3);

        await File.WriteAllTextAsync(store.Layout.PartFile("msg_old1", "prt_a"), "{\"id\":\"prt_a\",\"sessionID\":\"ses_x\",\"messageID\":\"msg_old1\",\"type\":\"text\",\"text\":\"old\"}");
        Assert.True(await Poll.UntilAsync(() => Has(events, "prt_a")));
        Assert.Empty(warnings);
    }

    [Fact]
    public async Task AFileRewrittenInPlace_IsReportedWithItsLastContent_AndNothingAfterDispose()
    {
        // A read may catch a rewrite between its truncate and its write (a warning, when it is still so on the
        // second look); what matters is that the last content is reported.
        using var dirs = new TestDirs();
        var store = new SessionStore(new StoreLayout(dirs.DataDir));
        store.Initialize();
        Directory.CreateDirectory(store.Layout.PartDir("msg_a"));
        var events = new ConcurrentQueue<StoreEvent>();
        var warnings = new ConcurrentQueue<string>();
        var watcher = new StoreWatcher(store, events.Enqueue, warnings.Enqueue, TimeSpan.FromMilliseconds(20));

        // OpenCode writes in place (open, truncate, write, close), not by rename.
        string file = store.Layout.PartFile("msg_a", "prt_a");
        for (int i = 1; i <= 3; i++)
        {
            await File.WriteAllTextAsync(file, $"{{\"id\":\"prt_a\",\"sessionID\":\"ses_x\",\"messageID\":\"msg_a\",\"type\":\"text\",\"text\":\"v{i}\"}}");
        }

        Assert.True(await Poll.UntilAsync(() => events.Any(e => e.Properties["part"]?["text"]?.GetValue<string>() == "v3")));
        watcher.Dispose();
        await File.WriteAllTextAsync(store.Layout.PartFile("msg_a", "prt_b"), "{\"id\":\"prt_b\",\"sessionID\":\"ses_x\",\"messageID\":\"msg_a\",\"type\":\"text\",\"text\":\"late\"}");
        await Task.Delay(200);
        Assert.False(Has(events, "prt_b"));
    }

    [Fact]
    public async Task ThisProcesssOwnWrites_AreNotReportedByTheWatcher_ButAnotherWritersRenameIs()
    {
        using var dirs = new TestDirs();
        var store = new SessionStore(new StoreLayout(dirs.DataDir));
        store.Initialize();
        var events = new ConcurrentQueue<StoreEvent>();
        // A long debounce: the other writer's file lands in the message folder we just made long before the watcher
        // reads its queue, so it is heard only if that folder was watched as it was made.
        using var watcher = new StoreWatcher(store, events.Enqueue, _ => { }, TimeSpan.FromMilliseconds(400));
        var project = OpenCode.Rpc.Core.Projects.ProjectResolver.Resolve(dirs.ProjectDir);
        var session = await store.CreateSessionAsync(project, "mine", null, CancellationToken.None);
        string sid = session["id"]!.GetValue<string>();
        var message = await store.UpdateMessageAsync(new System.Text.Json.Nodes.JsonObject
        {
            ["sessionID"] = sid, ["role"] = "user", ["time"] = new System.Text.Json.Nodes.JsonObject { ["created"] = 1 }, ["agent"] = "build",
            ["model"] = new System.Text.Json.Nodes.JsonObject { ["providerID"] = "p", ["modelID"] = "m" },
        }, CancellationToken.None);
        string mid = message["id"]!.GetValue<string>();

        // Another writer's atomic replace: a temp name that is not ours, renamed over the target.
        string other = store.Layout.MessageFile(sid, "msg_other");
        await File.WriteAllTextAsync(other + ".99999999.x.tmp", $"{{\"id\":\"msg_other\",\"sessionID\":\"{sid}\",\"role\":\"user\",\"time\":{{\"created\":2}}}}");
        File.Move(other + ".99999999.x.tmp", other);
        Assert.True(await Poll.UntilAsync(() => Has(events, "msg_other")));
        await Task.Delay(500);
        Assert.False(Has(events, mid));
        Assert.False(Has(events, sid));
    }

    private static bool Has(IEnumerable<StoreEvent> events, string id) =>
        events.Any(e => (e.Properties["info"] ?? e.Properties["part"])?["id"]?.GetValue<string>() == id);
}
