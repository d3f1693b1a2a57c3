using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Core.Transfer;

/// <summary>
/// Redacts an export exactly as <c>opencode export --sanitize</c> (1.18.33) does. Every rule below was read off
/// the real binary's output for a session holding every part type and every optional field (and the
/// <c>*.sanitized.json</c> fixture):
/// <list type="bullet">
/// <item>a sensitive string becomes <c>[redacted:&lt;kind&gt;:&lt;id&gt;]</c>, where id is the owning session,
/// message or part id, or the index of a diff in its array;</item>
/// <item>a sensitive record (metadata, tool input) that is not empty becomes <c>{"redacted":"&lt;kind&gt;:&lt;id&gt;"}</c>;</item>
/// <item>empty strings and empty records are kept as they are; everything else (ids, times, tokens, costs, models,
/// agents, tool names, error texts, share url, permission rules) is kept.</item>
/// </list>
/// OpenCode ≥ 1.2 drops the 1.1-era <c>before</c>/<c>after</c> full-file texts of a diff on import, so it has no rule
/// for them; they hold whole files, so we redact them as <c>&lt;scope&gt;-diff-before</c> / <c>-after</c>.
/// </summary>
public static class ExportSanitizer
{
    public static void Session(JsonObject info)
    {
        string id = Id(info);
        Str(info, "directory", "session-directory", id);
        Str(info, "title", "session-title", id);
        if (info["summary"] is JsonObject summary)
        {
            Diffs(summary["diffs"], "session-diff");
        }

        if (info["revert"] is JsonObject revert)
        {
            Str(revert, "snapshot", "revert-snapshot", id);
            Str(revert, "diff", "revert-diff", id);
        }
    }

    public static void Message(JsonObject info)
    {
        string id = Id(info);
        if (info["role"]?.GetValueKind() == JsonValueKind.String && (string?)info["role"] == "user")
        {
            Str(info, "system", "system", id);
            if (info["summary"] is JsonObject summary)
            {
                Str(summary, "title", "summary-title", id);
                Str(summary, "body", "summary-body", id);
                Diffs(summary["diffs"], "message-diff");
            }
        }
        else if (info["path"] is JsonObject path)
        {
            Str(path, "cwd", "cwd", id);
            Str(path, "root", "root", id);
        }
    }

    public static void Part(JsonObject part)
    {
        string id = Id(part);
        switch ((string?)(part["type"] is JsonValue t && t.GetValueKind() == JsonValueKind.String ? t : null))
        {
            case "text":
                Str(part, "text", "text", id);
                Rec(part, "metadata", "text-metadata", id);
                break;
            case "reasoning":
                Str(part, "text", "reasoning", id);
                Rec(part, "metadata", "reasoning-metadata", id);
                break;
            case "file":
                File(part, id);
                break;
            case "tool":
                if (part["state"] is JsonObject state)
                {
                    Rec(state, "input", "tool-input", id);
                    Str(state, "output", "tool-output", id);
                    Str(state, "title", "tool-title", id);
                    Str(state, "raw", "tool-raw", id);
                    Rec(state, "metadata", "tool-state-metadata", id);
                    if (state["attachments"] is JsonArray attachments)
                    {
                        foreach (var a in attachments)
                        {
                            if (a is JsonObject file)
                            {
                                File(file, Id(file));
                            }
                        }
                    }
                }

                Rec(part, "metadata", "tool-metadata", id);
                break;
            case "step-start" or "step-finish" or "snapshot":
                Str(part, "snapshot", "snapshot", id);
                break;
            case "patch":
                Str(part, "hash", "patch", id);
                if (part["files"] is JsonArray files)
                {
                    for (int i = 0; i < files.Count; i++)
                    {
                        if (IsNonEmptyString(files[i]))
                        {
                            files[i] = $"[redacted:patch-file:{id}-{i}]";
                        }
                    }
                }

                break;
            case "agent":
                if (part["source"] is JsonObject agentSource)
                {
                    Str(agentSource, "value", "agent-source", id);
                }

                break;
            case "subtask":
                Str(part, "prompt", "subtask-prompt", id);
                Str(part, "description", "subtask-description", id);
                Str(part, "command", "subtask-command", id);
                break;
        }
    }

    private static void File(JsonObject part, string id)
    {
        Str(part, "filename", "file-name", id);
        Str(part, "url", "file-url", id);
        if (part["source"] is JsonObject source)
        {
            if (source["text"] is JsonObject text)
            {
                Str(text, "value", "file-text", id);
            }

            Str(source, "path", "file-path", id);
            Str(source, "name", "file-symbol", id);
            Str(source, "clientName", "file-client", id);
            Str(source, "uri", "file-uri", id);
        }
    }

    private static void Diffs(JsonNode? diffs, string kind)
    {
        if (diffs is not JsonArray arr)
        {
            return;
        }

        for (int i = 0; i < arr.Count; i++)
        {
            if (arr[i] is JsonObject d)
            {
                string index = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                Str(d, "file", kind + "-file", index);
                Str(d, "patch", kind + "-patch", index);
                Str(d, "before", kind + "-before", index);
                Str(d, "after", kind + "-after", index);
            }
        }
    }

    private static string Id(JsonObject o) => o["id"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : string.Empty;

    private static bool IsNonEmptyString(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length > 0;

    private static void Str(JsonObject o, string key, string kind, string id)
    {
        if (IsNonEmptyString(o[key]))
        {
            o[key] = $"[redacted:{kind}:{id}]";
        }
    }

    private static void Rec(JsonObject o, string key, string kind, string id)
    {
        if (o[key] is JsonObject rec && rec.Count > 0)
        {
            o[key] = new JsonObject { ["redacted"] = $"{kind}:{id}" };
        }
    }
}
