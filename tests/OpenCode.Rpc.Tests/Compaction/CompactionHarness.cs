using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Compaction;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Compaction;

/// <summary>A temp project, data dir and global config dir (never the real home), an in-proc server and one
/// session; helpers that write a conversation the way an agent does through the sidecar.</summary>
public sealed class CompactionHarness : IAsyncDisposable
{
    private long clock = 1_795_000_000_000;

    private CompactionHarness(TestDirs dirs, RpcTestClient client, string configDir, string sessionId)
    {
        Dirs = dirs;
        Client = client;
        ConfigDir = configDir;
        SessionId = sessionId;
    }

    public TestDirs Dirs { get; }

    public RpcTestClient Client { get; }

    public string ConfigDir { get; }

    public string SessionId { get; }

    /// <summary>A model with a tiny window: usable = 20,000 − 1,000 = 19,000 tokens.</summary>
    public const string TinyModelConfig = """
        "provider": { "test": { "models": { "tiny": { "limit": { "context": 20000, "output": 1000 } } } } }
        """;

    /// <summary>opencode.json with the test/tiny model and <c>agent.compaction.model</c> = local/<paramref name="model"/>,
    /// an OpenAI-compatible endpoint at <paramref name="baseUrl"/> (giving up after <paramref name="timeoutMs"/> when set).</summary>
    public static string ModelConfig(string baseUrl, string model, int? timeoutMs = null) => $$"""
        { "agent": { "compaction": { "model": "local/{{model}}" } },
          "provider": { "local": { "options": { "baseURL": "{{baseUrl}}"{{(timeoutMs is { } t ? $", \"timeout\": {t}" : "")}} } },
                        "test": { "models": { "tiny": { "limit": { "context": 20000, "output": 1000 } } } } } }
        """;

    public static string NewConfigDir(TestDirs dirs, string? globalConfig)
    {
        string configDir = Path.Combine(dirs.Root, "config", "opencode");
        Directory.CreateDirectory(configDir);
        if (globalConfig is not null)
        {
            File.WriteAllText(Path.Combine(configDir, "opencode.json"), globalConfig);
        }

        return configDir;
    }

    public static async Task<CompactionHarness> StartAsync(string? globalConfig = null)
    {
        var dirs = new TestDirs();
        string configDir = NewConfigDir(dirs, globalConfig);
        var client = await InProcServer.StartAsync(dirs, options: new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: configDir));
        string sid = await Conversation.NewSessionAsync(client, "compaction test");
        return new CompactionHarness(dirs, client, configDir, sid);
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        Dirs.Dispose();
    }

    public long Tick() => clock += 1000;

    public JsonObject User(string model = "tiny")
    {
        var u = Build.User(SessionId, Tick());
        u["model"] = new JsonObject { ["providerID"] = "test", ["modelID"] = model };
        return u;
    }

    public JsonObject Assistant(string parent, long input = 100, string model = "tiny")
    {
        var a = Build.Assistant(SessionId, parent, Tick());
        a["providerID"] = "test";
        a["modelID"] = model;
        a["tokens"]!["input"] = input;
        return a;
    }

    public Task<string> UserAsync(string text) => Conversation.AddAsync(Client, User(), Build.Text(SessionId, "", text));

    public Task<string> AssistantAsync(string parent, params JsonObject[] parts) => Conversation.AddAsync(Client, Assistant(parent), parts);

    public JsonObject Text(string text) => Build.Text(SessionId, "", text);

    public JsonObject Tool(string tool, string output, JsonObject? input = null)
    {
        var p = Build.Tool(SessionId, "", tool, output, input);
        p.Insert(0, "id", Core.Ids.Identifier.Ascending(Core.Ids.Identifier.Part)); // known up front, so tests can name it
        return p;
    }

    public JsonObject FailedTool(string tool, string error, JsonObject input) => new()
    {
        ["sessionID"] = SessionId,
        ["messageID"] = "",
        ["type"] = "tool",
        ["callID"] = "call_" + Guid.NewGuid().ToString("N")[..8],
        ["tool"] = tool,
        ["state"] = new JsonObject { ["status"] = "error", ["input"] = input, ["error"] = error, ["time"] = new JsonObject { ["start"] = 1, ["end"] = 2 } },
    };

    public JsonObject Patch(params string[] files) => new()
    {
        ["sessionID"] = SessionId,
        ["messageID"] = "",
        ["type"] = "patch",
        ["hash"] = "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        ["files"] = new JsonArray(files.Select(f => (JsonNode?)f).ToArray()),
    };

    /// <summary>Text of about <paramref name="tokens"/> o200k tokens (checked, not guessed).</summary>
    public static string TextOfTokens(int tokens, string word = "alpha")
    {
        var sb = new StringBuilder();
        for (int i = 0; i < tokens; i++)
        {
            sb.Append(' ').Append(word).Append(i % 10);
        }

        string s = sb.ToString();
        int n = TokenCounter.Count(s);
        return n >= tokens ? s[..(int)(s.Length * (double)tokens / n)] : s;
    }

    /// <summary>A conversation whose head is big (a 6,000-token read) and whose last two turns are small.</summary>
    public async Task<(string U1, string A1, string U2, string A2, string U3)> BigHeadConversationAsync()
    {
        string u1 = await UserAsync("Build a JSON parser in src/parser.ts. You must not use any dependencies.");
        string a1 = await AssistantAsync(u1, Tool("read", TextOfTokens(6000), new JsonObject { ["filePath"] = "/p/src/parser.ts" }), Text("I read the file. I decided to use a recursive descent parser instead of regexes."));
        string u2 = await UserAsync("Now add tests for numbers.");
        string a2 = await AssistantAsync(u2, Tool("write", "ok", new JsonObject { ["filePath"] = "/p/test/parser.test.ts", ["content"] = "x" }), Text("Added tests."));
        string u3 = await UserAsync("Also handle unicode escapes in strings.");
        return (u1, a1, u2, a2, u3);
    }

    public async Task<JsonElement> ContextAsync() => await Client.CallAsync(Methods.SessionContext, new { sessionID = SessionId });

    public async Task<JsonElement> MessagesAsync() => await Client.CallAsync(Methods.MessageList, new { sessionID = SessionId });

    public static List<string> Ids(JsonElement list) => list.EnumerateArray().Select(m => m.GetProperty("info").GetProperty("id").GetString()!).ToList();
}
