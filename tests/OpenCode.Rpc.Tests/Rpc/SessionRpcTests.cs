using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using OpenCode.Rpc.Tests.Store;
using static OpenCode.Rpc.Tests.Rpc.RpcScenario;

namespace OpenCode.Rpc.Tests.Rpc;

public sealed class SessionRpcTests
{
    [Fact]
    public async Task Create_ReturnsTheStoredSession_AndNotifiesSessionCreated()
    {
        using var dirs = new TestDirs(git: true);
        await using var s = await InProcServer.StartAsync(dirs);
        var created = await s.CallAsync(Methods.SessionCreate, new { title = "hello" });
        string sid = Id(created);
        var file = Directory.GetFiles(Path.Combine(dirs.Storage, "session"), sid + ".json", SearchOption.AllDirectories).Single();
        Samples.AssertSameJson(Samples.ReadJson(file), Obj(created));
        var n = await s.WaitForNotificationAsync(Notifications.SessionCreated);
        Assert.Equal(["info"], n.EnumerateObject().Select(p => p.Name));
        Samples.AssertSameJson(Obj(created), Obj(n.GetProperty("info")));

        var untitled = await s.CallAsync(Methods.SessionCreate);
        Assert.Matches("^New session - \\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$", untitled.GetProperty("title").GetString());
        Samples.AssertSameJson(Obj(created), Obj(await s.CallAsync(Methods.SessionGet, new { sessionID = sid })));
    }

    [Fact]
    public async Task ListChildrenRenameArchiveUnarchiveDelete_EmitOpenCodeNotifications()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        var parent = await s.CallAsync(Methods.SessionCreate, new { title = "parent" });
        var child = await s.CallAsync(Methods.SessionCreate, new { parentID = Id(parent) });
        Assert.Equal(Id(parent), child.GetProperty("parentID").GetString());
        Assert.StartsWith("Child session - ", child.GetProperty("title").GetString(), StringComparison.Ordinal);
        var other = await s.CallAsync(Methods.SessionCreate, new { title = "Other THING" });

        var children = await s.CallAsync(Methods.SessionChildren, new { sessionID = Id(parent) });
        Assert.Equal([Id(child)], children.EnumerateArray().Select(Id));

        var roots = await s.CallAsync(Methods.SessionList, new { roots = true });
        Assert.Equal([Id(other), Id(parent)], roots.EnumerateArray().Select(Id));
        var search = await s.CallAsync(Methods.SessionList, new { search = "thing" });
        Assert.Equal([Id(other)], search.EnumerateArray().Select(Id));
        var limited = await s.CallAsync(Methods.SessionList, new { limit = 1 });
        Assert.Equal([Id(other)], limited.EnumerateArray().Select(Id));

        var renamed = await s.CallAsync(Methods.SessionUpdate, new { sessionID = Id(parent), title = "renamed" });
        Assert.Equal("renamed", renamed.GetProperty("title").GetString());
        Assert.Equal(parent.GetProperty("time").GetProperty("updated").GetInt64(), renamed.GetProperty("time").GetProperty("updated").GetInt64());
        var upd = await s.WaitForNotificationAsync(Notifications.SessionUpdated, p => p.GetProperty("info").GetProperty("title").GetString() == "renamed");
        Assert.Equal(["info"], upd.EnumerateObject().Select(p => p.Name));

        var archived = await s.CallAsync(Methods.SessionUpdate, new { sessionID = Id(other), archived = true });
        Assert.True(archived.GetProperty("time").TryGetProperty("archived", out _));
        await s.WaitForNotificationAsync(Notifications.SessionUpdated, p => p.GetProperty("info").GetProperty("time").TryGetProperty("archived", out _));
        Assert.DoesNotContain(Id(other), (await s.CallAsync(Methods.SessionList)).EnumerateArray().Select(Id));
        Assert.Contains(Id(other), (await s.CallAsync(Methods.SessionList, new { archived = true })).EnumerateArray().Select(Id));
        var unarchived = await s.CallAsync(Methods.SessionUpdate, new { sessionID = Id(other), archived = false });
        Assert.False(unarchived.GetProperty("time").TryGetProperty("archived", out _));
        Assert.Contains(Id(other), (await s.CallAsync(Methods.SessionList)).EnumerateArray().Select(Id));

        Assert.True((await s.CallAsync(Methods.SessionDelete, new { sessionID = Id(parent) })).GetBoolean());
        var del = await s.WaitForNotificationAsync(Notifications.SessionDeleted, p => Id(p.GetProperty("info")) == Id(parent));
        Assert.Equal(["info"], del.EnumerateObject().Select(p => p.Name));
        await s.WaitForNotificationAsync(Notifications.SessionDeleted, p => Id(p.GetProperty("info")) == Id(child));
        Assert.Equal([Id(other)], (await s.CallAsync(Methods.SessionList)).EnumerateArray().Select(Id));
        Assert.Equal(ErrorCodes.SessionNotFound, (await s.ErrorAsync(Methods.SessionGet, new { sessionID = Id(child) })).Code);
    }

    [Fact]
    public async Task Messages_AndParts_RoundTrip_WithNotifications()
    {
        using var dirs = new TestDirs(git: true);
        await using var s = await InProcServer.StartAsync(dirs);
        var (sid, uid, aid) = await KeyScenarioAsync(s);

        var mu = await s.WaitForNotificationAsync(Notifications.MessageUpdated, p => Id(p.GetProperty("info")) == aid);
        Assert.Equal(["info"], mu.EnumerateObject().Select(p => p.Name));
        Assert.Equal("assistant", mu.GetProperty("info").GetProperty("role").GetString());
        var withDelta = await s.WaitForNotificationAsync(Notifications.MessagePartUpdated, p => p.TryGetProperty("delta", out var d) && d.GetString() == "ne.");
        Assert.Equal(["part", "delta"], withDelta.EnumerateObject().Select(p => p.Name));
        Assert.Equal("Done.", withDelta.GetProperty("part").GetProperty("text").GetString());
        var noDelta = await s.WaitForNotificationAsync(Notifications.MessagePartUpdated, p => p.GetProperty("part").GetProperty("type").GetString() == "patch");
        Assert.Equal(["part"], noDelta.EnumerateObject().Select(p => p.Name));

        // A new message moves the session's time.updated and says so.
        await s.WaitForNotificationAsync(Notifications.SessionUpdated, p => Id(p.GetProperty("info")) == sid);

        var parts = (await s.CallAsync(Methods.MessageGet, new { sessionID = sid, messageID = aid })).GetProperty("parts");
        string patchId = Id(parts[4]);
        Assert.True((await s.CallAsync(Methods.PartRemove, new { sessionID = sid, messageID = aid, partID = patchId })).GetBoolean());
        var pr = await s.WaitForNotificationAsync(Notifications.MessagePartRemoved);
        Assert.Equal(["sessionID", "messageID", "partID"], pr.EnumerateObject().Select(p => p.Name));
        Assert.Equal(patchId, pr.GetProperty("partID").GetString());
        Assert.Equal(4, (await s.CallAsync(Methods.MessageGet, new { sessionID = sid, messageID = aid })).GetProperty("parts").GetArrayLength());

        Assert.True((await s.CallAsync(Methods.MessageRemove, new { sessionID = sid, messageID = aid })).GetBoolean());
        var mr = await s.WaitForNotificationAsync(Notifications.MessageRemoved);
        Assert.Equal(["sessionID", "messageID"], mr.EnumerateObject().Select(p => p.Name));
        Assert.Equal(aid, mr.GetProperty("messageID").GetString());
        Assert.Equal([uid], (await s.CallAsync(Methods.MessageList, new { sessionID = sid })).EnumerateArray().Select(m => Id(m.GetProperty("info"))));
        Assert.False(Directory.Exists(Path.Combine(dirs.Storage, "part", aid)));
        Assert.Equal(ErrorCodes.MessageNotFound, (await s.ErrorAsync(Methods.MessageGet, new { sessionID = sid, messageID = aid })).Code);
    }

    [Fact]
    public async Task MessageList_OrdersByCreatedThenId_WithLimitAndBefore()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = Id(await s.CallAsync(Methods.SessionCreate, new { title = "t" }));
        string[] ids = ["msg_000000000003AAAAAAAAAAAAAA", "msg_000000000001AAAAAAAAAAAAAA", "msg_000000000002AAAAAAAAAAAAAA"];
        long[] created = [1000, 2000, 2000];
        for (int i = 0; i < 3; i++)
        {
            await s.CallAsync(Methods.MessageUpdate, new { info = Samples.User(sid, created[i], ids[i]) });
        }

        string[] Ids(JsonElement list) => list.EnumerateArray().Select(m => Id(m.GetProperty("info"))).ToArray();
        Assert.Equal([ids[0], ids[1], ids[2]], Ids(await s.CallAsync(Methods.MessageList, new { sessionID = sid })));
        Assert.Equal([ids[1], ids[2]], Ids(await s.CallAsync(Methods.MessageList, new { sessionID = sid, limit = 2 })));
        Assert.Equal([ids[0]], Ids(await s.CallAsync(Methods.MessageList, new { sessionID = sid, before = ids[1] })));
        Assert.Equal([ids[1]], Ids(await s.CallAsync(Methods.MessageList, new { sessionID = sid, before = ids[2], limit = 1 })));
    }

    public static TheoryData<string, string, string> BadInputs()
    {
        var d = new TheoryData<string, string, string>
        {
            // method, params JSON, expected field ("" = no field expected)
            { Methods.SessionGet, "{\"sessionID\":\"ses_../../x\"}", "sessionID" },
            { Methods.SessionGet, "{\"sessionID\":\"ses_a\\u0000b\"}", "sessionID" },
            { Methods.SessionGet, "{\"sessionID\":\"\"}", "sessionID" },
            { Methods.SessionGet, "{\"sessionID\":\"ses_" + new string('a', 10_240) + "\"}", "sessionID" },
            { Methods.SessionGet, "{\"sessionID\":5}", "sessionID" },
            { Methods.SessionGet, "{\"sessionID\":null}", "sessionID" },
            { Methods.SessionGet, "{}", "sessionID" },
            { Methods.SessionGet, "{\"sessionID\":\"SESSION\",\"extra\":1}", "extra" },
            { Methods.SessionCreate, "{\"title\":5}", "title" },
            { Methods.SessionCreate, "{\"title\":\"" + new string('t', 10_240) + "\"}", "title" },
            { Methods.SessionCreate, "{\"title\":\"x\",\"bogus\":true}", "bogus" },
            { Methods.SessionCreate, "{\"parentID\":\"ses_../../etc\"}", "parentID" },
            { Methods.SessionList, "{\"limit\":\"ten\"}", "limit" },
            { Methods.SessionList, "{\"limit\":0}", "limit" },
            { Methods.SessionList, "{\"roots\":\"yes\"}", "roots" },
            { Methods.SessionUpdate, "{\"sessionID\":\"SID\",\"title\":\"" + new string('t', 10_240) + "\"}", "title" },
            { Methods.SessionUpdate, "{\"sessionID\":\"SID\",\"archived\":\"yes\"}", "archived" },
            { Methods.SessionDelete, "{\"sessionID\":\"ses_../../../tmp\"}", "sessionID" },
            { Methods.SessionChildren, "{\"sessionID\":[1]}", "sessionID" },
            { Methods.MessageList, "{\"sessionID\":\"SID\",\"before\":\"msg_../x\"}", "before" },
            { Methods.MessageGet, "{\"sessionID\":\"SID\",\"messageID\":\"../../x\"}", "messageID" },
            { Methods.MessageUpdate, "{\"info\":\"not an object\"}", "info" },
            { Methods.MessageUpdate, "{}", "info" },
            { Methods.MessageUpdate, "{\"info\":{\"id\":\"msg_../../x\",\"sessionID\":\"SID\",\"role\":\"user\",\"time\":{\"created\":1},\"agent\":\"b\",\"model\":{\"providerID\":\"p\",\"modelID\":\"m\"}}}", "info.id" },
            { Methods.MessageUpdate, "{\"info\":{\"sessionID\":\"SID\",\"role\":\"robot\",\"time\":{\"created\":1},\"agent\":\"b\"}}", "info.role" },
            { Methods.MessageUpdate, "{\"info\":{\"sessionID\":\"SID\",\"role\":\"user\",\"time\":{\"created\":\"now\"},\"agent\":\"b\",\"model\":{\"providerID\":\"p\",\"modelID\":\"m\"}}}", "info.time.created" },
            { Methods.PartUpdate, "{\"part\":{\"sessionID\":\"SID\",\"messageID\":\"MID\",\"type\":\"bogus\"}}", "part.type" },
            { Methods.PartUpdate, "{\"part\":{\"sessionID\":\"SID\",\"messageID\":\"MID\",\"type\":\"text\"}}", "part.text" },
            { Methods.PartUpdate, "{\"part\":{\"sessionID\":\"SID\",\"messageID\":\"MID\",\"type\":\"text\",\"text\":\"x\"},\"delta\":5}", "delta" },
            { Methods.PartRemove, "{\"sessionID\":\"SID\",\"messageID\":\"MID\",\"partID\":\"prt_a/b\"}", "partID" },
            { Methods.SessionGet, "{\"sessionID\":\"SID\",\"sessionID\":\"ses_other\"}", "sessionID" },
            { Methods.MessageUpdate, "{\"info\":{\"id\":null,\"sessionID\":\"SID\",\"role\":\"user\",\"time\":{\"created\":1},\"agent\":\"b\",\"model\":{\"providerID\":\"p\",\"modelID\":\"m\"}}}", "info.id" },
            { Methods.PartUpdate, "{\"part\":{\"id\":null,\"sessionID\":\"SID\",\"messageID\":\"MID\",\"type\":\"text\",\"text\":\"x\"}}", "part.id" },
            { Methods.PartUpdate, "{\"part\":{\"id\":5,\"sessionID\":\"SID\",\"messageID\":\"MID\",\"type\":\"text\",\"text\":\"x\"}}", "part.id" },
            { Methods.MessageUpdate, "{\"info\":null}", "info" },
            { Methods.MessageUpdate, "{\"info\":{\"sessionID\":\"SID\",\"role\":\"user\",\"role\":\"assistant\",\"time\":{\"created\":1},\"agent\":\"b\",\"model\":{\"providerID\":\"p\",\"modelID\":\"m\"}}}", "info.role" },
        };
        return d;
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task BadParams_GetInvalidParamsNamingTheField_AndWriteNothing(string method, string json, string field)
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = Id(await s.CallAsync(Methods.SessionCreate, new { title = "t" }));
        string mid = Id(await s.CallAsync(Methods.MessageUpdate, new { info = Samples.User(sid, 1) }));
        var before = Snapshot(dirs);

        var p = JsonDocument.Parse(json.Replace("SID", sid, StringComparison.Ordinal).Replace("MID", mid, StringComparison.Ordinal)).RootElement;
        var err = await s.ErrorAsync(method, p);
        string seen = $"{err.Code} {err.Message} {err.Data}";
        Assert.True(err.Code == ErrorCodes.InvalidParams, seen);
        Assert.True(field == err.Field, seen);
        Assert.Equal("InvalidInput", err.Kind);
        Assert.DoesNotContain("   at ", err.Message, StringComparison.Ordinal);
        Assert.True(err.Data!.Value.TryGetProperty("reason", out _));
        AssertUnchanged(before, dirs);

        // the server keeps answering
        Assert.Equal(sid, Id(await s.CallAsync(Methods.SessionGet, new { sessionID = sid })));
    }

    public static TheoryData<string, string, int> Missing() => new()
    {
        { Methods.SessionGet, "{\"sessionID\":\"ses_nonexistent\"}", ErrorCodes.SessionNotFound },
        { Methods.SessionUpdate, "{\"sessionID\":\"ses_nonexistent\",\"title\":\"x\"}", ErrorCodes.SessionNotFound },
        { Methods.SessionDelete, "{\"sessionID\":\"ses_nonexistent\"}", ErrorCodes.SessionNotFound },
        { Methods.SessionChildren, "{\"sessionID\":\"ses_nonexistent\"}", ErrorCodes.SessionNotFound },
        { Methods.SessionCreate, "{\"parentID\":\"ses_nonexistent\"}", ErrorCodes.SessionNotFound },
        { Methods.MessageList, "{\"sessionID\":\"ses_nonexistent\"}", ErrorCodes.SessionNotFound },
        { Methods.MessageList, "{\"sessionID\":\"SID\",\"before\":\"msg_nonexistent\"}", ErrorCodes.MessageNotFound },
        { Methods.MessageGet, "{\"sessionID\":\"SID\",\"messageID\":\"msg_nonexistent\"}", ErrorCodes.MessageNotFound },
        { Methods.MessageRemove, "{\"sessionID\":\"SID\",\"messageID\":\"msg_nonexistent\"}", ErrorCodes.MessageNotFound },
        { Methods.MessageRemove, "{\"sessionID\":\"ses_nonexistent\",\"messageID\":\"MID\"}", ErrorCodes.SessionNotFound },
        { Methods.MessageUpdate, "{\"info\":{\"sessionID\":\"ses_nonexistent\",\"role\":\"user\",\"time\":{\"created\":1},\"agent\":\"b\",\"model\":{\"providerID\":\"p\",\"modelID\":\"m\"}}}", ErrorCodes.SessionNotFound },
        { Methods.PartUpdate, "{\"part\":{\"sessionID\":\"SID\",\"messageID\":\"msg_nonexistent\",\"type\":\"text\",\"text\":\"x\"}}", ErrorCodes.MessageNotFound },
        { Methods.PartUpdate, "{\"part\":{\"sessionID\":\"OTHER\",\"messageID\":\"MID\",\"type\":\"text\",\"text\":\"x\"}}", ErrorCodes.MessageNotFound },
        { Methods.PartRemove, "{\"sessionID\":\"SID\",\"messageID\":\"MID\",\"partID\":\"prt_nonexistent\"}", ErrorCodes.PartNotFound },
    };

    [Theory]
    [MemberData(nameof(Missing))]
    public async Task MissingTargets_GetOurNotFoundCodes_AndWriteNothing(string method, string json, int code)
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = Id(await s.CallAsync(Methods.SessionCreate, new { title = "t" }));
        string other = Id(await s.CallAsync(Methods.SessionCreate, new { title = "other" }));
        string mid = Id(await s.CallAsync(Methods.MessageUpdate, new { info = Samples.User(sid, 1) }));
        var before = Snapshot(dirs);

        var p = JsonDocument.Parse(json.Replace("SID", sid, StringComparison.Ordinal).Replace("MID", mid, StringComparison.Ordinal).Replace("OTHER", other, StringComparison.Ordinal)).RootElement;
        var err = await s.ErrorAsync(method, p);
        Assert.Equal(code, err.Code);
        Assert.InRange(err.Code, -32199, -32100);
        string id = err.Data!.Value.GetProperty("id").GetString()!;
        Assert.EndsWith(" not found: " + id, err.Message, StringComparison.Ordinal);
        AssertUnchanged(before, dirs);
    }

    [Fact]
    public async Task ReusingAMessageIdOfAnotherSession_IsAConflict_AndWritesNothing()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string a = Id(await s.CallAsync(Methods.SessionCreate, new { title = "a" }));
        string b = Id(await s.CallAsync(Methods.SessionCreate, new { title = "b" }));
        string mid = Id(await s.CallAsync(Methods.MessageUpdate, new { info = Samples.User(a, 1) }));
        await s.CallAsync(Methods.PartUpdate, new { part = Samples.Text(a, mid, "mine") });
        var before = Snapshot(dirs);
        var err = await s.ErrorAsync(Methods.MessageUpdate, new { info = Samples.User(b, 1, mid) });
        Assert.Equal(ErrorCodes.Conflict, err.Code);
        AssertUnchanged(before, dirs);
    }

    [Fact]
    public async Task ParamsNotAnObject_IsInvalidParams()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        var before = Snapshot(dirs);
        var err = await s.ErrorAsync(Methods.SessionCreate, new[] { "title" });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        AssertUnchanged(before, dirs);
    }

    [Fact]
    public async Task SessionNotFound_MessageMatchesOpenCode()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        var err = await s.ErrorAsync(Methods.SessionGet, new { sessionID = "ses_nonexistent" });
        Assert.Equal("Session not found: ses_nonexistent", err.Message);
        Assert.Equal(ErrorCodes.SessionNotFound, err.Code);
    }

    [Fact]
    public async Task NewPart_WithoutId_GetsAnAscendingId()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = Id(await s.CallAsync(Methods.SessionCreate, new { title = "t" }));
        string mid = Id(await s.CallAsync(Methods.MessageUpdate, new { info = Samples.User(sid, 1) }));
        var ids = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            ids.Add(Id(await s.CallAsync(Methods.PartUpdate, new { part = Samples.Text(sid, mid, i.ToString(System.Globalization.CultureInfo.InvariantCulture)) })));
        }

        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        var parts = (await s.CallAsync(Methods.MessageGet, new { sessionID = sid, messageID = mid })).GetProperty("parts");
        Assert.Equal(["0", "1", "2", "3", "4"], parts.EnumerateArray().Select(p => p.GetProperty("text").GetString()));
        var first = (JsonObject)Obj(parts[0]);
        Assert.Equal(["id", "sessionID", "messageID", "type", "text"], first.Select(kv => kv.Key));
    }
}
