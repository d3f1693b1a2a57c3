using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using OpenCode.Rpc.Tests.Store;

namespace OpenCode.Rpc.Tests.Rpc;

/// <summary>Helpers shared by the in-proc and process RPC tests.</summary>
public static class RpcScenario
{
    public static JsonObject Obj(JsonElement e) => JsJson.ParseObject(JsonSerializer.SerializeToUtf8Bytes(e));

    public static string Id(JsonElement e) => e.GetProperty("id").GetString()!;

    /// <summary>Whole-file snapshot of storage/: names and bytes.</summary>
    public static Dictionary<string, byte[]> Snapshot(TestDirs dirs) =>
        dirs.StorageFiles().ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(dirs.Storage, f)), StringComparer.Ordinal);

    public static void AssertUnchanged(Dictionary<string, byte[]> before, TestDirs dirs)
    {
        var after = Snapshot(dirs);
        Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, v) in before)
        {
            Assert.True(v.AsSpan().SequenceEqual(after[k]), $"{k} changed");
        }
    }

    /// <summary>The key scenario: create, write a user and an assistant message with parts, read back, rename,
    /// remove a part, and check the store file against the answer.</summary>
    public static async Task<(string Session, string User, string Assistant)> KeyScenarioAsync(RpcTestClient s, string? storage = null)
    {
        storage ??= s.Dirs.Storage;
        var session = await s.CallAsync(Methods.SessionCreate, new { title = "key scenario" });
        string sid = Id(session);
        var user = await s.CallAsync(Methods.MessageUpdate, new { info = Samples.User(sid, 1795468724363) });
        string uid = Id(user);
        Assert.StartsWith("msg_", uid, StringComparison.Ordinal);
        await s.CallAsync(Methods.PartUpdate, new { part = Samples.Text(sid, uid, "write hello.txt") });
        var asst = await s.CallAsync(Methods.MessageUpdate, new { info = Samples.Assistant(sid, uid, 1795468724400, s.Dirs.ProjectDir) });
        string aid = Id(asst);
        string file = Path.Combine(s.Dirs.ProjectDir, "hello.txt");
        await s.CallAsync(Methods.PartUpdate, new { part = Samples.StepStart(sid, aid) });
        var tool = await s.CallAsync(Methods.PartUpdate, new { part = Samples.Tool(sid, aid, file) });
        var text = await s.CallAsync(Methods.PartUpdate, new { part = Samples.Text(sid, aid, "Do"), delta = "Do" });
        await s.CallAsync(Methods.PartUpdate, new { part = Samples.Text(sid, aid, "Done.", Id(text)), delta = "ne." });
        await s.CallAsync(Methods.PartUpdate, new { part = Samples.StepFinish(sid, aid) });
        await s.CallAsync(Methods.PartUpdate, new { part = Samples.Patch(sid, aid, file) });

        var got = await s.CallAsync(Methods.MessageGet, new { sessionID = sid, messageID = aid });
        Assert.Equal(["step-start", "tool", "text", "step-finish", "patch"], got.GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("type").GetString()));
        Assert.Equal("Done.", got.GetProperty("parts")[2].GetProperty("text").GetString());
        var toolOnDisk = Samples.ReadJson(Path.Combine(storage, "part", aid, Id(tool) + ".json"));
        Samples.AssertSameJson(toolOnDisk, Obj(got.GetProperty("parts")[1]));

        var list = await s.CallAsync(Methods.MessageList, new { sessionID = sid });
        Assert.Equal([uid, aid], list.EnumerateArray().Select(m => Id(m.GetProperty("info"))));

        var renamed = await s.CallAsync(Methods.SessionUpdate, new { sessionID = sid, title = "renamed" });
        Assert.Equal("renamed", renamed.GetProperty("title").GetString());
        var sessions = await s.CallAsync(Methods.SessionList);
        Assert.Contains(sessions.EnumerateArray(), x => Id(x) == sid && x.GetProperty("title").GetString() == "renamed");
        return (sid, uid, aid);
    }
}
