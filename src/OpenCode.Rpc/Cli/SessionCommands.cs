using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Share;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Cli;

/// <summary><c>session list</c> and <c>session delete</c>, with OpenCode's output.</summary>
public static class SessionCommands
{
    /// <summary>Minimum column widths of 1.1.65's table (<c>formatSessionTable</c>).</summary>
    private const int MinIdWidth = 20;
    private const int MinTitleWidth = 25;

    public static Command Create()
    {
        var maxCount = new Option<double?>("--max-count", "-n") { Description = "limit to N most recent sessions" };
        var format = new Option<string>("--format") { Description = "output format", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var list = new Command("list", "list sessions") { maxCount, format };
        list.SetAction((pr, ct) => CliApp.GuardAsync(() =>
        {
            var store = OpenStore(pr);
            var project = ProjectResolver.Resolve(CliApp.ProjectDir(pr));
            var sessions = Cap(store.ListSessions(project.Id, new SessionListQuery(Roots: true, IncludeArchived: true)), pr.GetValue(maxCount));
            if (sessions.Count == 0)
            {
                return Task.FromResult(0); // 1.1.65 prints nothing at all, not even "[]"
            }

            string text = pr.GetValue(format) == "json" ? Json(sessions) : Table(sessions, DateTimeOffset.Now);
            WriteStdout(text);
            return Task.FromResult(0);
        }));

        var id = new Argument<string>("sessionID") { Description = "session ID to delete" };
        var configDir = CliApp.NewConfigDirOption();
        var delete = new Command("delete", "delete a session (and its share, if it is shared)") { id, configDir };
        delete.SetAction((pr, ct) => CliApp.GuardAsync(async () =>
        {
            var store = OpenStore(pr);
            string sid = pr.GetValue(id)!;
            await store.DeleteSessionAsync(sid, ct).ConfigureAwait(false);
            WriteStdout($"Session {sid} deleted\n");
            await DeleteSharesAsync(store, pr, configDir, ct).ConfigureAwait(false);
            return 0;
        }));

        return new Command("session", "manage sessions") { list, delete };
    }

    /// <summary>1.1.65 applies <c>-n</c> as <c>sessions.slice(0, n)</c> when n is truthy: no cap by default or
    /// for 0, the first n for n &gt; 0, all but the last |n| for n &lt; 0, and a fraction truncated toward zero.
    /// (The 100-row default cap belongs to later releases.)</summary>
    public static IReadOnlyList<JsonObject> Cap(IReadOnlyList<JsonObject> sessions, double? n)
    {
        if (n is not double d || d == 0 || double.IsNaN(d))
        {
            return sessions;
        }

        double end = d < 0 ? Math.Max(0, sessions.Count + Math.Truncate(d)) : Math.Min(sessions.Count, Math.Truncate(d));
        return sessions.Take((int)end).ToList();
    }

    /// <summary>Deletes the shares of the sessions just deleted (and any still queued) on their server. The local
    /// delete has succeeded either way: a server that cannot be reached leaves the delete queued, for the next
    /// sidecar to send, and says so on stderr.</summary>
    private static async Task DeleteSharesAsync(SessionStore store, ParseResult pr, Option<string?> configDir, CancellationToken ct)
    {
        if (ShareDeletes.Pending(store.Layout).Count == 0)
        {
            return;
        }

        var project = ProjectResolver.Resolve(CliApp.ProjectDir(pr));
        string baseUrl = CliApp.Config(pr, configDir, project).ShareBaseUrl;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        bool done = await ShareDeletes.SendAsync(store.Layout, () => baseUrl, http, CliApp.Log, ct).ConfigureAwait(false);
        if (!done)
        {
            CliApp.Log("the share could not be deleted on its server now; the delete is queued and `opencode-rpc serve` retries it");
        }
    }

    // A CLI verb reads each file once and exits: keeping parsed files would only raise its peak memory (an export of
    // a 200 MB session must stay small), so its store keeps none. What it writes is durable through the journal
    // before it exits; the files' own flush is left to a helper (CheckpointCommand).
    internal static SessionStore OpenStore(ParseResult pr)
    {
        var store = new SessionStore(new StoreLayout(CliApp.DataDir(pr)), warn: m => CliApp.Log("warning: " + m), readCacheBytes: 0);
        CheckpointCommand.Arm(store);
        return store;
    }

    /// <summary>OpenCode's table: id and title columns padded to their widest value, two spaces apart, a rule of
    /// box-drawing dashes as wide as the header, and the time alone for today or "time · date" otherwise.</summary>
    public static string Table(IReadOnlyList<JsonObject> sessions, DateTimeOffset now)
    {
        if (sessions.Count == 0)
        {
            return string.Empty;
        }

        int idW = Math.Max(MinIdWidth, sessions.Max(s => Str(s, "id").Length));
        int titleW = Math.Max(MinTitleWidth, sessions.Max(s => Str(s, "title").Length));
        var sb = new StringBuilder();
        string header = "Session ID".PadRight(idW) + "  " + "Title".PadRight(titleW) + "  " + "Updated";
        sb.Append(header).Append('\n');
        sb.Append(new string('─', header.Length)).Append('\n');
        foreach (var s in sessions)
        {
            sb.Append(Str(s, "id").PadRight(idW)).Append("  ").Append(Str(s, "title").PadRight(titleW)).Append("  ")
              .Append(FormatUpdated(SessionStore.Updated(s), now)).Append('\n');
        }

        return sb.ToString();
    }

    public static string FormatUpdated(long ms, DateTimeOffset now)
    {
        var t = TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(ms), TimeZoneInfo.Local);
        string time = t.ToString("h:mm tt", CultureInfo.InvariantCulture);
        return t.Date == now.ToOffset(t.Offset).Date ? time : $"{time} · {t.ToString("M/d/yyyy", CultureInfo.InvariantCulture)}";
    }

    /// <summary>OpenCode's <c>--format json</c>: <c>[{id, title, updated, created, projectId, directory}]</c>.</summary>
    public static string Json(IReadOnlyList<JsonObject> sessions)
    {
        var arr = new JsonArray();
        foreach (var s in sessions)
        {
            arr.Add((JsonNode)new JsonObject
            {
                ["id"] = Str(s, "id"),
                ["title"] = Str(s, "title"),
                ["updated"] = SessionStore.Updated(s),
                ["created"] = SessionStore.Created(s),
                ["projectId"] = Str(s, "projectID"),
                ["directory"] = Str(s, "directory"),
            });
        }

        return JsJson.ToText(arr) + "\n";
    }

    private static string Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : string.Empty;

    /// <summary>Writes all of <paramref name="text"/> to stdout and flushes, so a pipe gets every byte before exit.</summary>
    internal static void WriteStdout(string text)
    {
        using var stdout = Console.OpenStandardOutput();
        var bytes = Encoding.UTF8.GetBytes(text);
        stdout.Write(bytes);
        stdout.Flush();
    }
}
