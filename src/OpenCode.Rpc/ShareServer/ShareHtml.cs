using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;

namespace OpenCode.Rpc.ShareServer;

/// <summary>The readable page of a share: the title, then each message with its text (fenced code as code
/// blocks), reasoning and tool calls collapsed in <c>&lt;details&gt;</c>. Everything from the share is escaped.</summary>
internal static class ShareHtml
{
    private const string Style = """
        body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
        .msg{border-top:1px solid #ddd;padding:.75rem 0}.role{font-weight:600;text-transform:capitalize;color:#555}
        pre{background:#f5f5f7;padding:.6rem;overflow:auto;border-radius:4px}details{margin:.4rem 0}
        summary{cursor:pointer;font-family:ui-monospace,monospace}.meta{color:#777;font-size:.85em}
        """;

    public static string Render(string shareId, JsonArray items)
    {
        JsonObject? session = null;
        var messages = new List<JsonObject>();
        var parts = new Dictionary<string, List<JsonObject>>(StringComparer.Ordinal);
        foreach (var node in items)
        {
            if (node is not JsonObject item || item["data"] is not JsonObject data)
            {
                continue;
            }

            switch (Str(item, "type"))
            {
                case "session":
                    session = data;
                    break;
                case "message":
                    messages.Add(data);
                    break;
                case "part":
                    string mid = Str(data, "messageID") ?? string.Empty;
                    if (!parts.TryGetValue(mid, out var list))
                    {
                        parts[mid] = list = [];
                    }

                    list.Add(data);
                    break;
            }
        }

        string title = (session is null ? null : Str(session, "title")) is { Length: > 0 } t ? t : "Shared session " + shareId;
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">");
        sb.Append("<title>").Append(E(title)).Append("</title><style>").Append(Style).Append("</style></head><body>");
        sb.Append("<h1 id=\"title\">").Append(E(title)).Append("</h1>");
        if (session is not null)
        {
            sb.Append("<p class=\"meta\">").Append(E(Str(session, "id") ?? string.Empty));
            if (Str(session, "version") is { } v)
            {
                sb.Append(" · OpenCode ").Append(E(v));
            }

            sb.Append("</p>");
        }

        foreach (var m in messages.OrderBy(m => Str(m, "id"), StringComparer.Ordinal))
        {
            string role = Str(m, "role") ?? "message";
            sb.Append("<section class=\"msg ").Append(role == "user" ? "user" : "assistant").Append("\" id=\"").Append(E(Str(m, "id") ?? string.Empty)).Append("\">");
            sb.Append("<div class=\"role\">").Append(E(role));
            if (role == "assistant" && Str(m, "modelID") is { } model)
            {
                sb.Append(" <span class=\"meta\">").Append(E(model)).Append("</span>");
            }

            sb.Append("</div>");
            foreach (var p in (parts.GetValueOrDefault(Str(m, "id") ?? string.Empty) ?? []).OrderBy(p => Str(p, "id"), StringComparer.Ordinal))
            {
                Part(sb, p);
            }

            sb.Append("</section>");
        }

        sb.Append("</body></html>");
        return sb.ToString();
    }

    private static void Part(StringBuilder sb, JsonObject p)
    {
        switch (Str(p, "type"))
        {
            case "text":
                if (p["synthetic"] is JsonValue s && s.GetValueKind() == JsonValueKind.True)
                {
                    return;
                }

                Text(sb, Str(p, "text") ?? string.Empty);
                break;
            case "reasoning":
                sb.Append("<details class=\"reasoning\"><summary>Thinking</summary>");
                Text(sb, Str(p, "text") ?? string.Empty);
                sb.Append("</details>");
                break;
            case "tool":
                var state = p["state"] as JsonObject;
                string status = state is null ? string.Empty : Str(state, "status") ?? string.Empty;
                string? toolTitle = state is null ? null : Str(state, "title");
                sb.Append("<details class=\"tool\"><summary>").Append(E(Str(p, "tool") ?? "tool"));
                if (toolTitle is { Length: > 0 })
                {
                    sb.Append(": ").Append(E(toolTitle));
                }

                sb.Append(" <span class=\"meta\">").Append(E(status)).Append("</span></summary>");
                if (state?["input"] is { } input)
                {
                    sb.Append("<div class=\"meta\">Input</div><pre class=\"tool-input\">").Append(E(JsJson.ToText(input))).Append("</pre>");
                }

                if (state is not null && (Str(state, "output") ?? Str(state, "error")) is { } output)
                {
                    sb.Append("<div class=\"meta\">Output</div><pre class=\"tool-output\">").Append(E(output)).Append("</pre>");
                }

                sb.Append("</details>");
                break;
            case "file":
                sb.Append("<p class=\"meta\">File: ").Append(E(Str(p, "filename") ?? Str(p, "url") ?? string.Empty)).Append("</p>");
                break;
        }
    }

    /// <summary>Paragraphs, with ``` fences as code blocks.</summary>
    private static void Text(StringBuilder sb, string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var para = new List<string>();
        List<string>? code = null;
        foreach (var line in lines)
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                if (code is null)
                {
                    Flush(sb, para);
                    code = [];
                }
                else
                {
                    sb.Append("<pre><code>").Append(E(string.Join('\n', code))).Append("</code></pre>");
                    code = null;
                }

                continue;
            }

            if (code is not null)
            {
                code.Add(line);
            }
            else if (line.Length == 0)
            {
                Flush(sb, para);
            }
            else
            {
                para.Add(line);
            }
        }

        if (code is not null)
        {
            sb.Append("<pre><code>").Append(E(string.Join('\n', code))).Append("</code></pre>");
        }

        Flush(sb, para);
    }

    private static void Flush(StringBuilder sb, List<string> para)
    {
        if (para.Count > 0)
        {
            sb.Append("<p>").Append(string.Join("<br>", para.Select(E))).Append("</p>");
            para.Clear();
        }
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private static string? Str(JsonObject o, string name) =>
        o[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
