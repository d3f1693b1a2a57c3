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
/// writes touch the session, when the store watcher reports another process's write to it (<see cref="Forget"/>), or
/// when its message folder changed on disk (another process, with no watcher).
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
        store.Changed += Forget;
    }

    /// <summary>Drops what is kept of the session a change is about. Our own writes arrive here through the store;
    /// the server also passes the store watcher's reports of other processes' writes: a part another window streams
    /// into an existing message changes its part folder, not the message folder whose mtime an entry is checked by.</summary>
    public void Forget(StoreEvent e)
    {
        if (SessionOf(e) is { } id)
        {
            cache.TryRemove(id, out _);
        }
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
        var sessions = SessionsInScope(projectId).ToList();
        var found = new List<SearchHit>?[sessions.Count];
        using var root = FileStamps.OpenRoot(store.Layout.Storage);
        // Sessions are independent: a cold search reads ~40 files per session and a warm one stats a folder and scans
        // its text, so both run on every core. Hits are kept per session and joined in list order, so ties sort as
        // they did one session after another.
        IoParallel.For(sessions.Count, i => found[i] = SearchSession(root, sessions[i], q), ct);
        var hits = new List<SearchHit>();
        foreach (var list in found)
        {
            if (list is not null)
            {
                hits.AddRange(list);
            }
        }

        return hits.OrderByDescending(h => h.Time).ThenByDescending(h => h.PartID ?? string.Empty, StringComparer.Ordinal).Take(limit).ToList();
    }

    private List<SearchHit>? SearchSession(StampRoot root, JsonObject session, string q)
    {
        string id = (string)session["id"]!;
        string title = session["title"] is JsonValue tv && tv.TryGetValue(out string? t) ? t : string.Empty;
        var entry = EntryOf(root, id);
        List<SearchHit>? hits = null;
        // The lower-cased title is kept with the entry while the title is the same string.
        var lower = entry.Title;
        if (lower is null || !string.Equals(lower.Original, title, StringComparison.Ordinal))
        {
            entry.Title = lower = new LowerTitle(title, title.ToLowerInvariant());
        }

        int ti = lower.Lower.IndexOf(q, StringComparison.Ordinal);
        if (ti >= 0)
        {
            (hits ??= []).Add(new SearchHit(session, null, null, Snippet(title, ti, q.Length), SessionStore.Updated(session)));
        }

        foreach (var doc in entry.Docs)
        {
            int at = doc.Lower.IndexOf(q, StringComparison.Ordinal);
            if (at >= 0)
            {
                (hits ??= []).Add(new SearchHit(session, doc.MessageID, doc.PartID, Snippet(doc.Text, at, q.Length), doc.Time));
            }
        }

        return hits;
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

    private Entry EntryOf(StampRoot root, string sessionId)
    {
        // The clock before the stat, as every racy-window check here: a change after it gets a later mtime.
        DateTime now = DateTime.UtcNow;
        var stamp = root.Of(store.Layout.MessageDir(sessionId));
        long dirTicks = stamp.Exists ? stamp.MtimeTicks : 0;
        if (cache.TryGetValue(sessionId, out var e) && e.MessageDirTicks == dirTicks && now - new DateTime(dirTicks, DateTimeKind.Utc) > TimeSpan.FromSeconds(2))
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

        var entry = new Entry(dirTicks, docs);
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

    private sealed record LowerTitle(string Original, string Lower);

    private sealed record Entry(long MessageDirTicks, List<Doc> Docs)
    {
        /// <summary>Replaced whole (one reference write), so concurrent searches never see half of it.</summary>
        public LowerTitle? Title { get; set; }
    }
}
