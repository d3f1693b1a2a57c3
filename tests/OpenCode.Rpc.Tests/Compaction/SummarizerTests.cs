using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nerdbank.Streams;
using OpenCode.Rpc.Core.Compaction;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using StreamJsonRpc;
using Xunit.Abstractions;

namespace OpenCode.Rpc.Tests.Compaction;

public sealed class SummarizerTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Offline_Summary_HoldsTheGoal_TheFiles_TheFailures_AndTheLastRequest()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        string u1 = await h.UserAsync("Build a JSON parser in src/parser.ts. You must not use any dependencies.\nAlways keep functions under 40 lines.");
        await h.AssistantAsync(u1,
            h.Tool("read", CompactionHarness.TextOfTokens(6000), new JsonObject { ["filePath"] = "/p/src/parser.ts" }),
            h.Tool("read", "x", new JsonObject { ["filePath"] = "/p/src/parser.ts" }),
            h.Tool("edit", "ok", new JsonObject { ["filePath"] = "/p/src/parser.ts", ["oldString"] = "a", ["newString"] = "b" }),
            h.FailedTool("bash", "npm ERR! missing script: test\nmore", new JsonObject { ["command"] = "npm test" }),
            h.Patch("/p/src/parser.ts", "/p/src/lexer.ts"),
            h.Text("I decided to use a recursive descent parser instead of regexes."));
        string u2 = await h.UserAsync("Now add tests for numbers.");
        await h.AssistantAsync(u2, h.Tool("write", "ok", new JsonObject { ["filePath"] = "/p/test/parser.test.ts", ["content"] = "x" }), h.Text("Added tests."));
        await h.UserAsync("Also handle unicode escapes in strings.");
        await h.UserAsync("And then run the benchmarks.");

        var r = await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId, summarizer = "offline" });
        string s = r.GetProperty("summary").GetString()!;
        output.WriteLine(s);
        Assert.Equal("offline", r.GetProperty("summarizer").GetString());
        foreach (var section in new[] { "## Goal", "## Constraints & Preferences", "## Progress", "### Done", "### In Progress", "### Blocked", "## Key Decisions", "## Next Steps", "## Critical Context", "## Relevant Files" })
        {
            Assert.Contains(section + "\n", s);
        }

        string Section(string name) => s.Split(name + "\n", 2)[1].Split("\n#", 2)[0];
        Assert.Contains("Build a JSON parser in src/parser.ts", Section("## Goal"));
        Assert.Contains("You must not use any dependencies.", Section("## Constraints & Preferences"));
        Assert.Contains("Always keep functions under 40 lines.", Section("## Constraints & Preferences"));
        Assert.Contains("Edited /p/src/parser.ts", Section("### Done"));
        Assert.Contains("Ran `npm test`", Section("### Blocked"));
        Assert.Contains("missing script: test", Section("### Blocked"));
        Assert.Contains("recursive descent parser instead of regexes", Section("## Key Decisions"));
        // The tail keeps the last two user turns verbatim; the summary still names the newest unanswered request.
        Assert.Contains("And then run the benchmarks.", Section("## Next Steps"));
        string files = Section("## Relevant Files");
        Assert.Contains("- /p/src/parser.ts (edited 1, patched 1, read 2)", files);
        Assert.Contains("- /p/src/lexer.ts (patched 1)", files);
        Assert.Contains("- /p/test/parser.test.ts (written 1)", files);
    }

    [Fact]
    public async Task Model_StreamsFromAnOpenAICompatibleEndpoint_WithOpenCodesPrompt_AndReportsProgress()
    {
        using var llm = new FakeOpenAi(["## Goal\n- Build", " a JSON parser\n\n## Next Steps\n", "- handle unicode"]);
        string config = $$"""
            { "agent": { "compaction": { "model": "local/summarizer-1" } },
              "provider": { "local": { "options": { "baseURL": "{{llm.BaseUrl}}", "apiKey": "{env:OCRPC_TEST_KEY_UNSET}" } },
                            "test": { "models": { "tiny": { "limit": { "context": 20000, "output": 1000 } } } } } }
            """;
        await using var h = await CompactionHarness.StartAsync(config);
        await h.BigHeadConversationAsync();
        var r = await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId, workDoneToken = "tok-1" });
        Assert.Equal("model", r.GetProperty("summarizer").GetString());
        Assert.Equal("## Goal\n- Build a JSON parser\n\n## Next Steps\n- handle unicode", r.GetProperty("summary").GetString());

        var body = JsonNode.Parse(Assert.Single(llm.Requests))!;
        Assert.Equal("summarizer-1", (string?)body["model"]);
        Assert.True((bool?)body["stream"]);
        var messages = (JsonArray)body["messages"]!;
        Assert.Equal("system", (string?)messages[0]!["role"]);
        Assert.Contains("summarizing conversations", messages[0]!["content"]!.ToJsonString());
        Assert.Contains("Build a JSON parser in src/parser.ts", messages[1]!["content"]!.ToJsonString());
        string last = messages[^1]!["content"]!.ToJsonString();
        Assert.Contains("Create a new anchored summary", last);
        Assert.Contains("## Relevant Files", last);
        Assert.DoesNotContain(messages, m => m!["content"]!.ToJsonString().Contains("Also handle unicode escapes", StringComparison.Ordinal)); // the tail is not summarized

        var summary = (await h.MessagesAsync()).EnumerateArray().Last().GetProperty("info");
        Assert.Equal("local", summary.GetProperty("providerID").GetString());
        Assert.Equal("summarizer-1", summary.GetProperty("modelID").GetString());
        var progress = h.Client.Notifications.Where(n => n.Method == Notifications.Progress).Select(n => n.Params).ToList();
        Assert.All(progress, p => Assert.Equal("tok-1", p.GetProperty("token").GetString()));
        Assert.Equal("begin", progress[0].GetProperty("value").GetProperty("kind").GetString());
        Assert.Equal("end", progress[^1].GetProperty("value").GetProperty("kind").GetString());
        Assert.Contains(progress, p => p.GetProperty("value").TryGetProperty("message", out var m) && m.GetString()!.Contains("characters received", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Model_EndpointThatNeverAnswers_TimesOut_AndWritesNothing()
    {
        using var llm = new FakeOpenAi([], hang: true);
        await using var h = await CompactionHarness.StartAsync(CompactionHarness.ModelConfig(llm.BaseUrl, "slow", 700));
        await h.BigHeadConversationAsync();
        var files = h.Dirs.StorageFiles();
        var err = await h.Client.ErrorAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.SummarizerFailed, err.Code);
        Assert.Contains("did not finish", err.Message);
        Assert.Equal(files, h.Dirs.StorageFiles());
    }

    [Fact]
    public async Task Client_SummarizesWithTheClientsOwnModel_OverAServerToClientRequest()
    {
        using var dirs = new TestDirs();
        string configDir = CompactionHarness.NewConfigDir(dirs, "{" + CompactionHarness.TinyModelConfig + "}");
        var (serverStream, clientStream) = FullDuplexStream.CreatePair();
        using var server = RpcServer.Start(serverStream, serverStream, new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: configDir), _ => { });
        using var rpc = new JsonRpc(new HeaderDelimitedMessageHandler(clientStream, clientStream, RpcTestClient.ClientFormatter()));
        var asked = new List<JsonElement>();
        var handler = new Func<JsonElement, object>(p =>
        {
            asked.Add(p.Clone());
            return new { text = "## Goal\n- from the client's model" };
        });
        rpc.AddLocalRpcMethod(handler.Method, handler.Target, new JsonRpcMethodAttribute(Methods.CompactionSummarize) { UseSingleObjectParameterDeserialization = true });
        rpc.StartListening();
        await rpc.InvokeWithParameterObjectAsync<JsonElement>(Methods.Initialize, new { directory = dirs.ProjectDir });
        var session = await rpc.InvokeWithParameterObjectAsync<JsonElement>(Methods.SessionCreate, new { title = "c" });
        string sid = session.GetProperty("id").GetString()!;
        string big = CompactionHarness.TextOfTokens(3000);
        var u = Build.User(sid, 1000);
        string uid = (await rpc.InvokeWithParameterObjectAsync<JsonElement>(Methods.MessageUpdate, new { info = Build.Json(u) })).GetProperty("id").GetString()!;
        var part = Build.Text(sid, uid, "Summarize me: " + big);
        await rpc.InvokeWithParameterObjectAsync<JsonElement>(Methods.PartUpdate, new { part = Build.Json(part) });

        var r = await rpc.InvokeWithParameterObjectAsync<JsonElement>(Methods.SessionCompact, new { sessionID = sid, summarizer = "client" }).WaitAsync(RpcTestClient.Timeout);
        Assert.Equal("client", r.GetProperty("summarizer").GetString());
        Assert.Equal("## Goal\n- from the client's model", r.GetProperty("summary").GetString());
        var p = Assert.Single(asked);
        Assert.Equal(sid, p.GetProperty("sessionID").GetString());
        Assert.Contains("Create a new anchored summary", p.GetProperty("prompt").GetString());
        Assert.StartsWith("You are a helpful AI assistant tasked with summarizing", p.GetProperty("system").GetString());
        Assert.StartsWith("Summarize me:", p.GetProperty("messages")[0].GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task RealOpenCode1165_ExportsOurCompactedSession_WithTheCompactionPartAndSummary()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        await h.BigHeadConversationAsync();
        var r = await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        string home = Path.Combine(h.Dirs.Root, "ochome");
        Directory.CreateDirectory(Path.Combine(home, "data"));
        Directory.CreateSymbolicLink(Path.Combine(home, "data", "opencode"), h.Dirs.DataDir);

        var psi = new ProcessStartInfo("bash", [Path.Combine(RepoPaths.Shared, "tools", "opencode-ref.sh"), "export", h.SessionId])
        {
            WorkingDirectory = h.Dirs.ProjectDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["OCREF_VERSION"] = "1.1.65";
        psi.Environment["OCREF_HOME"] = home;
        psi.Environment["OCREF_TIMEOUT"] = "180";
        using var oc = Process.Start(psi)!;
        var so = oc.StandardOutput.ReadToEndAsync();
        var se = oc.StandardError.ReadToEndAsync();
        await oc.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(300));
        string stdout = await so;
        output.WriteLine(await se);
        Assert.Equal(0, oc.ExitCode);
        var export = JsonNode.Parse(stdout[stdout.IndexOf('{')..])!;
        Assert.Equal(h.SessionId, (string?)export["info"]!["id"]);
        var messages = (JsonArray)export["messages"]!;
        var ours = await h.MessagesAsync();
        Assert.Equal(ours.GetArrayLength(), messages.Count);
        var request = messages.Single(m => ((JsonArray)m!["parts"]!).Any(p => (string?)p!["type"] == "compaction"))!;
        var cpart = ((JsonArray)request["parts"]!).Single()!;
        Assert.False((bool)cpart["auto"]!);
        var summary = messages.Single(m => (bool?)m!["info"]!["summary"] == true)!;
        Assert.Equal(r.GetProperty("compactionMessageID").GetString(), (string?)summary["info"]!["parentID"]);
        Assert.Equal("compaction", (string?)summary["info"]!["mode"]);
        Assert.Equal("stop", (string?)summary["info"]!["finish"]);
        Assert.Equal(r.GetProperty("summary").GetString(), (string?)summary["parts"]![0]!["text"]);
    }
}

/// <summary>A real HTTP server on 127.0.0.1 speaking OpenAI chat-completions with SSE streaming.</summary>
internal sealed class FakeOpenAi : IDisposable
{
    private readonly HttpListener listener = new();
    private readonly string[] chunks;
    private readonly bool hang;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;

    public FakeOpenAi(string[] chunks, bool hang = false)
    {
        this.chunks = chunks;
        this.hang = hang;
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        BaseUrl = $"http://127.0.0.1:{port}/v1";
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        loop = Task.Run(ServeAsync);
    }

    public string BaseUrl { get; }

    public List<string> Requests { get; } = [];

    private async Task ServeAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            HttpListenerContext c;
            try
            {
                c = await listener.GetContextAsync();
            }
            catch (Exception)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(c));
        }
    }

    private async Task HandleAsync(HttpListenerContext c)
    {
        using var reader = new StreamReader(c.Request.InputStream);
        string body = await reader.ReadToEndAsync();
        lock (Requests)
        {
            Requests.Add(body);
        }

        if (c.Request.Url!.AbsolutePath != "/v1/chat/completions")
        {
            c.Response.StatusCode = 404;
            c.Response.Close();
            return;
        }

        if (hang)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }

            c.Response.Abort();
            return;
        }

        c.Response.ContentType = "text/event-stream";
        c.Response.SendChunked = true;
        var o = c.Response.OutputStream;
        async Task Send(string data)
        {
            await o.WriteAsync(Encoding.UTF8.GetBytes("data: " + data + "\n\n"));
            await o.FlushAsync();
        }

        JsonObject Chunk(JsonObject delta, string? finish) => new()
        {
            ["id"] = "chatcmpl-1", ["object"] = "chat.completion.chunk", ["created"] = 1_700_000_000, ["model"] = "summarizer-1",
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
        };
        await Send(Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null).ToJsonString());
        foreach (var t in chunks)
        {
            await Send(Chunk(new JsonObject { ["content"] = t }, null).ToJsonString());
        }

        await Send(Chunk(new JsonObject(), "stop").ToJsonString());
        await Send("[DONE]");
        c.Response.Close();
    }

    public void Dispose()
    {
        stop.Cancel();
        // Close alone: on Unix, Stop then Close removes the listener twice, and the second removal binds the
        // port again, failing ("Address already in use") when another test has taken it in between.
        listener.Close();
        try
        {
            loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }
}

public sealed class SummarizerCancellationTests
{
    [Fact]
    public async Task Model_CancelledByTheClient_AnswersRequestCancelled_AndWritesNothing()
    {
        using var llm = new FakeOpenAi([], hang: true);
        await using var h = await CompactionHarness.StartAsync(CompactionHarness.ModelConfig(llm.BaseUrl, "slow"));
        await h.BigHeadConversationAsync();
        var files = h.Dirs.StorageFiles();
        using var cts = new CancellationTokenSource();
        var call = h.Client.Client.InvokeWithParameterObjectAsync<JsonElement>(Methods.SessionCompact, new { sessionID = h.SessionId }, cts.Token);
        for (int i = 0; i < 600 && llm.Requests.Count == 0; i++)
        {
            await Task.Delay(50); // wait until the summary request reached the endpoint
        }

        Assert.Single(llm.Requests);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(RpcTestClient.Timeout));
        var frame = await WaitForErrorFrameAsync(h.Client);
        Assert.Equal(ErrorCodes.RequestCancelled, frame.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(files, h.Dirs.StorageFiles());
    }

    private static async Task<JsonElement> WaitForErrorFrameAsync(RpcTestClient c)
    {
        for (int i = 0; i < 600; i++)
        {
            if (c.Received.LastOrDefault(f => f.TryGetProperty("error", out _)) is { ValueKind: JsonValueKind.Object } f)
            {
                return f;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("no error frame");
    }
}
