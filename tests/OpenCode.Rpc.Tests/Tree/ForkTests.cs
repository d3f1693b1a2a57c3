using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Tree;

public sealed class ForkTests
{
    private static async Task<List<JsonElement>> MessagesAsync(RpcTestClient s, string sessionId) =>
        (await s.CallAsync(Methods.MessageList, new { sessionID = sessionId })).EnumerateArray().ToList();

    [Fact]
    public async Task Fork_WholeSession_CopiesEveryMessageWithNewAscendingIds_AndRemapsParentID()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s, "Fix login");
        await Conversation.TurnAsync(s, sid, 1000, "first ask", "first answer");
        await Conversation.TurnAsync(s, sid, 2000, "second ask", "second answer");

        var fork = await s.CallAsync(Methods.SessionFork, new { sessionID = sid });
        string fid = fork.GetProperty("id").GetString()!;
        Assert.Equal("Fix login (fork #1)", fork.GetProperty("title").GetString());
        Assert.False(fork.TryGetProperty("parentID", out _));

        var src = await MessagesAsync(s, sid);
        var dst = await MessagesAsync(s, fid);
        Assert.Equal(src.Count, dst.Count);
        var ids = dst.Select(m => m.GetProperty("info").GetProperty("id").GetString()!).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        Assert.Empty(ids.Intersect(src.Select(m => m.GetProperty("info").GetProperty("id").GetString())));
        for (int i = 0; i < src.Count; i++)
        {
            var a = src[i].GetProperty("info");
            var b = dst[i].GetProperty("info");
            Assert.Equal(fid, b.GetProperty("sessionID").GetString());
            Assert.Equal(a.GetProperty("time").GetProperty("created").GetInt64(), b.GetProperty("time").GetProperty("created").GetInt64());
            Assert.Equal(src[i].GetProperty("parts")[0].GetProperty("text").GetString(), dst[i].GetProperty("parts")[0].GetProperty("text").GetString());
            Assert.Equal(b.GetProperty("id").GetString(), dst[i].GetProperty("parts")[0].GetProperty("messageID").GetString());
        }

        // each assistant's parentID points at the copied user message, not the original
        Assert.Equal(ids[0], dst[1].GetProperty("info").GetProperty("parentID").GetString());
        Assert.Equal(ids[2], dst[3].GetProperty("info").GetProperty("parentID").GetString());
        await s.WaitForNotificationAsync(Notifications.SessionCreated, n => n.GetProperty("info").GetProperty("id").GetString() == fid);
    }

    [Fact]
    public async Task Fork_AtAUserMessage_CopiesOnlyTheMessagesBeforeIt_AsOpenCodeDoes()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        await Conversation.TurnAsync(s, sid, 1000, "a", "b");
        var (u2, _) = await Conversation.TurnAsync(s, sid, 2000, "c", "d");
        var fork = await s.CallAsync(Methods.SessionFork, new { sessionID = sid, messageID = u2 });
        var dst = await MessagesAsync(s, fork.GetProperty("id").GetString()!);
        Assert.Equal(["a", "b"], dst.Select(m => m.GetProperty("parts")[0].GetProperty("text").GetString()!));
    }

    [Fact]
    public async Task Fork_Inclusive_AtAnAssistantAnswer_KeepsThatAnswer()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        var (_, a1) = await Conversation.TurnAsync(s, sid, 1000, "a", "b");
        await Conversation.TurnAsync(s, sid, 2000, "c", "d");
        var fork = await s.CallAsync(Methods.SessionFork, new { sessionID = sid, messageID = a1, inclusive = true });
        var dst = await MessagesAsync(s, fork.GetProperty("id").GetString()!);
        Assert.Equal(["a", "b"], dst.Select(m => m.GetProperty("parts")[0].GetProperty("text").GetString()!));
        var exclusive = await s.CallAsync(Methods.SessionFork, new { sessionID = sid, messageID = a1 });
        Assert.Single(await MessagesAsync(s, exclusive.GetProperty("id").GetString()!));
    }

    [Fact]
    public async Task Fork_AtAToolCallMessage_CopiesToolPartsVerbatim()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        string u = await Conversation.AddAsync(s, Build.User(sid, 1000), Build.Text(sid, "", "read it"));
        var patch = new JsonObject { ["sessionID"] = sid, ["type"] = "patch", ["hash"] = "0d8a474fc67971fb3dd7616e26323d3066442555", ["files"] = new JsonArray("/tmp/p/a.txt") };
        string a = await Conversation.AddAsync(s, Build.Assistant(sid, u, 1001), Build.Tool(sid, "", "read", "file body"), patch);
        var fork = await s.CallAsync(Methods.SessionFork, new { sessionID = sid, messageID = a, inclusive = true });
        var dst = await MessagesAsync(s, fork.GetProperty("id").GetString()!);
        var parts = dst[1].GetProperty("parts").EnumerateArray().ToList();
        Assert.Equal("file body", parts[0].GetProperty("state").GetProperty("output").GetString());
        Assert.Equal("0d8a474fc67971fb3dd7616e26323d3066442555", parts[1].GetProperty("hash").GetString());
        Assert.Equal("/tmp/p/a.txt", parts[1].GetProperty("files")[0].GetString());
    }

    [Fact]
    public async Task Fork_OfAFork_CountsUp_AndForkingTheSameOriginalTwiceGivesForkOneTwice()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s, "via http");
        var f1 = await s.CallAsync(Methods.SessionFork, new { sessionID = sid });
        var f1b = await s.CallAsync(Methods.SessionFork, new { sessionID = sid });
        var f2 = await s.CallAsync(Methods.SessionFork, new { sessionID = f1.GetProperty("id").GetString() });
        Assert.Equal("via http (fork #1)", f1.GetProperty("title").GetString());
        Assert.Equal("via http (fork #1)", f1b.GetProperty("title").GetString());
        Assert.Equal("via http (fork #2)", f2.GetProperty("title").GetString());
    }

    [Fact]
    public async Task Fork_UnknownMessage_IsMessageNotFound_AndWritesNothing()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        await Conversation.TurnAsync(s, sid, 1000, "a", "b");
        var before = dirs.StorageFiles();
        var err = await s.ErrorAsync(Methods.SessionFork, new { sessionID = sid, messageID = "msg_bogus" });
        Assert.Equal(ErrorCodes.MessageNotFound, err.Code);
        var bad = await s.ErrorAsync(Methods.SessionFork, new { sessionID = sid, messageID = "msg_../../x" });
        Assert.Equal("messageID", bad.Field);
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task Fork_FailingMidway_LeavesNoHalfCopiedSession()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        await Conversation.TurnAsync(s, sid, 1000, "a", "b");
        await Conversation.TurnAsync(s, sid, 2000, "c", "d");
        var before = dirs.StorageFiles();
        // The fork-origin side folder is written after every message and part: make it impossible to create.
        Directory.CreateDirectory(Path.Combine(dirs.DataDir, "opencode-rpc"));
        File.WriteAllText(Path.Combine(dirs.DataDir, "opencode-rpc", "forks"), "not a folder");
        var err = await s.ErrorAsync(Methods.SessionFork, new { sessionID = sid });
        Assert.NotEqual(0, err.Code);
        Assert.Equal(before, dirs.StorageFiles());
        Assert.Single((await s.CallAsync(Methods.SessionList)).EnumerateArray());
    }

    [Fact]
    public async Task Fork_OfARevertedSession_DoesNotCopyTheRevertedMessages()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        await Conversation.TurnAsync(s, sid, 1000, "kept", "kept answer");
        var (u2, _) = await Conversation.TurnAsync(s, sid, 2000, "reverted", "reverted answer");
        await s.Server.Context.Store.UpdateSessionAsync(sid, info => info["revert"] = new JsonObject { ["messageID"] = u2 }, CancellationToken.None);
        var fork = await s.CallAsync(Methods.SessionFork, new { sessionID = sid });
        var dst = await MessagesAsync(s, fork.GetProperty("id").GetString()!);
        Assert.Equal(["kept", "kept answer"], dst.Select(m => m.GetProperty("parts")[0].GetProperty("text").GetString()!));
    }

    [Fact]
    public async Task Fork_CompactionPart_RemapsTailStartID()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s);
        var (u1, _) = await Conversation.TurnAsync(s, sid, 1000, "a", "b");
        var compaction = new JsonObject { ["sessionID"] = sid, ["type"] = "compaction", ["auto"] = false, ["tail_start_id"] = u1 };
        await Conversation.AddAsync(s, Build.User(sid, 3000), compaction);
        var fork = await s.CallAsync(Methods.SessionFork, new { sessionID = sid });
        var dst = await MessagesAsync(s, fork.GetProperty("id").GetString()!);
        Assert.Equal(dst[0].GetProperty("info").GetProperty("id").GetString(), dst[2].GetProperty("parts")[0].GetProperty("tail_start_id").GetString());
    }

    [Fact]
    public async Task Fork_OfTheRealOpenCodeFixtureSession_CopiesAllFiveMessagesAndTwelveParts()
    {
        using var dirs = new TestDirs();
        CopyDirectory(Path.Combine(RepoPaths.Fixtures, "v1.1.65", "storage"), dirs.Storage);
        await using var s = await InProcServer.StartAsync(dirs);
        const string sid = "ses_df5b97920ffeUFbu7k46fCazeu";
        var fork = await s.CallAsync(Methods.SessionFork, new { sessionID = sid });
        Assert.Equal("fake llm session (fork #1)", fork.GetProperty("title").GetString());
        Assert.Equal("8473d0e735b29d2401024a60ff21c05aeb914dac", fork.GetProperty("projectID").GetString());
        var src = await MessagesAsync(s, sid);
        var dst = await MessagesAsync(s, fork.GetProperty("id").GetString()!);
        Assert.Equal(5, dst.Count);
        Assert.Equal(12, dst.Sum(m => m.GetProperty("parts").GetArrayLength()));
        // every part's content is verbatim apart from its three ids
        for (int i = 0; i < src.Count; i++)
        {
            for (int j = 0; j < src[i].GetProperty("parts").GetArrayLength(); j++)
            {
                var a = JsonNode.Parse(src[i].GetProperty("parts")[j].GetRawText())!.AsObject();
                var b = JsonNode.Parse(dst[i].GetProperty("parts")[j].GetRawText())!.AsObject();
                foreach (var k in new[] { "id", "sessionID", "messageID" })
                {
                    a.Remove(k);
                    b.Remove(k);
                }

                Assert.True(JsonNode.DeepEquals(a, b), $"part {i}/{j} changed");
            }
        }
    }

    internal static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }

        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)), overwrite: true);
        }
    }
}
