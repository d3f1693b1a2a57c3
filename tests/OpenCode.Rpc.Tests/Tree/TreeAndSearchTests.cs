using System.Text.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Tree;

public sealed class TreeAndSearchTests
{
    [Fact]
    public async Task Tree_ShowsAncestorsNearestFirst_AndNestedForksAndChildren_WithTheBranchMessage()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string root = await Conversation.NewSessionAsync(s, "root");
        var (u1, a1) = await Conversation.TurnAsync(s, root, 1000, "a", "b");
        string fork1 = (await s.CallAsync(Methods.SessionFork, new { sessionID = root, messageID = a1, inclusive = true })).GetProperty("id").GetString()!;
        string fork2 = (await s.CallAsync(Methods.SessionFork, new { sessionID = fork1 })).GetProperty("id").GetString()!;
        string child = (await s.CallAsync(Methods.SessionCreate, new { parentID = root })).GetProperty("id").GetString()!;

        var tree = await s.CallAsync(Methods.SessionTree, new { sessionID = fork2 });
        var anc = tree.GetProperty("ancestors").EnumerateArray().ToList();
        Assert.Equal([fork1, root], anc.Select(a => a.GetProperty("sessionID").GetString()!));
        Assert.Equal("fork", anc[0].GetProperty("relation").GetString());
        Assert.Equal(a1, anc[1].GetProperty("messageID").GetString());
        Assert.True(anc[1].GetProperty("inclusive").GetBoolean());

        var rootTree = await s.CallAsync(Methods.SessionTree, new { sessionID = root });
        var desc = rootTree.GetProperty("descendants").EnumerateArray().ToList();
        Assert.Contains(desc, d => d.GetProperty("sessionID").GetString() == child && d.GetProperty("relation").GetString() == "child");
        var f1 = desc.Single(d => d.GetProperty("sessionID").GetString() == fork1);
        Assert.Equal(fork2, f1.GetProperty("children")[0].GetProperty("sessionID").GetString());
        Assert.Equal(u1.Length, f1.GetProperty("messageID").GetString()!.Length);
    }

    [Fact]
    public async Task Tree_AfterTheSourceIsDeleted_ShowsTheMissingAncestorWithoutItsSession()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string root = await Conversation.NewSessionAsync(s, "root");
        string fork = (await s.CallAsync(Methods.SessionFork, new { sessionID = root })).GetProperty("id").GetString()!;
        await s.CallAsync(Methods.SessionDelete, new { sessionID = root });
        var tree = await s.CallAsync(Methods.SessionTree, new { sessionID = fork });
        var anc = tree.GetProperty("ancestors")[0];
        Assert.Equal(root, anc.GetProperty("sessionID").GetString());
        Assert.True(!anc.TryGetProperty("session", out var sess) || sess.ValueKind == JsonValueKind.Null);
    }

    [Fact]
    public async Task Search_FindsTextInsideAToolOutput_OfA2000MessageSession()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string sid = await Conversation.NewSessionAsync(s, "big");
        var store = s.Server.Context.Store;
        string? needleMsg = null;
        for (int i = 0; i < 1000; i++)
        {
            var u = await store.UpdateMessageAsync(Build.User(sid, 1000 + (i * 10)), CancellationToken.None);
            string uid = (string)u["id"]!;
            await store.UpdatePartAsync(Build.Text(sid, uid, $"please do step {i}"), null, CancellationToken.None);
            var a = await store.UpdateMessageAsync(Build.Assistant(sid, uid, 1001 + (i * 10)), CancellationToken.None);
            string aid = (string)a["id"]!;
            string output = i == 777 ? "build log ... ERROR: Zanzibar-Quux overflow at line 12 ..." : $"ok {i}";
            await store.UpdatePartAsync(Build.Tool(sid, aid, "bash", output), null, CancellationToken.None);
            if (i == 777)
            {
                needleMsg = aid;
            }
        }

        var hits = (await s.CallAsync(Methods.SessionSearch, new { query = "zanzibar-QUUX" })).EnumerateArray().ToList();
        var hit = Assert.Single(hits);
        Assert.Equal(needleMsg, hit.GetProperty("messageID").GetString());
        Assert.Contains("Zanzibar-Quux overflow", hit.GetProperty("snippet").GetString());
        Assert.Equal(sid, hit.GetProperty("session").GetProperty("id").GetString());
    }

    [Fact]
    public async Task Search_MatchesTitlesAndReasoning_CaseInsensitively_NewestFirst_AndSeesNewWrites()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        string s1 = await Conversation.NewSessionAsync(s, "Refactor the Parser");
        string s2 = await Conversation.NewSessionAsync(s, "other");
        long later = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 60_000;
        await Conversation.TurnAsync(s, s2, later, "hello", "the parser is fine");
        var hits = (await s.CallAsync(Methods.SessionSearch, new { query = "PARSER" })).EnumerateArray().ToList();
        Assert.Equal(2, hits.Count);
        Assert.Equal(s2, hits[0].GetProperty("session").GetProperty("id").GetString());
        Assert.Equal(s1, hits[1].GetProperty("session").GetProperty("id").GetString());
        Assert.False(hits[1].TryGetProperty("messageID", out _)); // a title match names no message

        // a write after the first search is found by the next one (the cache follows our own writes)
        string u = await Conversation.AddAsync(s, Build.User(s1, later + 1000), new System.Text.Json.Nodes.JsonObject
        {
            ["sessionID"] = s1, ["type"] = "reasoning", ["text"] = "Consider the parser's lookahead", ["time"] = new System.Text.Json.Nodes.JsonObject { ["start"] = 1 },
        });
        var again = (await s.CallAsync(Methods.SessionSearch, new { query = "lookahead" })).EnumerateArray().ToList();
        Assert.Equal(u, Assert.Single(again).GetProperty("messageID").GetString());
        Assert.Empty((await s.CallAsync(Methods.SessionSearch, new { query = "no such words anywhere" })).EnumerateArray());
    }

    [Fact]
    public async Task Search_ScopeAll_FindsOtherProjects_ProjectScopeDoesNot()
    {
        using var dirs = new TestDirs();
        string other = Path.Combine(dirs.Root, "other-repo");
        Directory.CreateDirectory(other);
        TestDirs.InitGitRepo(other);
        await using (var o = await InProcServer.StartAsync(dirs, initialize: false))
        {
            await o.InitializeAsync(other);
            await Conversation.NewSessionAsync(o, "elsewhere unicorn");
        }

        await using var s = await InProcServer.StartAsync(dirs);
        Assert.Empty((await s.CallAsync(Methods.SessionSearch, new { query = "unicorn" })).EnumerateArray());
        Assert.Single((await s.CallAsync(Methods.SessionSearch, new { query = "unicorn", scope = "all" })).EnumerateArray());
        var bad = await s.ErrorAsync(Methods.SessionSearch, new { query = "x", scope = "galaxy" });
        Assert.Equal("scope", bad.Field);
        var empty = await s.ErrorAsync(Methods.SessionSearch, new { query = " " });
        Assert.Equal("query", empty.Field);
    }
}
