using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Compaction;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Compaction;

public sealed class CompactionTests
{
    private static JsonObject Tokens(long total) => new() { ["total"] = total, ["input"] = 0, ["output"] = 0, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 } };

    [Fact]
    public void Overflow_AtTheExactBoundary_ContextMinusOutput()
    {
        var limits = new ModelLimits(100_000, null, 10_000); // usable = 100,000 − min(10,000, 32,000)
        var s = CompactionSettings.Default;
        Assert.Equal(90_000, limits.Usable(s));
        Assert.False(CompactionService.IsOverflow(Tokens(89_999), limits, s));
        Assert.True(CompactionService.IsOverflow(Tokens(90_000), limits, s));
        // without total: input + output + cache.read + cache.write
        var parts = new JsonObject { ["input"] = 80_000, ["output"] = 5_000, ["reasoning"] = 7, ["cache"] = new JsonObject { ["read"] = 4_000, ["write"] = 999 } };
        Assert.False(CompactionService.IsOverflow(parts, limits, s));
        parts["cache"]!["write"] = 1_000;
        Assert.True(CompactionService.IsOverflow(parts, limits, s));
    }

    [Fact]
    public void Overflow_WithAnInputLimit_UsesInputMinusReserved_AndConfiguredReserved()
    {
        var limits = new ModelLimits(400_000, 272_000, 128_000); // reserved = min(20,000, min(128,000, 32,000))
        var s = CompactionSettings.Default;
        Assert.False(CompactionService.IsOverflow(Tokens(251_999), limits, s));
        Assert.True(CompactionService.IsOverflow(Tokens(252_000), limits, s));
        var reserved = s with { Reserved = 50_000 };
        Assert.False(CompactionService.IsOverflow(Tokens(221_999), limits, reserved));
        Assert.True(CompactionService.IsOverflow(Tokens(222_000), limits, reserved));
        Assert.False(CompactionService.IsOverflow(Tokens(10_000_000), limits, s with { Auto = false }));
        Assert.False(CompactionService.IsOverflow(Tokens(10_000_000), new ModelLimits(0, null, 0), s));
    }

    [Fact]
    public void Settings_ConfigAndEnvironment_AreObeyedStrictly()
    {
        using var dirs = new TestDirs();
        string config = CompactionHarness.NewConfigDir(dirs, """{ "compaction": { "auto": true, "prune": true, "reserved": 1234, "tail_turns": 3, "preserve_recent_tokens": 777 } }""");
        var cfg = OpenCodeConfig.Load(new ConfigLocations(config), dirs.ProjectDir, null);
        var s = CompactionSettings.From(cfg, _ => null);
        Assert.Equal((true, true, 1234, 3, 777), (s.Auto, s.Prune, s.Reserved!.Value, s.TailTurns, s.PreserveRecentTokens!.Value));
        var env = new Dictionary<string, string> { [CompactionSettings.DisableAutocompactEnv] = "1", [CompactionSettings.DisablePruneEnv] = "true" };
        var off = CompactionSettings.From(cfg, k => env.GetValueOrDefault(k));
        Assert.False(off.Auto);
        Assert.False(off.Prune);
        Assert.Equal(SummarizerKind.Offline, off.Summarizer);
        // limits come from opencode.json first, then the built-in table
        string withModel = CompactionHarness.NewConfigDir(new TestDirs(), "{" + CompactionHarness.TinyModelConfig + "}");
        var cfg2 = OpenCodeConfig.Load(new ConfigLocations(withModel), dirs.ProjectDir, null);
        Assert.Equal(new ModelLimits(20_000, null, 1_000), ModelLimits.Resolve(cfg2, "test", "tiny"));
        Assert.Equal(200_000, ModelLimits.Resolve(cfg2, "anthropic", "claude-sonnet-4-5-20250929")!.Context);
        Assert.Null(ModelLimits.Resolve(cfg2, "x", "no-such-model"));
    }

    [Fact]
    public async Task Context_BeforeCompaction_IsEveryMessage_WithRealTokenCounts()
    {
        await using var h = await CompactionHarness.StartAsync();
        string u = await h.UserAsync("Hello, world! The quick brown fox jumps over the lazy dog. こんにちは");
        await h.AssistantAsync(u, h.Text("Hi."));
        var c = await h.ContextAsync();
        var msgs = c.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(2, msgs.Count);
        Assert.Equal(16, msgs[0].GetProperty("tokens").GetInt32()); // o200k_base, as STACK.md measured
        Assert.Equal(msgs.Sum(m => m.GetProperty("tokens").GetInt64()), c.GetProperty("total").GetInt64());
        Assert.Null(c.TryGetProperty("compactionMessageID", out var cm) ? cm.GetString() : null);
    }

    [Fact]
    public async Task Compact_WritesOpenCodeShapes_KeepsEverything_AndTheModelSeesSummaryPlusTail()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        var (u1, a1, u2, a2, u3) = await h.BigHeadConversationAsync();
        var before = await h.ContextAsync();
        var beforeIds = CompactionHarness.Ids(await h.MessagesAsync());

        var r = await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        await h.Client.WaitForNotificationAsync(Notifications.SessionCompacted, p => p.GetProperty("sessionID").GetString() == h.SessionId);
        Assert.Equal(u2, r.GetProperty("tailStartID").GetString());
        Assert.True(r.GetProperty("tokensAfter").GetInt64() < r.GetProperty("tokensBefore").GetInt64());
        Assert.Equal(before.GetProperty("total").GetInt64(), r.GetProperty("tokensBefore").GetInt64());

        // Nothing deleted: every earlier message is still listed, plus the pair.
        var after = await h.MessagesAsync();
        var afterIds = CompactionHarness.Ids(after);
        Assert.Equal(beforeIds, afterIds.Take(beforeIds.Count));
        Assert.Equal(beforeIds.Count + 2, afterIds.Count);
        var request = after[afterIds.Count - 2];
        var summary = after[afterIds.Count - 1];
        Assert.Equal("user", request.GetProperty("info").GetProperty("role").GetString());
        var cpart = request.GetProperty("parts").EnumerateArray().Single();
        Assert.Equal("compaction", cpart.GetProperty("type").GetString());
        Assert.False(cpart.GetProperty("auto").GetBoolean());
        Assert.Equal(u2, cpart.GetProperty("tail_start_id").GetString());
        var si = summary.GetProperty("info");
        Assert.True(si.GetProperty("summary").GetBoolean());
        Assert.Equal("compaction", si.GetProperty("mode").GetString());
        Assert.Equal("compaction", si.GetProperty("agent").GetString());
        Assert.Equal("stop", si.GetProperty("finish").GetString());
        Assert.Equal(request.GetProperty("info").GetProperty("id").GetString(), si.GetProperty("parentID").GetString());
        Assert.Equal(r.GetProperty("summary").GetString(), summary.GetProperty("parts")[0].GetProperty("text").GetString());

        // The model now sees: "What did we do so far?", the summary, then the tail u2, a2, u3.
        var ctx = await h.ContextAsync();
        var msgs = ctx.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["compaction", "summary", "tail", "tail", "tail"], msgs.Select(m => m.GetProperty("source").GetString()!).ToArray());
        Assert.Equal(ModelContext.CompactionQuestion, msgs[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal([u2, a2, u3], msgs.Skip(2).Select(m => m.GetProperty("messageID").GetString()!).ToArray());
        Assert.DoesNotContain(msgs, m => m.GetProperty("messageID").GetString() == u1 || m.GetProperty("messageID").GetString() == a1);
        Assert.Equal(r.GetProperty("tokensAfter").GetInt64(), ctx.GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task Uncompact_RemovesThePair_AndTheFullContextComesBack()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        await h.BigHeadConversationAsync();
        var before = await h.ContextAsync();
        var listBefore = (await h.MessagesAsync()).GetRawText();
        var r = await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        Assert.NotEqual(before.GetProperty("total").GetInt64(), (await h.ContextAsync()).GetProperty("total").GetInt64());

        var u = await h.Client.CallAsync(Methods.SessionUncompact, new { sessionID = h.SessionId, messageID = r.GetProperty("summaryMessageID").GetString() });
        Assert.Equal(2, u.GetProperty("removed").GetArrayLength());
        var restored = await h.ContextAsync();
        Assert.Equal(before.GetProperty("messages").GetRawText(), restored.GetProperty("messages").GetRawText());
        Assert.Equal(before.GetProperty("total").GetInt64(), u.GetProperty("total").GetInt64());
        Assert.Equal(listBefore, (await h.MessagesAsync()).GetRawText());

        var err = await h.Client.ErrorAsync(Methods.SessionUncompact, new { sessionID = h.SessionId, messageID = before.GetProperty("messages")[0].GetProperty("messageID").GetString() });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        Assert.Equal("messageID", err.Field);
    }

    [Fact]
    public async Task Compact_WhenSummaryPlusTailIsNotSmaller_FailsWithNoProgress_AndWritesNothing()
    {
        await using var h = await CompactionHarness.StartAsync();
        string u1 = await h.UserAsync("hi");
        await h.AssistantAsync(u1, h.Text("hello"));
        string u2 = await h.UserAsync("ok");
        await h.AssistantAsync(u2, h.Text("ok"));
        string u3 = await h.UserAsync("bye");
        var files = h.Dirs.StorageFiles();
        var err = await h.Client.ErrorAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.CompactionNoProgress, err.Code);
        Assert.Equal("CompactionNoProgress", err.Kind);
        Assert.True(err.Data!.Value.GetProperty("tokensAfter").GetInt64() >= err.Data.Value.GetProperty("tokensBefore").GetInt64());
        Assert.Equal(files, h.Dirs.StorageFiles());
        Assert.DoesNotContain(h.Client.Notifications, n => n.Method == Notifications.SessionCompacted);
    }

    [Fact]
    public async Task Compact_Twice_WithNothingNew_FailsTheSecondTime_InsteadOfLooping()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        await h.BigHeadConversationAsync();
        await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        int count = (await h.MessagesAsync()).GetArrayLength();
        var err = await h.Client.ErrorAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.CompactionNoProgress, err.Code);
        Assert.Equal(count, (await h.MessagesAsync()).GetArrayLength());
    }

    [Fact]
    public async Task Auto_AssistantUpdateOverflowing_CompactsOnce()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        var (_, _, _, _, u3) = await h.BigHeadConversationAsync();
        var a3 = h.Assistant(u3, input: 18_990); // + 10 output = 19,000 = usable (20,000 − 1,000)
        string a3id = await Conversation.AddAsync(h.Client, a3, h.Text("Handled unicode escapes."));
        await h.Client.WaitForNotificationAsync(Notifications.SessionCompacted);
        var list = await h.MessagesAsync();
        var requests = list.EnumerateArray().Where(m => m.GetProperty("parts").EnumerateArray().Any(p => p.GetProperty("type").GetString() == "compaction")).ToList();
        var part = Assert.Single(requests).GetProperty("parts")[0];
        Assert.True(part.GetProperty("auto").GetBoolean());

        // Rewriting the same message (as an agent does when it completes) does not compact again.
        a3["id"] = a3id;
        a3["time"]!["completed"] = h.Tick();
        await h.Client.CallAsync(Methods.MessageUpdate, new { info = Build.Json(a3) });
        Assert.Single((await h.MessagesAsync()).EnumerateArray(), m => m.GetProperty("parts").EnumerateArray().Any(p => p.GetProperty("type").GetString() == "compaction"));
    }

    [Fact]
    public async Task Auto_SeesAConfigChange_OnceItsLastReadIsOlderThanTheReuseWindow()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        var (_, _, _, _, u3) = await h.BigHeadConversationAsync();
        await Conversation.AddAsync(h.Client, h.Assistant(u3, input: 100), h.Text("under the limit")); // reads the config
        string file = Directory.GetFiles(h.ConfigDir, "*.json*").Single();
        await File.WriteAllTextAsync(file, """{ "compaction": { "auto": false }, """ + CompactionHarness.TinyModelConfig + "}");
        await Task.Delay(CompactionService.ConfigReuse + TimeSpan.FromMilliseconds(200));
        int before = (await h.MessagesAsync()).GetArrayLength();
        await Conversation.AddAsync(h.Client, h.Assistant(u3, input: 50_000), h.Text("over it, but auto is now off"));
        Assert.Equal(before + 1, (await h.MessagesAsync()).GetArrayLength());
        Assert.DoesNotContain(h.Client.Notifications, n => n.Method == Notifications.SessionCompacted);
    }

    [Fact]
    public async Task Auto_ThatFails_AnswersTheWrite_SendsSessionError_AndWritesNoCompaction()
    {
        using var llm = new FakeOpenAi([], hang: true);
        await using var h = await CompactionHarness.StartAsync(CompactionHarness.ModelConfig(llm.BaseUrl, "slow", 500));
        var (_, _, _, _, u3) = await h.BigHeadConversationAsync();
        int before = (await h.MessagesAsync()).GetArrayLength();

        // Over the limit: the automatic compaction runs, its summarizer never answers, and the write still succeeds.
        string a3 = await Conversation.AddAsync(h.Client, h.Assistant(u3, input: 18_990), h.Text("over the limit"));
        var error = await h.Client.WaitForNotificationAsync(Notifications.SessionError);
        Assert.Equal(h.SessionId, error.GetProperty("sessionID").GetString());
        Assert.Equal("UnknownError", error.GetProperty("error").GetProperty("name").GetString());
        Assert.StartsWith("Automatic compaction failed: ", error.GetProperty("error").GetProperty("data").GetProperty("message").GetString());
        Assert.Contains("did not finish", error.GetProperty("error").GetProperty("data").GetProperty("message").GetString());

        var list = await h.MessagesAsync();
        Assert.Equal(before + 1, list.GetArrayLength());
        Assert.Equal(a3, list[list.GetArrayLength() - 1].GetProperty("info").GetProperty("id").GetString());
        Assert.DoesNotContain(list.EnumerateArray(), m => m.GetProperty("parts").EnumerateArray().Any(p => p.GetProperty("type").GetString() == "compaction"));
        Assert.DoesNotContain(h.Client.Notifications, n => n.Method == Notifications.SessionCompacted);
    }

    [Fact]
    public async Task Auto_UnderTheLimit_DoesNotCompact()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        var (_, _, _, _, u3) = await h.BigHeadConversationAsync();
        await Conversation.AddAsync(h.Client, h.Assistant(u3, input: 18_989), h.Text("done"));
        Assert.DoesNotContain(h.Client.Notifications, n => n.Method == Notifications.SessionCompacted);
        Assert.False((await h.ContextAsync()).TryGetProperty("compactionMessageID", out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Auto_ConfiguredOff_NeverCompacts_EvenOnAProviderOverflowError(bool overflowError)
    {
        await using var h = await CompactionHarness.StartAsync("""{ "compaction": { "auto": false }, """ + CompactionHarness.TinyModelConfig + "}");
        var (_, _, _, _, u3) = await h.BigHeadConversationAsync();
        var a3 = h.Assistant(u3, input: 50_000);
        if (overflowError)
        {
            a3["error"] = new JsonObject { ["name"] = "ContextOverflowError", ["data"] = new JsonObject { ["message"] = "prompt is too long" } };
        }

        int before = (await h.MessagesAsync()).GetArrayLength();
        await Conversation.AddAsync(h.Client, a3, h.Text("..."));
        Assert.Equal(before + 1, (await h.MessagesAsync()).GetArrayLength());
        Assert.DoesNotContain(h.Client.Notifications, n => n.Method == Notifications.SessionCompacted);
        // a manual compaction is still allowed
        await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
    }

    [Fact]
    public async Task Auto_ProviderOverflowError_CompactsWhenAllowed_MarkedOverflow()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        var (_, _, _, _, u3) = await h.BigHeadConversationAsync();
        var a3 = h.Assistant(u3, input: 0);
        a3["error"] = new JsonObject { ["name"] = "ContextOverflowError", ["data"] = new JsonObject { ["message"] = "prompt is too long" } };
        await Conversation.AddAsync(h.Client, a3);
        await h.Client.WaitForNotificationAsync(Notifications.SessionCompacted);
        var part = (await h.MessagesAsync()).EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray()).Single(p => p.GetProperty("type").GetString() == "compaction");
        Assert.True(part.GetProperty("overflow").GetBoolean());
    }

    [Fact]
    public async Task Auto_DisabledByEnvironment_NeverCompacts()
    {
        using var dirs = new TestDirs();
        string config = CompactionHarness.NewConfigDir(dirs, "{" + CompactionHarness.TinyModelConfig + "}");
        var store = new Core.Sessions.SessionStore(new Core.Storage.StoreLayout(dirs.DataDir));
        store.Initialize();
        var project = Core.Projects.ProjectResolver.Resolve(dirs.ProjectDir);
        var env = new Dictionary<string, string> { [CompactionSettings.DisableAutocompactEnv] = "true" };
        var service = new CompactionService(store, () => project, new ConfigLocations(config), k => env.GetValueOrDefault(k));
        store.MessageWrittenHook = service;
        var session = await store.CreateSessionAsync(project, "env", null, default);
        string sid = (string)session["id"]!;
        var u = Build.User(sid, 1000);
        u["model"] = new JsonObject { ["providerID"] = "test", ["modelID"] = "tiny" };
        await store.UpdateMessageAsync(u, default);
        var a = Build.Assistant(sid, (string)u["id"]!, 2000);
        a["providerID"] = "test";
        a["modelID"] = "tiny";
        a["tokens"]!["input"] = 1_000_000;
        await store.UpdateMessageAsync(a, default);
        Assert.Equal(2, store.ListMessages(sid).Count);
        Assert.Null(await service.AfterStepFinishAsync(sid, (string)a["id"]!, default));
        Assert.Equal(2, store.ListMessages(sid).Count);
    }

    [Fact]
    public async Task Prune_MarksExactlyThePartsBeyondTheProtectedWindow()
    {
        await using var h = await CompactionHarness.StartAsync();
        string big = CompactionHarness.TextOfTokens(15_000);
        int t = TokenCounter.Count(big);
        Assert.InRange(t, 14_000, 19_000);
        string u1 = await h.UserAsync("one");
        var pa = h.Tool("bash", big, new JsonObject { ["command"] = "a" });
        var pb = h.Tool("bash", big, new JsonObject { ["command"] = "b" });
        await h.AssistantAsync(u1, pa, pb);
        string u2 = await h.UserAsync("two");
        var pc = h.Tool("bash", big, new JsonObject { ["command"] = "c" });
        var pd = h.Tool("bash", big, new JsonObject { ["command"] = "d" });
        var skill = h.Tool("skill", big, new JsonObject { ["name"] = "s" });
        await h.AssistantAsync(u2, pc, pd, skill);
        string u3 = await h.UserAsync("three");
        var pe = h.Tool("bash", big, new JsonObject { ["command"] = "e" });
        await h.AssistantAsync(u3, pe);
        string u4 = await h.UserAsync("four");
        var pf = h.Tool("bash", big, new JsonObject { ["command"] = "f" });
        await h.AssistantAsync(u4, pf);

        var r = await h.Client.CallAsync(Methods.SessionPrune, new { sessionID = h.SessionId });
        Assert.True(r.GetProperty("applied").GetBoolean());
        // Newest two turns are skipped (e, f); walking back: skill is protected, d and c fill 2t < 40k, then b and a
        // are beyond the window: 2t > 20k, so they are marked.
        string Id(JsonObject p) => (string)p["id"]!;
        var marked = r.GetProperty("partIDs").EnumerateArray().Select(x => x.GetString()!).Order().ToList();
        Assert.Equal(new[] { Id(pa), Id(pb) }.Order().ToList(), marked);
        var parts = (await h.MessagesAsync()).EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray()).ToDictionary(p => p.GetProperty("id").GetString()!);
        foreach (var p in new[] { pa, pb, pc, pd, skill, pe, pf })
        {
            bool compacted = parts[Id(p)].GetProperty("state").GetProperty("time").TryGetProperty("compacted", out _);
            Assert.Equal(p == pa || p == pb, compacted);
            Assert.Equal(big, parts[Id(p)].GetProperty("state").GetProperty("output").GetString()); // the output itself stays on disk
        }

        var ctx = await h.ContextAsync();
        var tools = ctx.GetProperty("messages").EnumerateArray().SelectMany(m => m.GetProperty("content").EnumerateArray()).Where(c => c.GetProperty("type").GetString() == "tool").ToList();
        Assert.Equal(2, tools.Count(c => c.GetProperty("output").GetString() == ModelContext.ClearedToolOutput));

        // A second prune stops at the already-pruned output and marks nothing new.
        var again = await h.Client.CallAsync(Methods.SessionPrune, new { sessionID = h.SessionId });
        Assert.False(again.GetProperty("applied").GetBoolean());
    }

    [Fact]
    public async Task Prune_UnderTheMinimum_MarksNothing()
    {
        await using var h = await CompactionHarness.StartAsync();
        string big = CompactionHarness.TextOfTokens(15_000);
        string u1 = await h.UserAsync("one");
        var pa = h.Tool("bash", big, new JsonObject { ["command"] = "a" });
        var pb = h.Tool("bash", big, new JsonObject { ["command"] = "b" });
        var pc = h.Tool("bash", big, new JsonObject { ["command"] = "c" });
        await h.AssistantAsync(u1, pa, pb, pc); // 3t: only one part (t < 20k) is beyond 40k
        await h.UserAsync("two");
        await h.UserAsync("three");
        var files = h.Dirs.StorageFiles().Select(f => File.ReadAllText(Path.Combine(h.Dirs.Storage, f))).ToList();
        var r = await h.Client.CallAsync(Methods.SessionPrune, new { sessionID = h.SessionId });
        Assert.False(r.GetProperty("applied").GetBoolean());
        Assert.Single(r.GetProperty("partIDs").EnumerateArray());
        Assert.Equal(files, h.Dirs.StorageFiles().Select(f => File.ReadAllText(Path.Combine(h.Dirs.Storage, f))).ToList());
    }
}
