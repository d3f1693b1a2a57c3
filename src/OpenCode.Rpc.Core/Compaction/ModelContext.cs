using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>One piece of a model message: text, reasoning, or a tool call with its result.</summary>
/// <param name="Type"><c>text</c>, <c>reasoning</c> or <c>tool</c>.</param>
/// <param name="Output">The tool result the model sees: the output, <see cref="ModelContext.ClearedToolOutput"/>
/// when pruned, <c>Error: …</c> when it failed.</param>
/// <param name="Pruned">The tool output was pruned (<c>state.time.compacted</c>).</param>
public sealed record ContextContent(
    string Type,
    string? PartID,
    string? Text = null,
    string? Tool = null,
    string? CallID = null,
    JsonNode? Input = null,
    string? Output = null,
    bool Pruned = false,
    int Tokens = 0);

/// <summary>A message as the model receives it.</summary>
/// <param name="Source"><c>message</c> (as stored), <c>compaction</c> (the compaction request, sent as "What did
/// we do so far?"), <c>summary</c> (the summary, sent as the reply) or <c>tail</c> (kept verbatim by the compaction).</param>
public sealed record ContextMessage(string Role, string MessageID, string Source, IReadOnlyList<ContextContent> Content, int Tokens);

/// <summary>What the model would be sent now, with token counts.</summary>
/// <param name="CompactionMessageID">The compaction user message in force, if any.</param>
public sealed record ModelContext(
    string SessionID,
    IReadOnlyList<ContextMessage> Messages,
    long Total,
    string? CompactionMessageID,
    string? ProviderID,
    string? ModelID)
{
    public const string ClearedToolOutput = "[Old tool result content cleared]";
    public const string CompactionQuestion = "What did we do so far?";
    public const string SubtaskText = "The following tool was executed by the user";
    public const string InterruptedToolOutput = "[Tool execution was interrupted]";
}

/// <summary>
/// Turns stored messages into the model messages OpenCode would send (reference §6.4): <c>filterCompacted</c>
/// cuts everything before the newest completed compaction; the compaction request becomes "What did we do so
/// far?" followed by the summary, then the retained tail (<c>tail_start_id</c>), then what came after.
/// </summary>
public static class ContextBuilder
{
    /// <summary>Where the newest completed compaction starts in <paramref name="all"/> (oldest first); -1 if none.
    /// OpenCode's filterCompacted: walking back, a user message with a compaction part counts once a summary
    /// assistant answering it has finished without error.</summary>
    public static int Boundary(IReadOnlyList<MessageWithParts> all)
    {
        var completed = new HashSet<string>(StringComparer.Ordinal);
        for (int i = all.Count - 1; i >= 0; i--)
        {
            var info = all[i].Info;
            if (Role(info) == "user" && completed.Contains(Id(info)) && IsCompactionRequest(all[i]))
            {
                return i;
            }

            if (IsCompletedSummary(info) && Str(info["parentID"]) is { } parent)
            {
                completed.Add(parent);
            }
        }

        return -1;
    }

    public static bool IsCompactionRequest(MessageWithParts m) => Role(m.Info) == "user" && m.Parts.Any(p => Str(p["type"]) == "compaction");

    public static bool IsSummary(JsonObject info) => Role(info) == "assistant" && info["summary"] is JsonValue s && s.GetValueKind() == JsonValueKind.True;

    public static bool IsCompletedSummary(JsonObject info) => IsSummary(info) && Str(info["finish"]) is not null && info["error"] is null;

    /// <summary>The model-visible context of a session, from its messages (oldest first).</summary>
    public static ModelContext Build(string sessionId, IReadOnlyList<MessageWithParts> all) => Build(sessionId, all, Convert);

    /// <summary>Builds with a given conversion (a cached one, see <see cref="MessageReadCache"/>).</summary>
    public static ModelContext Build(string sessionId, IReadOnlyList<MessageWithParts> all, Func<MessageWithParts, string, ContextMessage?> convert)
    {
        void Add(List<ContextMessage> into, MessageWithParts m, string source)
        {
            if (convert(m, source) is { } cm)
            {
                into.Add(cm);
            }
        }

        int boundary = Boundary(all);
        var result = new List<ContextMessage>();
        string? compactionId = null;
        if (boundary < 0)
        {
            foreach (var m in all)
            {
                Add(result, m, "message");
            }
        }
        else
        {
            var request = all[boundary];
            compactionId = Id(request.Info);
            Add(result, request, "compaction");
            var rest = all.Skip(boundary + 1).ToList();
            foreach (var s in rest.Where(m => IsSummary(m.Info) && Str(m.Info["parentID"]) == compactionId))
            {
                Add(result, s, "summary");
            }

            if (request.Parts.Select(p => Str(p["tail_start_id"])).FirstOrDefault(t => t is not null) is { } tailStart)
            {
                int from = -1;
                for (int i = 0; i < boundary; i++)
                {
                    if (Id(all[i].Info) == tailStart)
                    {
                        from = i;
                        break;
                    }
                }

                for (int i = Math.Max(0, from); from >= 0 && i < boundary; i++)
                {
                    if (!IsCompactionRequest(all[i]) && !IsSummary(all[i].Info))
                    {
                        Add(result, all[i], "tail");
                    }
                }
            }

            foreach (var m in rest.Where(m => !(IsSummary(m.Info) && Str(m.Info["parentID"]) == compactionId)))
            {
                Add(result, m, "message");
            }
        }

        var (provider, model) = ModelOf(all);
        return new ModelContext(sessionId, result, result.Sum(m => (long)m.Tokens), compactionId, provider, model);
    }

    /// <summary>The model the session is using: the newest user message's, else the newest assistant's.</summary>
    public static (string? ProviderID, string? ModelID) ModelOf(IReadOnlyList<MessageWithParts> all)
    {
        for (int i = all.Count - 1; i >= 0; i--)
        {
            var info = all[i].Info;
            if (Role(info) == "user" && info["model"] is JsonObject model && !IsCompactionRequest(all[i]))
            {
                return (Str(model["providerID"]), Str(model["modelID"]));
            }
        }

        for (int i = all.Count - 1; i >= 0; i--)
        {
            var info = all[i].Info;
            if (Role(info) == "assistant" && !IsSummary(info))
            {
                return (Str(info["providerID"]), Str(info["modelID"]));
            }
        }

        return (null, null);
    }

    /// <summary>Converts one stored message; null when the model would not see it (an errored assistant
    /// message, or nothing to say).</summary>
    public static ContextMessage? Convert(MessageWithParts m, string source)
    {
        var info = m.Info;
        string role = Role(info) ?? "user";
        var content = new List<ContextContent>();
        if (role == "user")
        {
            foreach (var p in m.Parts)
            {
                string? pid = Str(p["id"]);
                switch (Str(p["type"]))
                {
                    case "text" when !True(p["ignored"]):
                        content.Add(new ContextContent("text", pid, Text: Str(p["text"]) ?? ""));
                        break;
                    case "file":
                        content.Add(new ContextContent("text", pid, Text: FileText(p)));
                        break;
                    case "compaction":
                        content.Add(new ContextContent("text", pid, Text: ModelContext.CompactionQuestion));
                        break;
                    case "subtask":
                        content.Add(new ContextContent("text", pid, Text: ModelContext.SubtaskText));
                        break;
                }
            }
        }
        else
        {
            // OpenCode drops failed turns, except an aborted one that produced something.
            if (info["error"] is JsonObject err && Str(err["name"]) != "MessageAbortedError")
            {
                return null;
            }

            foreach (var p in m.Parts)
            {
                string? pid = Str(p["id"]);
                switch (Str(p["type"]))
                {
                    case "text":
                        content.Add(new ContextContent("text", pid, Text: Str(p["text"]) ?? ""));
                        break;
                    case "reasoning":
                        content.Add(new ContextContent("reasoning", pid, Text: Str(p["text"]) ?? ""));
                        break;
                    case "tool":
                        content.Add(ToolContent(p));
                        break;
                }
            }
        }

        if (content.Count == 0)
        {
            return null;
        }

        var counted = content.Select(c => c with { Tokens = TokensOf(c) }).ToList();
        return new ContextMessage(role, Id(info), source, counted, counted.Sum(c => c.Tokens));
    }

    public static int TokensOf(ContextContent c) =>
        TokenCounter.Count(c.Text) + TokenCounter.Count(c.Tool) + (c.Input is null ? 0 : TokenCounter.Count(c.Input.ToJsonString())) + TokenCounter.Count(c.Output);

    private static ContextContent ToolContent(JsonObject p)
    {
        var state = p["state"] as JsonObject;
        string status = Str(state?["status"]) ?? "pending";
        string? output = status switch
        {
            "completed" when state?["time"]?["compacted"] is not null => ModelContext.ClearedToolOutput,
            "completed" => Str(state?["output"]) ?? "",
            "error" => "Error: " + (Str(state?["error"]) ?? ""),
            _ => ModelContext.InterruptedToolOutput,
        };
        bool pruned = status == "completed" && state?["time"]?["compacted"] is not null;
        return new ContextContent("tool", Str(p["id"]), Tool: Str(p["tool"]) ?? "", CallID: Str(p["callID"]), Input: state?["input"]?.DeepClone(), Output: output, Pruned: pruned);
    }

    private static string FileText(JsonObject p)
    {
        string mime = Str(p["mime"]) ?? "application/octet-stream";
        string name = Str(p["filename"]) ?? Str(p["url"]) ?? "file";
        if (p["source"]?["text"]?["value"] is JsonValue v && v.TryGetValue(out string? text) && mime.StartsWith("text/", StringComparison.Ordinal))
        {
            return $"[Attached {mime}: {name}]\n{text}";
        }

        return $"[Attached {mime}: {name}]";
    }

    internal static string? Role(JsonObject info) => Str(info["role"]);

    internal static string Id(JsonObject info) => Str(info["id"]) ?? "";

    internal static bool True(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.True;

    internal static double? Number(JsonNode? n) => JsJson.Number(n);

    internal static string? Str(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
