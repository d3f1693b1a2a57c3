using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Tests.Infrastructure;

/// <summary>OpenCode-shaped messages and parts for tests, built as OpenCode builds them (reference §2).</summary>
public static class Build
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
        o["model"] = new JsonObject { ["providerID"] = "anthropic", ["modelID"] = "claude-sonnet-4-5" };
        return o;
    }

    public static JsonObject Assistant(string sessionId, string parentId, long created, string? id = null)
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
        o["modelID"] = "claude-sonnet-4-5";
        o["providerID"] = "anthropic";
        o["mode"] = "build";
        o["agent"] = "build";
        o["path"] = new JsonObject { ["cwd"] = "/tmp/p", ["root"] = "/tmp/p" };
        o["cost"] = 0.0123;
        o["tokens"] = new JsonObject { ["input"] = 100, ["output"] = 10, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 } };
        o["finish"] = "stop";
        return o;
    }

    public static JsonObject Text(string sessionId, string messageId, string text) => new()
    {
        ["sessionID"] = sessionId, ["messageID"] = messageId, ["type"] = "text", ["text"] = text,
    };

    public static JsonObject Tool(string sessionId, string messageId, string tool, string output, JsonObject? input = null) => new()
    {
        ["sessionID"] = sessionId,
        ["messageID"] = messageId,
        ["type"] = "tool",
        ["callID"] = "call_" + Guid.NewGuid().ToString("N")[..8],
        ["tool"] = tool,
        ["state"] = new JsonObject
        {
            ["status"] = "completed",
            ["input"] = input ?? new JsonObject { ["filePath"] = "/tmp/p/a.txt" },
            ["output"] = output,
            ["title"] = "a.txt",
            ["metadata"] = new JsonObject(),
            ["time"] = new JsonObject { ["start"] = 1, ["end"] = 2 },
        },
    };

    public static JsonElement Json(JsonNode node) => JsonDocument.Parse(node.ToJsonString()).RootElement.Clone();
}

/// <summary>Writes a conversation through the real RPC, returning the ids in order.</summary>
public static class Conversation
{
    public static async Task<string> NewSessionAsync(RpcTestClient s, string title = "T")
    {
        var session = await s.CallAsync(OpenCode.Rpc.Server.Methods.SessionCreate, new { title });
        return session.GetProperty("id").GetString()!;
    }

    public static async Task<string> AddAsync(RpcTestClient s, JsonObject info, params JsonObject[] parts)
    {
        var m = await s.CallAsync(OpenCode.Rpc.Server.Methods.MessageUpdate, new { info = Build.Json(info) });
        string id = m.GetProperty("id").GetString()!;
        foreach (var p in parts)
        {
            p["messageID"] = id;
            await s.CallAsync(OpenCode.Rpc.Server.Methods.PartUpdate, new { part = Build.Json(p) });
        }

        return id;
    }

    /// <summary>A user turn and its answer; returns (user id, assistant id).</summary>
    public static async Task<(string User, string Assistant)> TurnAsync(RpcTestClient s, string sessionId, long t, string ask, string answer)
    {
        string u = await AddAsync(s, Build.User(sessionId, t), Build.Text(sessionId, "", ask));
        string a = await AddAsync(s, Build.Assistant(sessionId, u, t + 1), Build.Text(sessionId, "", answer));
        return (u, a);
    }
}
