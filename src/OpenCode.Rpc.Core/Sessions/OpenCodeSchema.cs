using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Ids;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>
/// The fields OpenCode itself requires of a session, a message and a part (reference §2 and
/// real-opencode.md "Required fields"). Anything we write must pass, so OpenCode can always read our
/// store; anything we import must pass before a single byte is written. Unknown fields are kept: only
/// what OpenCode needs is checked. Failures name the field as a dotted path.
/// </summary>
public static class OpenCodeSchema
{
    public static readonly IReadOnlySet<string> PartTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "text", "subtask", "reasoning", "file", "tool", "step-start", "step-finish", "snapshot", "patch", "agent", "retry", "compaction",
    };

    public static void ValidateSession(JsonObject s, string at)
    {
        Id(s, at, Identifier.Session);
        Str(s, "slug", at);
        Str(s, "title", at);
        Str(s, "version", at);
        var time = Obj(s, "time", at);
        Num(time, "created", at + ".time");
        Num(time, "updated", at + ".time");
        OptStr(s, "parentID", at);
        if (s["parentID"] is JsonValue)
        {
            Id(s, at, Identifier.Session, "parentID");
        }
    }

    public static void ValidateMessage(JsonObject m, string at)
    {
        Id(m, at, Identifier.Message);
        Id(m, at, Identifier.Session, "sessionID");
        string role = Str(m, "role", at);
        var time = Obj(m, "time", at);
        Num(time, "created", at + ".time");
        Str(m, "agent", at);
        switch (role)
        {
            case "user":
                var model = Obj(m, "model", at);
                Str(model, "providerID", at + ".model");
                Str(model, "modelID", at + ".model");
                break;
            case "assistant":
                Str(m, "parentID", at);
                Str(m, "modelID", at);
                Str(m, "providerID", at);
                Str(m, "mode", at);
                var path = Obj(m, "path", at);
                Str(path, "cwd", at + ".path");
                Str(path, "root", at + ".path");
                Num(m, "cost", at);
                Tokens(Obj(m, "tokens", at), at + ".tokens");
                break;
            default:
                throw new InvalidInputException(at + ".role", "must be \"user\" or \"assistant\"");
        }
    }

    public static void ValidatePart(JsonObject p, string at)
    {
        Id(p, at, Identifier.Part);
        Id(p, at, Identifier.Session, "sessionID");
        Id(p, at, Identifier.Message, "messageID");
        string type = Str(p, "type", at);
        switch (type)
        {
            case "text":
                Str(p, "text", at);
                break;
            case "reasoning":
                Str(p, "text", at);
                Num(Obj(p, "time", at), "start", at + ".time");
                break;
            case "file":
                Str(p, "mime", at);
                Str(p, "url", at);
                break;
            case "tool":
                Str(p, "callID", at);
                Str(p, "tool", at);
                var state = Obj(p, "state", at);
                string status = Str(state, "status", at + ".state");
                if (status is not ("pending" or "running" or "completed" or "error"))
                {
                    throw new InvalidInputException(at + ".state.status", "must be pending, running, completed or error");
                }

                if (status == "completed")
                {
                    Str(state, "output", at + ".state");
                }
                else if (status == "error")
                {
                    Str(state, "error", at + ".state");
                }

                break;
            case "step-start":
                OptStr(p, "snapshot", at);
                break;
            case "step-finish":
                Str(p, "reason", at);
                Num(p, "cost", at);
                Tokens(Obj(p, "tokens", at), at + ".tokens");
                OptStr(p, "snapshot", at);
                break;
            case "snapshot":
                Str(p, "snapshot", at);
                break;
            case "patch":
                Str(p, "hash", at);
                if (p["files"] is not JsonArray files)
                {
                    throw Missing(at + ".files", p["files"], "an array");
                }

                for (int i = 0; i < files.Count; i++)
                {
                    if (files[i] is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
                    {
                        throw new InvalidInputException($"{at}.files[{i}]", "must be a string");
                    }
                }

                break;
            case "agent":
                Str(p, "name", at);
                break;
            case "compaction":
                if (p["auto"] is not JsonValue a || a.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                {
                    throw Missing(at + ".auto", p["auto"], "a boolean");
                }

                break;
            case "subtask":
                Str(p, "prompt", at);
                Str(p, "description", at);
                Str(p, "agent", at);
                break;
            case "retry":
                Num(p, "attempt", at);
                Obj(p, "error", at);
                Num(Obj(p, "time", at), "created", at + ".time");
                break;
            default:
                throw new InvalidInputException(at + ".type", $"\"{type}\" is not a part type OpenCode knows");
        }
    }

    private static void Tokens(JsonObject t, string at)
    {
        Num(t, "input", at);
        Num(t, "output", at);
        Num(t, "reasoning", at);
        var cache = Obj(t, "cache", at);
        Num(cache, "read", at + ".cache");
        Num(cache, "write", at + ".cache");
    }

    private static void Id(JsonObject o, string at, string prefix, string key = "id")
    {
        string id = Str(o, key, at);
        if (!Identifier.IsValid(id, prefix))
        {
            throw new InvalidInputException(Join(at, key), Identifier.Explain(id, prefix));
        }
    }

    public static string Str(JsonObject o, string key, string at)
    {
        if (o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            return v.GetValue<string>();
        }

        throw Missing(Join(at, key), o[key], "a string");
    }

    private static void OptStr(JsonObject o, string key, string at)
    {
        if (o.ContainsKey(key) && !(o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String))
        {
            throw Missing(Join(at, key), o[key], "a string");
        }
    }

    private static void Num(JsonObject o, string key, string at)
    {
        if (!(o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number))
        {
            throw Missing(Join(at, key), o[key], "a number");
        }
    }

    private static JsonObject Obj(JsonObject o, string key, string at) =>
        o[key] as JsonObject ?? throw Missing(Join(at, key), o[key], "an object");

    private static InvalidInputException Missing(string field, JsonNode? got, string expected) => got is null
        ? new InvalidInputException(field, "is required", $"Missing required field {field}.")
        : new InvalidInputException(field, $"must be {expected}, got {Describe(got)}", $"Invalid {field}: expected {expected}, got {Describe(got)}.");

    private static string Describe(JsonNode n)
    {
        string s = n.ToJsonString();
        return s.Length <= 60 ? s : s[..57] + "...";
    }

    private static string Join(string at, string key) => at.Length == 0 ? key : at + "." + key;

    /// <summary>Turns <c>info.time.updated</c> / <c>messages[2].parts[0]</c> into OpenCode's
    /// <c>["info"]["time"]["updated"]</c> notation.</summary>
    public static string ToBracketPath(string dotted)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var seg in dotted.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            int b = seg.IndexOf('[', StringComparison.Ordinal);
            string name = b >= 0 ? seg[..b] : seg;
            sb.Append("[\"").Append(name).Append("\"]");
            if (b >= 0)
            {
                sb.Append(seg[b..]);
            }
        }

        return sb.ToString();
    }

    internal static string Iso(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
