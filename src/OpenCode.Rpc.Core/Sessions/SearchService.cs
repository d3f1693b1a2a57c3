using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>A search match: the session, and the message and part it was found in (both null for a title match).</summary>
public sealed record SearchHit(JsonObject Session, string? MessageID, string? PartID, string Snippet, long Time);

/// <summary>
/// Full-text search over session titles and the text of text, reasoning and tool parts (input, output, error,
/// title), case-insensitive, newest first. OpenCode searches titles only. The searchable text of each session is kept
/// in memory, lower-cased once, so a warm search is a vectorised ordinal scan. An entry is rebuilt when our own
/// writes touch the session, or when its session file or message folder changed on disk (another process).
/// </summary>
public sealed class SearchService
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 1000;
    private const int SnippetContext = 60;

    private readonly SessionStore store;
    private readonly ConcurrentDictionary<string, Entry> cache = new(StringComparer.Ordinal);

    public SearchService(SessionStore store)
    {
        this.store = store;
        store.Changed += e =>
        {
            if (SessionOf(e) is { } id)
            {
                cache.TryRemove(id, out _);
            }
        };
    }

    /// <summary>Searches one project (<paramref name="projectId"/>) or, with null, every project in the data dir.</summary>
    public IReadOnlyList<SearchHit> Search(string query, int limit, string? projectId, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new InvalidInputException("query", "must not be empty");
        }

        if (limit is < 1 or > MaxLimit)
        {
            throw new InvalidInputException("limit", $"must be between 1 and {MaxLimit}");
        }

        string q = query.ToLowerInvariant();
        var hits = new List<SearchHit>();
        foreach (var session in SessionsInScope(projectId))
        {
            ct.ThrowIfCancellationRequested();
            string id = (string)session["id"]!;
            string title = session["title"] is JsonValue tv && tv.TryGetValue(out string? t) ? t : string.Empty;
            int ti = title.ToLowerInvariant().IndexOf(q, StringComparison.Ordinal);
            if (ti >= 0)
            {
                hits.Add(new SearchHit(session, null, null, Snippet(title, ti, q.Length), SessionStore.Updated(session)));
            }

            foreach (var doc in EntryOf(id).Docs)
            {
                int at = doc.Lower.IndexOf(q, StringComparison.Ordinal);
                if (at >= 0)
                {
                    hits.Add(new SearchHit(session, doc.MessageID, doc.PartID, Snippet(doc.Text, at, q.Length), doc.Time));
                }
            }
        }

        return hits.OrderByDescending(h => h.Time).ThenByDescending(h => h.PartID ?? string.Empty, StringComparer.Ordinal).Take(limit).ToList();
    }

    private IEnumerable<JsonObject> SessionsInScope(string? projectId)
    {
        if (projectId is not null)
        {
            return store.ListSessions(projectId, new SessionListQuery(IncludeArchived: true));
        }

        if (!Directory.Exists(store.Layout.SessionRoot))
        {
            return [];
        }

        return Directory.EnumerateDirectories(store.Layout.SessionRoot)
            .Select(Path.GetFileName)
            .Where(StoreLayout.IsValidProjectId)
            .SelectMany(p => store.ListSessions(p!, new SessionListQuery(IncludeArchived: true)));
    }

    private Entry EntryOf(string sessionId)
    {
        string msgDir = store.Layout.MessageDir(sessionId);
        var dirMtime = Directory.Exists(msgDir) ? Directory.GetLastWriteTimeUtc(msgDir) : DateTime.MinValue;
        if (cache.TryGetValue(sessionId, out var e) && e.MessageDirMtime == dirMtime && DateTime.UtcNow - dirMtime > TimeSpan.FromSeconds(2))
        {
            return e;
        }

        var docs = new List<Doc>();
        foreach (var m in store.ReadMessageInfos(sessionId))
        {
            string mid = (string)m["id"]!;
            long time = SessionStore.Created(m);
            foreach (var p in store.ReadParts(mid))
            {
                if (TextOf(p) is { Length: > 0 } text)
                {
                    docs.Add(new Doc(mid, (string?)p["id"], time, text, text.ToLowerInvariant()));
                }
            }
        }

        var entry = new Entry(dirMtime, docs);
        cache[sessionId] = entry;
        return entry;
    }

    /// <summary>The searchable text of a part: text and reasoning text; a tool's name, title, input, output and error.</summary>
    public static string? TextOf(JsonObject part)
    {
        switch ((string?)part["type"])
        {
            case "text":
            case "reasoning":
                return part["text"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
            case "tool":
                var sb = new StringBuilder();
                sb.Append((string?)part["tool"]);
                if (part["state"] is JsonObject state)
                {
                    foreach (var key in new[] { "title", "output", "error" })
                    {
                        if (state[key] is JsonValue sv && sv.TryGetValue(out string? str))
                        {
                            sb.Append('\n').Append(str);
                        }
                    }

                    if (state["input"] is JsonObject input && input.Count > 0)
                    {
                        sb.Append('\n').Append(JsJson.ToText(input, indented: false));
                    }
                }

                return sb.ToString();
            default:
                return null;
        }
    }

    private static string Snippet(string text, int at, int length)
    {
        int start = Math.Max(0, at - SnippetContext);
        int end = Math.Min(text.Length, at + length + SnippetContext);
        var s = new StringBuilder();
        if (start > 0)
        {
            s.Append('…');
        }

        foreach (char c in text.AsSpan(start, end - start))
        {
            s.Append(char.IsWhiteSpace(c) ? ' ' : c);
        }

        if (end < text.Length)
        {
            s.Append('…');
        }

        return s.ToString();
    }

    private static string? SessionOf(StoreEvent e) => e.Type switch
    {
        "message.updated" => (string?)e.Properties["info"]?["sessionID"],
        "message.part.updated" => (string?)e.Properties["part"]?["sessionID"],
        "message.removed" or "message.part.removed" => (string?)e.Properties["sessionID"],
        "session.deleted" => (string?)e.Properties["info"]?["id"],
        _ => null,
    };

    private sealed record Doc(string MessageID, string? PartID, long Time, string Text, string Lower);

    private sealed record Entry(DateTime MessageDirMtime, List<Doc> Docs);
}
