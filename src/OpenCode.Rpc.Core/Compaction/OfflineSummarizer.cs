using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core.Sessions;
using static OpenCode.Rpc.Core.Compaction.ContextBuilder;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>
/// The built-in summarizer: no model, no network, the same output for the same history. It fills OpenCode's
/// newest template from facts it can extract: the first request (Goal), the user's must/never/prefer sentences,
/// finished and failed tool calls (Progress), the assistant's decision sentences, the last unanswered request
/// (Next Steps), errors and the last reply (Critical Context), and every file read, written, edited or patched
/// with counts. It reads the whole stored history, not an earlier summary, so nothing said before an earlier
/// compaction can fall out.
/// </summary>
public sealed partial class OfflineSummarizer : ISummarizer
{
    private const int MaxBullets = 25;

    public SummarizerKind Kind => SummarizerKind.Offline;

    public (string ProviderID, string ModelID)? Model => null;

    public Task<string> SummarizeAsync(SummaryRequest request, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult(Summarize(request.History));
    }

    public static string Summarize(IReadOnlyList<MessageWithParts> history)
    {
        var requests = new List<(int Index, string Text)>();
        var constraints = new OrderedSet();
        var decisions = new OrderedSet();
        var done = new Counted();
        var inProgress = new OrderedSet();
        var failed = new List<(string Key, string Line)>();
        var succeeded = new HashSet<string>(StringComparer.Ordinal);
        var critical = new OrderedSet();
        var files = new SortedDictionary<string, SortedDictionary<string, int>>(StringComparer.Ordinal);
        string? lastReply = null;
        int lastAnswered = -1;
        int reads = 0;

        for (int i = 0; i < history.Count; i++)
        {
            var (info, parts) = (history[i].Info, history[i].Parts);
            if (IsCompactionRequest(history[i]) || IsSummary(info))
            {
                continue;
            }

            if (Role(info) == "user")
            {
                string text = string.Join("\n", parts
                    .Where(p => Str(p["type"]) == "text" && !True(p["synthetic"]) && !True(p["ignored"]))
                    .Select(p => Str(p["text"]) ?? "")).Trim();
                foreach (var p in parts.Where(p => Str(p["type"]) == "file"))
                {
                    AddFile(files, Str(p["source"]?["path"]) ?? Str(p["filename"]) ?? Str(p["url"]), "attached");
                }

                if (text.Length > 0)
                {
                    requests.Add((i, text));
                    foreach (var s in Sentences(text).Where(s => ConstraintCue().IsMatch(s)))
                    {
                        constraints.Add(Clip(s, 200));
                    }
                }

                continue;
            }

            if (info["error"] is JsonObject err && Str(err["name"]) is { } errName && errName != "MessageAbortedError")
            {
                critical.Add(Clip($"The assistant failed with {errName}: {Str(err["data"]?["message"]) ?? ""}".TrimEnd(' ', ':'), 240));
            }
            else if (Str(info["finish"]) is { } finish && finish != "tool-calls")
            {
                lastAnswered = i;
            }

            foreach (var p in parts)
            {
                switch (Str(p["type"]))
                {
                    case "text":
                        string t = (Str(p["text"]) ?? "").Trim();
                        if (t.Length > 0)
                        {
                            lastReply = t;
                            foreach (var s in Sentences(t).Where(s => DecisionCue().IsMatch(s)))
                            {
                                decisions.Add(Clip(s, 200));
                            }
                        }

                        break;
                    case "patch":
                        if (p["files"] is JsonArray fa)
                        {
                            foreach (var f in fa)
                            {
                                AddFile(files, Str(f), "patched");
                            }
                        }

                        break;
                    case "tool":
                        Tool(p, done, inProgress, failed, succeeded, files, ref reads);
                        break;
                }
            }
        }

        if (reads > 0)
        {
            done.Add($"Read {reads} file(s) (see Relevant Files)");
        }

        var blocked = failed.Where(f => !succeeded.Contains(f.Key)).Select(f => f.Line).Distinct(StringComparer.Ordinal).TakeLast(MaxBullets).ToList();
        var last = requests.Count > 0 ? requests[^1] : default;
        bool unanswered = requests.Count > 0 && last.Index > lastAnswered;
        if (unanswered)
        {
            inProgress.Add("Answering the latest request (see Next Steps)");
        }

        var sb = new StringBuilder();
        Section(sb, "## Goal", requests.Count > 0 ? [Clip(OneLine(requests[0].Text), 500)] : []);
        Section(sb, "## Constraints & Preferences", constraints.Items.Take(MaxBullets));
        sb.Append("## Progress\n");
        Section(sb, "### Done", done.Lines.TakeLast(MaxBullets));
        Section(sb, "### In Progress", inProgress.Items.TakeLast(MaxBullets));
        Section(sb, "### Blocked", blocked);
        Section(sb, "## Key Decisions", decisions.Items.TakeLast(MaxBullets));
        Section(sb, "## Next Steps", requests.Count == 0 ? []
            : unanswered ? [$"Answer the user's latest request: {Clip(OneLine(last.Text), 800)}"]
            : [$"Wait for the user's next request (the latest one was answered: {Clip(OneLine(last.Text), 300)})"]);
        var crit = critical.Items.TakeLast(10).ToList();
        if (lastReply is not null)
        {
            crit.Add("Last assistant reply: " + Clip(OneLine(lastReply), 600));
        }

        Section(sb, "## Critical Context", crit);
        Section(sb, "## Relevant Files", files
            .OrderByDescending(f => f.Value.Values.Sum()).ThenBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => $"{f.Key} ({string.Join(", ", f.Value.Select(kv => $"{kv.Key} {kv.Value}"))})"));
        return sb.ToString().TrimEnd('\n');
    }

    private static void Tool(JsonObject p, Counted done, OrderedSet inProgress, List<(string, string)> failed, HashSet<string> succeeded,
        SortedDictionary<string, SortedDictionary<string, int>> files, ref int reads)
    {
        string tool = Str(p["tool"]) ?? "tool";
        var state = p["state"] as JsonObject;
        var input = state?["input"] as JsonObject;
        string status = Str(state?["status"]) ?? "pending";
        string? file = Str(input?["filePath"]) ?? Str(input?["file_path"]) ?? Str(input?["path"]);
        string kind = tool switch
        {
            "read" => "read",
            "write" => "written",
            "edit" or "multiedit" => "edited",
            "patch" or "apply_patch" => "patched",
            _ => "",
        };
        string describe = tool switch
        {
            "bash" => $"Ran `{Clip(OneLine(Str(input?["command"]) ?? ""), 160)}`",
            "write" => $"Wrote {file}",
            "edit" or "multiedit" => $"Edited {file}",
            "read" => $"Read {file}",
            _ => $"{tool}: {Clip(OneLine(Str(state?["title"]) ?? (input is null ? "" : input.ToJsonString())), 160)}",
        };
        string key = tool + "\u0000" + (input?.ToJsonString() ?? "");
        switch (status)
        {
            case "completed":
                succeeded.Add(key);
                if (kind.Length > 0 && file is not null)
                {
                    AddFile(files, file, kind);
                }

                if (tool == "read")
                {
                    reads++;
                }
                else
                {
                    done.Add(describe);
                }

                break;
            case "error":
                failed.Add((key, Clip($"{describe} failed: {FirstLine(Str(state?["error"]) ?? "")}", 300)));
                break;
            default:
                inProgress.Add(describe + " (not finished)");
                break;
        }
    }

    private static void AddFile(SortedDictionary<string, SortedDictionary<string, int>> files, string? path, string kind)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return;
        }

        if (!files.TryGetValue(path, out var counts))
        {
            files[path] = counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        }

        counts[kind] = counts.GetValueOrDefault(kind) + 1;
    }

    private static void Section(StringBuilder sb, string title, IEnumerable<string> bullets)
    {
        sb.Append(title).Append('\n');
        bool any = false;
        foreach (var b in bullets)
        {
            sb.Append("- ").Append(b).Append('\n');
            any = true;
        }

        if (!any)
        {
            sb.Append("- (none)\n");
        }

        sb.Append('\n');
    }

    private static IEnumerable<string> Sentences(string text) =>
        SentenceSplit().Split(text).Select(s => OneLine(s).Trim(' ', '-', '*', '•')).Where(s => s.Length is > 3 and < 400);

    private static string OneLine(string s) => Whitespace().Replace(s, " ").Trim();

    private static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();

    private static string Clip(string s, int max) => s.Length <= max ? s : s[..(max - 1)].TrimEnd() + "…";

    [GeneratedRegex(@"(?<=[.!?])\s+|\n+")]
    private static partial Regex SentenceSplit();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"\b(must|mustn't|don't|do not|never|always|prefer|avoid|without|make sure|only use|should not|shouldn't|keep it|no more than|at most|at least)\b", RegexOptions.IgnoreCase)]
    private static partial Regex ConstraintCue();

    [GeneratedRegex(@"\b(decided|decide to|I'll use|I will use|we'll use|we will use|instead of|chose|choosing|going with|switched to|rather than|opted)\b", RegexOptions.IgnoreCase)]
    private static partial Regex DecisionCue();

    private sealed class OrderedSet
    {
        private readonly HashSet<string> seen = new(StringComparer.Ordinal);

        public List<string> Items { get; } = [];

        public void Add(string s)
        {
            if (seen.Add(s))
            {
                Items.Add(s);
            }
        }
    }

    /// <summary>Distinct lines with repeat counts, ordered by their last occurrence.</summary>
    private sealed class Counted
    {
        private readonly Dictionary<string, (int Count, int Last)> items = new(StringComparer.Ordinal);
        private int n;

        public void Add(string s)
        {
            var (c, _) = items.GetValueOrDefault(s);
            items[s] = (c + 1, n++);
        }

        public IEnumerable<string> Lines => items.OrderBy(kv => kv.Value.Last).Select(kv => kv.Value.Count > 1 ? $"{kv.Key} (×{kv.Value.Count})" : kv.Key);
    }
}
