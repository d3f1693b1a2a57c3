using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Transfer;

/// <summary>Where a database import is: sessions done out of the total, and the one just handled.</summary>
public sealed record DbImportProgress(int Done, int Total, string? SessionID, int Messages, int Parts);

/// <summary>A session the database holds that could not be brought in, and why (e.g. an id that is not a safe file name).</summary>
public sealed record DbImportSkip(string SessionID, string Reason);

/// <summary>What a database import brought in.</summary>
public sealed record DbImportResult(int Sessions, int Messages, int Parts, IReadOnlyList<DbImportSkip> Skipped);

/// <summary>
/// Brings the sessions of a real OpenCode ≥ 1.2 (<c>&lt;data&gt;/opencode.db</c>, SQLite) into our JSON store. The
/// database is opened read-only and never changed. Rows are folded back into OpenCode's JSON shapes exactly as
/// OpenCode's own export does: a message is its <c>data</c> followed by <c>id</c> and <c>sessionID</c>; a part its
/// <c>data</c> followed by <c>id</c>, <c>sessionID</c> and <c>messageID</c>; the session's columns become
/// Session.Info. Each session goes through the same validated, atomic write as a file import (keeping its own
/// projectID); a session that fails is reported in <see cref="DbImportResult.Skipped"/> and the rest go on.
/// </summary>
public static class OpenCodeDbImporter
{
    /// <summary>OpenCode's database path: <c>$OPENCODE_DB</c> (absolute, or relative to the data dir), else
    /// <c>&lt;data&gt;/opencode.db</c>.</summary>
    public static string DefaultPath(string dataDir)
    {
        string? env = Environment.GetEnvironmentVariable("OPENCODE_DB");
        if (!string.IsNullOrEmpty(env) && env != ":memory:")
        {
            return Path.IsPathRooted(env) ? env : Path.Combine(dataDir, env);
        }

        return Path.Combine(dataDir, "opencode.db");
    }

    public static async Task<DbImportResult> ImportAsync(SessionStore store, string dbPath, ImportLimits limits, IProgress<DbImportProgress>? progress, CancellationToken ct)
    {
        string full = Path.GetFullPath(dbPath);
        if (!File.Exists(full))
        {
            throw new InvalidInputException("path", "does not exist", $"No OpenCode database at {full}.");
        }

        var csb = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadOnly, Pooling = false };
        await using var db = new SqliteConnection(csb.ToString());
        try
        {
            await db.OpenAsync(ct).ConfigureAwait(false);
            foreach (var table in new[] { "session", "message", "part" })
            {
                if (!await HasTableAsync(db, table, ct).ConfigureAwait(false))
                {
                    throw new InvalidInputException("path", "is not an OpenCode database", $"{full} is not an OpenCode database: it has no {table} table.");
                }
            }
        }
        catch (SqliteException ex)
        {
            throw new InvalidInputException("path", "cannot be opened", $"Cannot open {full} as an OpenCode database: {ex.Message}");
        }

        var projects = await ReadProjectsAsync(db, ct).ConfigureAwait(false);
        var sessions = await ReadSessionsAsync(db, ct).ConfigureAwait(false);
        var skipped = new List<DbImportSkip>();
        int done = 0, messages = 0, parts = 0, imported = 0;
        progress?.Report(new DbImportProgress(0, sessions.Count, null, 0, 0));
        foreach (var info in sessions)
        {
            ct.ThrowIfCancellationRequested();
            string id = (string?)info["id"] ?? string.Empty;
            try
            {
                if (!Identifier.IsValid(id, Identifier.Session))
                {
                    throw new InvalidInputException("id", Identifier.Explain(id, Identifier.Session), $"The session id {id} {Identifier.Explain(id, Identifier.Session)}.");
                }

                var data = await ReadSessionDataAsync(db, info, ct).ConfigureAwait(false);
                SessionImporter.Validate(data, limits);
                string projectId = (string?)info["projectID"] ?? ProjectInfo.GlobalId;
                if (projects.TryGetValue(projectId, out var project) && StoreLayout.IsValidProjectId(projectId))
                {
                    ProjectResolver.EnsureProjectFile(store.Layout, project, store.Now);
                }

                var r = await SessionImporter.WriteAsync(store, data, project: null, ct).ConfigureAwait(false);
                imported++;
                messages += r.Messages;
                parts += r.Parts;
            }
            catch (OpenCodeException ex)
            {
                skipped.Add(new DbImportSkip(id, ex.Message));
            }

            done++;
            progress?.Report(new DbImportProgress(done, sessions.Count, id, messages, parts));
        }

        return new DbImportResult(imported, messages, parts, skipped);
    }

    private static async Task<bool> HasTableAsync(SqliteConnection db, string table, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $name";
        cmd.Parameters.AddWithValue("$name", table);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null;
    }

    private static async Task<Dictionary<string, ProjectInfo>> ReadProjectsAsync(SqliteConnection db, CancellationToken ct)
    {
        var result = new Dictionary<string, ProjectInfo>(StringComparer.Ordinal);
        if (!await HasTableAsync(db, "project", ct).ConfigureAwait(false))
        {
            return result;
        }

        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT * FROM project";
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            string id = Text(r, "id") ?? string.Empty;
            string worktree = Text(r, "worktree") ?? "/";
            result[id] = new ProjectInfo(id, worktree, worktree, Text(r, "vcs"), worktree);
        }

        return result;
    }

    /// <summary>Every session row as Session.Info, in OpenCode 1.18's export key order.</summary>
    private static async Task<List<JsonObject>> ReadSessionsAsync(SqliteConnection db, CancellationToken ct)
    {
        var list = new List<JsonObject>();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT * FROM session ORDER BY time_created, id";
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(SessionInfoOf(r));
        }

        return list;
    }

    /// <summary>One session row folded back into Session.Info (columns that are NULL are left out, as OpenCode
    /// leaves undefined fields out).</summary>
    public static JsonObject SessionInfoOf(SqliteDataReader r)
    {
        var o = new JsonObject { ["id"] = Text(r, "id") };
        Put(o, "slug", Text(r, "slug"));
        Put(o, "projectID", Text(r, "project_id"));
        Put(o, "workspaceID", Text(r, "workspace_id"));
        Put(o, "directory", Text(r, "directory"));
        Put(o, "path", Text(r, "path"));
        Put(o, "parentID", Text(r, "parent_id"));
        Put(o, "title", Text(r, "title"));
        Put(o, "agent", Text(r, "agent"));
        PutJson(o, "model", Text(r, "model"));
        Put(o, "version", Text(r, "version"));
        if (Long(r, "summary_additions") is long add)
        {
            var summary = new JsonObject
            {
                ["additions"] = add,
                ["deletions"] = Long(r, "summary_deletions") ?? 0,
                ["files"] = Long(r, "summary_files") ?? 0,
            };
            PutJson(summary, "diffs", Text(r, "summary_diffs"));
            o["summary"] = summary;
        }

        if (Has(r, "cost"))
        {
            o["cost"] = Number(r, "cost") ?? 0;
            var tokens = new JsonObject
            {
                ["input"] = Long(r, "tokens_input") ?? 0,
                ["output"] = Long(r, "tokens_output") ?? 0,
                ["reasoning"] = Long(r, "tokens_reasoning") ?? 0,
                ["cache"] = new JsonObject { ["read"] = Long(r, "tokens_cache_read") ?? 0, ["write"] = Long(r, "tokens_cache_write") ?? 0 },
            };
            o["tokens"] = tokens;
        }

        if (Text(r, "share_url") is { Length: > 0 } url)
        {
            o["share"] = new JsonObject { ["url"] = url };
        }

        PutJson(o, "metadata", Text(r, "metadata"));
        PutJson(o, "revert", Text(r, "revert"));
        PutJson(o, "permission", Text(r, "permission"));
        var time = new JsonObject { ["created"] = Long(r, "time_created") ?? 0, ["updated"] = Long(r, "time_updated") ?? 0 };
        if (Long(r, "time_compacting") is long compacting)
        {
            time["compacting"] = compacting;
        }

        if (Long(r, "time_archived") is long archived)
        {
            time["archived"] = archived;
        }

        o["time"] = time;
        return o;
    }

    private static async Task<ImportData> ReadSessionDataAsync(SqliteConnection db, JsonObject info, CancellationToken ct)
    {
        string sessionId = info["id"]!.GetValue<string>();
        var messages = new List<(JsonObject Info, List<JsonObject> Parts)>();
        var byId = new Dictionary<string, List<JsonObject>>(StringComparer.Ordinal);
        await using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = "SELECT id, data FROM message WHERE session_id = $s ORDER BY time_created, id";
            cmd.Parameters.AddWithValue("$s", sessionId);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                string id = r.GetString(0);
                var m = ParseRow(r.GetString(1), "message", id);
                m["id"] = id;
                m["sessionID"] = sessionId;
                var parts = new List<JsonObject>();
                byId[id] = parts;
                messages.Add((m, parts));
            }
        }

        await using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = "SELECT id, message_id, data FROM part WHERE session_id = $s ORDER BY message_id, id";
            cmd.Parameters.AddWithValue("$s", sessionId);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                string id = r.GetString(0);
                string messageId = r.GetString(1);
                if (!byId.TryGetValue(messageId, out var list))
                {
                    continue; // a part whose message row is gone: OpenCode cannot show it either
                }

                var p = ParseRow(r.GetString(2), "part", id);
                p["id"] = id;
                p["sessionID"] = sessionId;
                p["messageID"] = messageId;
                list.Add(p);
            }
        }

        return new ImportData(info, messages.Select(m => new MessageWithParts(m.Info, m.Parts)).ToList());
    }

    private static JsonObject ParseRow(string json, string what, string id)
    {
        try
        {
            return JsonNode.Parse(json) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException ex)
        {
            throw new OpenCodeException(ErrorKind.StoreCorrupt, $"The {what} row {id} holds unreadable data: {ex.Message}");
        }
    }

    private static bool Has(SqliteDataReader r, string column)
    {
        for (int i = 0; i < r.FieldCount; i++)
        {
            if (r.GetName(i) == column)
            {
                return true;
            }
        }

        return false;
    }

    private static int Ordinal(SqliteDataReader r, string column)
    {
        for (int i = 0; i < r.FieldCount; i++)
        {
            if (r.GetName(i) == column)
            {
                return i;
            }
        }

        return -1;
    }

    private static string? Text(SqliteDataReader r, string column)
    {
        int i = Ordinal(r, column);
        return i < 0 || r.IsDBNull(i) ? null : r.GetValue(i)?.ToString();
    }

    private static long? Long(SqliteDataReader r, string column)
    {
        int i = Ordinal(r, column);
        return i < 0 || r.IsDBNull(i) ? null : r.GetInt64(i);
    }

    private static double? Number(SqliteDataReader r, string column)
    {
        int i = Ordinal(r, column);
        return i < 0 || r.IsDBNull(i) ? null : r.GetDouble(i);
    }

    private static void Put(JsonObject o, string key, string? value)
    {
        if (value is not null)
        {
            o[key] = value;
        }
    }

    private static void PutJson(JsonObject o, string key, string? json)
    {
        if (json is null)
        {
            return;
        }

        try
        {
            o[key] = JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            o[key] = json; // keep what is there rather than lose it
        }
    }
}
