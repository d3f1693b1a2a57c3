using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;

namespace OpenCode.Rpc.Tests.Store;

public sealed class SessionStoreTests
{
    private static string Id(JsonObject o) => (string)o["id"]!;

    private static async Task<(string Session, string User, string Assistant)> ConversationAsync(StoreHarness h, JsonObject session, long t = 1795468724363)
    {
        string sid = Id(session);
        var user = await h.Store.UpdateMessageAsync(Samples.User(sid, t), default);
        await h.Store.UpdatePartAsync(Samples.Text(sid, Id(user), "hi"), null, default);
        var asst = await h.Store.UpdateMessageAsync(Samples.Assistant(sid, Id(user), t + 10, h.Dirs.ProjectDir), default);
        await h.Store.UpdatePartAsync(Samples.StepStart(sid, Id(asst)), null, default);
        await h.Store.UpdatePartAsync(Samples.Text(sid, Id(asst), "hello"), null, default);
        return (sid, Id(user), Id(asst));
    }

    [Fact]
    public async Task CreateSession_WritesOpenCodeShape_InTheProjectFolder()
    {
        using var h = new StoreHarness(git: true);
        var s = await h.Store.CreateSessionAsync(h.Project, null, null, default);
        string file = h.Store.Layout.SessionFile(h.Project.Id, Id(s));
        var onDisk = Samples.ReadJson(file);
        Assert.Equal(["id", "slug", "version", "projectID", "directory", "title", "time"], onDisk.Select(kv => kv.Key));
        Assert.Matches("^New session - \\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$", (string)onDisk["title"]!);
        Assert.Equal(h.Project.Id, (string)onDisk["projectID"]!);
        Assert.Equal(JsJson.ToBytes(onDisk), File.ReadAllBytes(file));
        Assert.True(File.Exists(h.Store.Layout.ProjectFile(h.Project.Id)));
    }

    [Fact]
    public async Task UnknownFields_SurviveUpdateAndRead_InTheirOriginalPosition()
    {
        using var h = new StoreHarness();
        Samples.CopyDirectory(Samples.FixtureStorage, h.Dirs.Storage);
        string sessionFile = Path.Combine(h.Dirs.Storage, "session", Samples.FixtureProjectId, Samples.FixtureSessionId + ".json");
        string before = File.ReadAllText(sessionFile);

        await h.Store.UpdateSessionInfoAsync(Samples.FixtureSessionId, "renamed", null, default);
        string after = File.ReadAllText(sessionFile);
        Assert.Equal(before.Replace("\"title\": \"fake llm session\"", "\"title\": \"renamed\"", StringComparison.Ordinal), after);

        await h.Store.UpdateSessionInfoAsync(Samples.FixtureSessionId, "fake llm session", null, default);
        Assert.Equal(before, File.ReadAllText(sessionFile));
        Assert.Equal(before, JsJson.ToText(h.Store.GetSession(Samples.FixtureSessionId)));

        // A message and a part carrying fields we do not model keep them, in place.
        string sid = Samples.FixtureSessionId;
        var user = Samples.User(sid, 1795468724999, "msg_20a46888a0018K6l9r3xDvhyZZ");
        var extended = new JsonObject();
        foreach (var (k, v) in user)
        {
            extended[k] = v?.DeepClone();
            if (k == "role")
            {
                extended["futureField"] = new JsonObject { ["nested"] = new JsonArray(1, "two", null), ["z"] = 1.5e-7 };
            }
        }

        extended["variant"] = "high";
        await h.Store.UpdateMessageAsync((JsonObject)extended.DeepClone(), default);
        string msgFile = h.Store.Layout.MessageFile(sid, "msg_20a46888a0018K6l9r3xDvhyZZ");
        Assert.Equal(JsJson.ToText(extended), File.ReadAllText(msgFile));
        Samples.AssertSameJson(extended, h.Store.GetMessage(sid, "msg_20a46888a0018K6l9r3xDvhyZZ").Info);

        var part = Samples.Text(sid, "msg_20a46888a0018K6l9r3xDvhyZZ", "x", "prt_20a46888a0018K6l9r3xDvhyZZ");
        part.Insert(3, "aNewThing", new JsonObject { ["k"] = true });
        part["metadata"] = new JsonObject { ["openai"] = new JsonObject { ["itemId"] = "abc" } };
        await h.Store.UpdatePartAsync((JsonObject)part.DeepClone(), null, default);
        Samples.AssertSameJson(part, h.Store.GetMessage(sid, "msg_20a46888a0018K6l9r3xDvhyZZ").Parts.Single());
        Assert.Equal(JsJson.ToText(part), File.ReadAllText(h.Store.Layout.PartFile("msg_20a46888a0018K6l9r3xDvhyZZ", "prt_20a46888a0018K6l9r3xDvhyZZ")));
    }

    [Fact]
    public async Task List_FiltersAndOrdersByTimeUpdatedDescending()
    {
        var clock = new ManualTime(1_795_000_000_000);
        using var h = new StoreHarness(time: clock);
        var a = await h.Store.CreateSessionAsync(h.Project, "Alpha build", null, default);
        clock.Ms += 3000;
        var b = await h.Store.CreateSessionAsync(h.Project, "beta", null, default);
        clock.Ms += 1000;
        var c = await h.Store.CreateSessionAsync(h.Project, "ALPHA tests", null, default);
        clock.Ms += 1000;
        var child = await h.Store.CreateSessionAsync(h.Project, "child of alpha", Id(a), default);
        clock.Ms += 1000;
        var archived = await h.Store.CreateSessionAsync(h.Project, "old alpha", null, default);
        await h.Store.UpdateSessionInfoAsync(Id(archived), null, true, default);

        string[] Ids(SessionListQuery q) => h.Store.ListSessions(h.Project.Id, q).Select(Id).ToArray();

        Assert.Equal([Id(child), Id(c), Id(b), Id(a)], Ids(new SessionListQuery()));
        Assert.Equal([Id(archived), Id(child), Id(c), Id(b), Id(a)], Ids(new SessionListQuery(IncludeArchived: true)));
        Assert.Equal([Id(c), Id(b), Id(a)], Ids(new SessionListQuery(Roots: true)));
        Assert.Equal([Id(child), Id(c), Id(a)], Ids(new SessionListQuery(Search: "alpha")));
        Assert.Equal([Id(archived), Id(child), Id(c), Id(a)], Ids(new SessionListQuery(Search: "ALPHA", IncludeArchived: true)));
        Assert.Equal([Id(child), Id(c)], Ids(new SessionListQuery(Limit: 2)));
        Assert.Equal([Id(child), Id(c), Id(b)], Ids(new SessionListQuery(Start: 1_795_000_003_000)));
        Assert.Empty(Ids(new SessionListQuery(Search: "nothing matches")));

        // A new message moves the session to the top.
        clock.Ms += 1000;
        await h.Store.UpdateMessageAsync(Samples.User(Id(a), clock.Ms), default);
        Assert.Equal(Id(a), Ids(new SessionListQuery())[0]);

        // Unarchive brings it back.
        await h.Store.UpdateSessionInfoAsync(Id(archived), null, false, default);
        Assert.Contains(Id(archived), Ids(new SessionListQuery()));
        Assert.Null(h.Store.GetSession(Id(archived))["time"]!["archived"]);

        // Another project's sessions are not listed.
        Assert.DoesNotContain(Id(a), h.Store.ListSessions("cafe00", new SessionListQuery()).Select(Id));
    }

    [Fact]
    public async Task List_SeesSessionsWrittenByAnotherProcess()
    {
        using var h = new StoreHarness();
        var first = await h.Store.CreateSessionAsync(h.Project, "one", null, default);
        Assert.Single(h.Store.ListSessions(h.Project.Id, new SessionListQuery()));
        var other = h.NewStore();
        var second = await other.CreateSessionAsync(h.Project, "two", null, default);
        await other.UpdateSessionInfoAsync(Id(first), "one renamed", null, default);
        var listed = h.Store.ListSessions(h.Project.Id, new SessionListQuery());
        Assert.Equal(2, listed.Count);
        Assert.Contains(listed, s => Id(s) == Id(second));
        Assert.Equal("one renamed", (string)listed.Single(s => Id(s) == Id(first))["title"]!);
        await other.DeleteSessionAsync(Id(second), default);
        Assert.Single(h.Store.ListSessions(h.Project.Id, new SessionListQuery()));
    }

    [Fact]
    public async Task ChildSession_WhoseParentIsInAnotherProject_IsRefusedNamingParentID_AndNothingIsWritten()
    {
        using var h = new StoreHarness();
        var parent = await h.Store.CreateSessionAsync(h.Project, "parent", null, default);
        string other = Path.Combine(h.Dirs.Root, "other-project");
        Directory.CreateDirectory(other);
        var otherProject = new OpenCode.Rpc.Core.Projects.ProjectInfo("0123456789abcdef0123456789abcdef01234567", other, other, "git", other);
        var ex = await Assert.ThrowsAsync<InvalidInputException>(() => h.Store.CreateSessionAsync(otherProject, "child", Id(parent), default));
        Assert.Equal("parentID", ex.Field);
        Assert.Contains(h.Project.Id, ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(h.Store.Layout.SessionDir(otherProject.Id)));
        Assert.False(File.Exists(h.Store.Layout.ProjectFile(otherProject.Id)));
        Assert.Empty(h.Store.Children(Id(parent)));
    }

    [Fact]
    public async Task EncodedList_IsTheListSerialized_AndFollowsChangesFromAnyWriter()
    {
        using var h = new StoreHarness();
        var a = await h.Store.CreateSessionAsync(h.Project, "caf\u00e9 <a> & \"b\"", null, default);
        var b = await h.Store.CreateSessionAsync(h.Project, "two", null, default);

        void AssertSame()
        {
            var q = new SessionListQuery(IncludeArchived: true);
            var objects = h.Store.ListSessions(h.Project.Id, q);
            var encoded = h.Store.ListSessionsUtf8(h.Project.Id, q);
            Assert.Equal(objects.Select(o => o.ToJsonString()), encoded.Select(e => Encoding.UTF8.GetString(e.Span)));
        }

        AssertSame();
        await h.Store.UpdateSessionInfoAsync(Id(a), "renamed", null, default);
        AssertSame();
        Assert.Contains("renamed", Encoding.UTF8.GetString(h.Store.ListSessionsUtf8(h.Project.Id, new SessionListQuery()).Select(e => e.ToArray()).SelectMany(x => x).ToArray()), StringComparison.Ordinal);

        // Another process's write, seen through the folder's mtime, replaces the cached encoding too.
        await h.NewStore().UpdateSessionInfoAsync(Id(b), "renamed elsewhere", null, default);
        AssertSame();
        Assert.Contains(h.Store.ListSessionsUtf8(h.Project.Id, new SessionListQuery()), e => Encoding.UTF8.GetString(e.Span).Contains("renamed elsewhere", StringComparison.Ordinal));
    }

    public static TheoryData<string, byte[]> BadContents() => new()
    {
        { "corrupt", Encoding.UTF8.GetBytes("{\"id\": \"ses_x\", ") },
        { "empty", [] },
        { "binary", [0x00, 0xFF, 0xFE, 0x01, 0x80, 0x7F, 0xC3, 0x28] },
        { "array", Encoding.UTF8.GetBytes("[1,2]") },
        { "bad-utf8", [.. "{\"id\":\"ses_00000000000000000000000000\",\"title\":\""u8, 0xFF, 0xC3, 0x28, .. "\",\"time\":{\"created\":1,\"updated\":1}}"u8] },
    };

    [Theory]
    [MemberData(nameof(BadContents))]
    public async Task UnreadableSessionMessageOrPartFile_IsSkippedWithAWarningNamingIt_AndEverythingElseWorks(string kind, byte[] bytes)
    {
        using var h = new StoreHarness();
        var good = await h.Store.CreateSessionAsync(h.Project, "good " + kind, null, default);
        var (sid, user, asst) = await ConversationAsync(h, good);

        string badSession = Path.Combine(h.Store.Layout.SessionDir(h.Project.Id), "ses_00000000000000000000000000.json");
        string badMessage = h.Store.Layout.MessageFile(sid, "msg_000000000001AAAAAAAAAAAAAA");
        string badPart = h.Store.Layout.PartFile(asst, "prt_000000000001AAAAAAAAAAAAAA");
        File.WriteAllBytes(badSession, bytes);
        File.WriteAllBytes(badMessage, bytes);
        File.WriteAllBytes(badPart, bytes);

        var fresh = h.NewStore();
        Assert.Equal([sid], fresh.ListSessions(h.Project.Id, new SessionListQuery()).Select(Id));
        var messages = fresh.ListMessages(sid);
        Assert.Equal([user, asst], messages.Select(m => Id(m.Info)));
        Assert.Equal(2, messages[1].Parts.Count);
        Assert.Contains(h.Warnings, w => w.Contains(badSession, StringComparison.Ordinal));
        Assert.Contains(h.Warnings, w => w.Contains(badMessage, StringComparison.Ordinal));
        Assert.Contains(h.Warnings, w => w.Contains(badPart, StringComparison.Ordinal));

        // Writes keep working around the debris.
        var another = await fresh.CreateSessionAsync(h.Project, "another", null, default);
        await fresh.UpdateMessageAsync(Samples.User(sid, 1795468800000), default);
        Assert.Equal(2, fresh.ListSessions(h.Project.Id, new SessionListQuery()).Count);
        Assert.Equal(3, fresh.ListMessages(sid).Count);

        // Asking for the bad session itself is a StoreCorrupt naming the file, not a crash.
        var ex = Assert.Throws<StoreCorruptException>(() => fresh.GetSession("ses_00000000000000000000000000"));
        Assert.Contains(badSession, ex.Message, StringComparison.Ordinal);
        Assert.NotNull(another);
    }

    [Fact]
    public async Task Delete_RemovesChildrenMessagesPartsAndDiff_AndNothingElse()
    {
        using var h = new StoreHarness(git: true);
        var keep = await h.Store.CreateSessionAsync(h.Project, "keep", null, default);
        await ConversationAsync(h, keep);
        var before = h.Dirs.StorageFiles();

        var parent = await h.Store.CreateSessionAsync(h.Project, "parent", null, default);
        var child = await h.Store.CreateSessionAsync(h.Project, null, Id(parent), default);
        var grandchild = await h.Store.CreateSessionAsync(h.Project, "gc", Id(child), default);
        Assert.StartsWith("Child session - ", (string)child["title"]!, StringComparison.Ordinal);
        foreach (var s in new[] { parent, child, grandchild })
        {
            await ConversationAsync(h, s);
            AtomicFile(h.Store.Layout.SessionDiffFile(Id(s)), "[]");
        }

        Assert.Equal([Id(child)], h.Store.Children(Id(parent)).Select(Id));
        var events = new List<StoreEvent>();
        h.Store.Changed += events.Add;
        var deleted = await h.Store.DeleteSessionAsync(Id(parent), default);

        Assert.Equal(3, deleted.Count);
        Assert.Equal(before, h.Dirs.StorageFiles());
        Assert.Equal(3, events.Count(e => e.Type == "session.deleted"));
        Assert.Equal(Id(parent), (string)events.Last().Properties["info"]!["id"]!);
        Assert.DoesNotContain(Directory.EnumerateDirectories(Path.Combine(h.Dirs.Storage, "part")), d => !Directory.EnumerateFileSystemEntries(d).Any());
        Assert.Throws<NotFoundException>(() => h.Store.GetSession(Id(child)));
    }

    private static void AtomicFile(string path, string text) => Core.Storage.AtomicFile.Write(path, Encoding.UTF8.GetBytes(text));

    [Fact]
    public async Task PartPointingAtAnotherSessionsMessage_IsRefused_AndWritesNothing()
    {
        using var h = new StoreHarness();
        var a = await h.Store.CreateSessionAsync(h.Project, "a", null, default);
        var b = await h.Store.CreateSessionAsync(h.Project, "b", null, default);
        var (_, userA, _) = await ConversationAsync(h, a);
        var files = h.Dirs.StorageFiles();
        var bytes = files.Select(f => File.ReadAllBytes(Path.Combine(h.Dirs.Storage, f))).ToList();

        await Assert.ThrowsAsync<NotFoundException>(() => h.Store.UpdatePartAsync(Samples.Text(Id(b), userA, "sneaky"), null, default));
        await Assert.ThrowsAsync<NotFoundException>(() => h.Store.UpdatePartAsync(Samples.Text(Id(b), userA, "sneaky", "prt_0000000000000000000000000x"), null, default));
        // and a message cannot be removed through the wrong session either
        await Assert.ThrowsAsync<NotFoundException>(() => h.Store.RemoveMessageAsync(Id(b), userA, default));

        Assert.Equal(files, h.Dirs.StorageFiles());
        Assert.Equal(bytes, files.Select(f => File.ReadAllBytes(Path.Combine(h.Dirs.Storage, f))).ToList());
    }

    [Fact]
    public async Task ReusingAnotherSessionsMessageId_IsRefused_SoItsPartsCannotBeSharedOrDeleted()
    {
        using var h = new StoreHarness();
        var a = await h.Store.CreateSessionAsync(h.Project, "a", null, default);
        var b = await h.Store.CreateSessionAsync(h.Project, "b", null, default);
        var (_, userA, _) = await ConversationAsync(h, a);
        var files = h.Dirs.StorageFiles();

        // Part folders are keyed by message id alone: the same id under session b would share (and, on delete, remove) a's parts.
        var ex = await Assert.ThrowsAsync<OpenCodeException>(() => h.Store.UpdateMessageAsync(Samples.User(Id(b), 1, userA), default));
        Assert.Equal(ErrorKind.Conflict, ex.Kind);
        Assert.Contains(userA, ex.Message, StringComparison.Ordinal);
        Assert.Equal(files, h.Dirs.StorageFiles());

        await h.Store.DeleteSessionAsync(Id(b), default);
        Assert.Single(h.Store.GetMessage(Id(a), userA).Parts);
    }

    [Fact]
    public async Task InvalidMessage_IsRefusedNamingTheField_AndWritesNothing()
    {
        using var h = new StoreHarness();
        var s = await h.Store.CreateSessionAsync(h.Project, "a", null, default);
        var files = h.Dirs.StorageFiles();
        var bad = Samples.User(Id(s), 1);
        bad.Remove("agent");
        var ex = await Assert.ThrowsAsync<InvalidInputException>(() => h.Store.UpdateMessageAsync(bad, default));
        Assert.Equal("info.agent", ex.Field);
        var bad2 = Samples.User(Id(s), 1, "msg_../../../etc");
        Assert.Equal("info.id", (await Assert.ThrowsAsync<InvalidInputException>(() => h.Store.UpdateMessageAsync(bad2, default))).Field);
        var bad3 = Samples.User("ses_doesnotexist", 1);
        await Assert.ThrowsAsync<NotFoundException>(() => h.Store.UpdateMessageAsync(bad3, default));
        Assert.Equal(files, h.Dirs.StorageFiles());
    }

    [Fact]
    public async Task Messages_OrderedByCreatedThenId_PartsById_WithLimitAndBefore()
    {
        using var h = new StoreHarness();
        var s = await h.Store.CreateSessionAsync(h.Project, "a", null, default);
        string sid = Id(s);
        // ids chosen so that id order and time order disagree
        await h.Store.UpdateMessageAsync(Samples.User(sid, 3000, "msg_000000000001AAAAAAAAAAAAAA"), default);
        await h.Store.UpdateMessageAsync(Samples.User(sid, 1000, "msg_000000000003AAAAAAAAAAAAAA"), default);
        await h.Store.UpdateMessageAsync(Samples.User(sid, 2000, "msg_000000000002BBBBBBBBBBBBBB"), default);
        await h.Store.UpdateMessageAsync(Samples.User(sid, 2000, "msg_000000000002AAAAAAAAAAAAAA"), default);
        string m = "msg_000000000003AAAAAAAAAAAAAA";
        foreach (var p in new[] { "prt_0000000000030000000000000c", "prt_0000000000010000000000000a", "prt_0000000000020000000000000b" })
        {
            await h.Store.UpdatePartAsync(Samples.Text(sid, m, p, p), null, default);
        }

        var all = h.Store.ListMessages(sid);
        Assert.Equal(["msg_000000000003AAAAAAAAAAAAAA", "msg_000000000002AAAAAAAAAAAAAA", "msg_000000000002BBBBBBBBBBBBBB", "msg_000000000001AAAAAAAAAAAAAA"], all.Select(x => Id(x.Info)));
        Assert.Equal(["prt_0000000000010000000000000a", "prt_0000000000020000000000000b", "prt_0000000000030000000000000c"], all[0].Parts.Select(Id));
        Assert.Equal(["msg_000000000002BBBBBBBBBBBBBB", "msg_000000000001AAAAAAAAAAAAAA"], h.Store.ListMessages(sid, limit: 2).Select(x => Id(x.Info)));
        Assert.Equal(["msg_000000000002AAAAAAAAAAAAAA", "msg_000000000002BBBBBBBBBBBBBB"], h.Store.ListMessages(sid, limit: 2, before: "msg_000000000001AAAAAAAAAAAAAA").Select(x => Id(x.Info)));
        Assert.Equal(["msg_000000000003AAAAAAAAAAAAAA"], h.Store.ListMessages(sid, before: "msg_000000000002AAAAAAAAAAAAAA").Select(x => Id(x.Info)));
    }

    [Fact]
    public async Task TwoStoresOnOneDataDir_ConcurrentWrites_LoseNothing()
    {
        using var h = new StoreHarness();
        var s = await h.Store.CreateSessionAsync(h.Project, "shared", null, default);
        string sid = Id(s);
        var a = h.NewStore();
        var b = h.NewStore();
        const int n = 40;

        async Task Writer(Core.Sessions.SessionStore store, string tag)
        {
            for (int i = 0; i < n; i++)
            {
                var msg = await store.UpdateMessageAsync(Samples.User(sid, 1795468724363 + i), default);
                await store.UpdatePartAsync(Samples.Text(sid, Id(msg), $"{tag}-{i}"), null, default);
            }
        }

        async Task Renamer(Core.Sessions.SessionStore store)
        {
            for (int i = 0; i < n; i++)
            {
                await store.UpdateSessionInfoAsync(sid, $"title {i}", null, default);
            }
        }

        await Task.WhenAll(Task.Run(() => Writer(a, "a")), Task.Run(() => Writer(b, "b")), Task.Run(() => Renamer(b)), Task.Run(() => Renamer(a)));

        var check = h.NewStore();
        var messages = check.ListMessages(sid);
        Assert.Equal(2 * n, messages.Count);
        var texts = messages.Select(m => (string)m.Parts.Single()["text"]!).ToHashSet();
        for (int i = 0; i < n; i++)
        {
            Assert.Contains($"a-{i}", texts);
            Assert.Contains($"b-{i}", texts);
        }

        var info = check.GetSession(sid);
        Assert.Equal($"title {n - 1}", (string)info["title"]!);
        Assert.Empty(h.Warnings);
        Assert.Empty(Directory.EnumerateFiles(h.Dirs.Storage, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Events_HaveOpenCodePayloads()
    {
        using var h = new StoreHarness();
        var events = new List<StoreEvent>();
        h.Store.Changed += events.Add;
        var s = await h.Store.CreateSessionAsync(h.Project, "t", null, default);
        var m = await h.Store.UpdateMessageAsync(Samples.User(Id(s), 5), default);
        var p = await h.Store.UpdatePartAsync(Samples.Text(Id(s), Id(m), "x"), "x", default);
        await h.Store.RemovePartAsync(Id(s), Id(m), Id(p), default);
        await h.Store.RemoveMessageAsync(Id(s), Id(m), default);
        Assert.Equal(
            ["session.created", "message.updated", "session.updated", "message.part.updated", "message.part.removed", "message.removed"],
            events.Select(e => e.Type));
        Assert.Equal(["info"], events[0].Properties.Select(kv => kv.Key));
        Assert.Equal(["part", "delta"], events[3].Properties.Select(kv => kv.Key));
        Assert.Equal(["sessionID", "messageID", "partID"], events[4].Properties.Select(kv => kv.Key));
        Assert.Equal(["sessionID", "messageID"], events[5].Properties.Select(kv => kv.Key));
        Assert.Empty(h.Store.ListMessages(Id(s)));
        Assert.False(Directory.Exists(h.Store.Layout.PartDir(Id(m))));
    }
}
