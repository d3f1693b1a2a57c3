using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Store;

/// <summary>Messages and parts in OpenCode 1.1.65's shapes and key order (reference §2.2, §2.3).</summary>
public static class Samples
{
    public static JsonObject User(string sessionId, long created, string? id = null)
    {
        var o = new JsonObject();
        if (id is not null)
        {
            o["id"] = id;
        }

        o["sessionID"] = sessionId;
        o["role"] = "user";
        o["time"] = new JsonObject { ["created"] = created };
        o["agent"] = "build";
        o["model"] = new JsonObject { ["providerID"] = "fake", ["modelID"] = "fake-model" };
        o["summary"] = new JsonObject { ["diffs"] = new JsonArray() };
        return o;
    }

    public static JsonObject Assistant(string sessionId, string parentId, long created, string cwd, string? id = null)
    {
        var o = new JsonObject();
        if (id is not null)
        {
            o["id"] = id;
        }

        o["sessionID"] = sessionId;
        o["role"] = "assistant";
        o["time"] = new JsonObject { ["created"] = created, ["completed"] = created + 500 };
        o["parentID"] = parentId;
        o["modelID"] = "fake-model";
        o["providerID"] = "fake";
        o["mode"] = "build";
        o["agent"] = "build";
        o["path"] = new JsonObject { ["cwd"] = cwd, ["root"] = cwd };
        o["cost"] = 0.0123;
        o["tokens"] = Tokens();
        o["finish"] = "stop";
        return o;
    }

    public static JsonObject Tokens() => new()
    {
        ["input"] = 100, ["output"] = 10, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 },
    };

    private static JsonObject Part(string sessionId, string messageId, string type, string? id)
    {
        var o = new JsonObject();
        if (id is not null)
        {
            o["id"] = id;
        }

        o["sessionID"] = sessionId;
        o["messageID"] = messageId;
        o["type"] = type;
        return o;
    }

    public static JsonObject Text(string sessionId, string messageId, string text, string? id = null)
    {
        var p = Part(sessionId, messageId, "text", id);
        p["text"] = text;
        return p;
    }

    public static JsonObject StepStart(string sessionId, string messageId, string? id = null)
    {
        var p = Part(sessionId, messageId, "step-start", id);
        p["snapshot"] = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        return p;
    }

    public static JsonObject Tool(string sessionId, string messageId, string file, string? id = null)
    {
        var p = Part(sessionId, messageId, "tool", id);
        p["callID"] = "call_1";
        p["tool"] = "write";
        p["state"] = new JsonObject
        {
            ["status"] = "completed",
            ["input"] = new JsonObject { ["filePath"] = file, ["content"] = "héllo 日本 😀\n" },
            ["output"] = "",
            ["title"] = "hello.txt",
            ["metadata"] = new JsonObject { ["exists"] = false },
            ["time"] = new JsonObject { ["start"] = 1795468729000L, ["end"] = 1795468729050L },
        };
        return p;
    }

    public static JsonObject StepFinish(string sessionId, string messageId, string? id = null)
    {
        var p = Part(sessionId, messageId, "step-finish", id);
        p["reason"] = "stop";
        p["snapshot"] = "9d1c0000000000000000000000000000000000aa";
        p["cost"] = 0;
        p["tokens"] = Tokens();
        return p;
    }

    public static JsonObject Patch(string sessionId, string messageId, string file, string? id = null)
    {
        var p = Part(sessionId, messageId, "patch", id);
        p["hash"] = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        p["files"] = new JsonArray(file);
        return p;
    }

    public static string FixtureStorage => Path.Combine(RepoPaths.Fixtures, "v1.1.65", "storage");

    public const string FixtureSessionId = "ses_df5b97920ffeUFbu7k46fCazeu";

    public const string FixtureProjectId = "8473d0e735b29d2401024a60ff21c05aeb914dac";

    public static void CopyDirectory(string from, string to)
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

    public static JsonObject ReadJson(string path) => JsJson.ParseObject(File.ReadAllBytes(path));

    /// <summary>Deep equality that also requires the same key order: byte equality of the canonical writer.</summary>
    public static void AssertSameJson(JsonNode? expected, JsonNode? actual) =>
        Assert.Equal(JsJson.ToText(expected), JsJson.ToText(actual));
}

/// <summary>A temp data dir, a store on it and the project of the temp project dir, with warnings captured.</summary>
public sealed class StoreHarness : IDisposable
{
    private readonly List<string> warnings = [];

    public StoreHarness(bool git = false, TimeProvider? time = null)
    {
        Dirs = new TestDirs(git);
        Store = NewStore(time);
        Store.Initialize();
        Project = ProjectResolver.Resolve(Dirs.ProjectDir);
    }

    public TestDirs Dirs { get; }

    public SessionStore Store { get; }

    public ProjectInfo Project { get; }

    public IReadOnlyList<string> Warnings
    {
        get
        {
            lock (warnings)
            {
                return warnings.ToList();
            }
        }
    }

    /// <summary>Another store on the same data dir: what a second process would have.</summary>
    public SessionStore NewStore(TimeProvider? time = null) =>
        new(new StoreLayout(Dirs.DataDir), time, m => { lock (warnings) { warnings.Add(m); } });

    public void Dispose() => Dirs.Dispose();
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTime(long startMs) : TimeProvider
{
    public long Ms { get; set; } = startMs;

    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(Ms);
}
