using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Transfer;

/// <summary>A session as an import brings it: its info and its messages with their parts.</summary>
public sealed record ImportData(JsonObject Info, IReadOnlyList<MessageWithParts> Messages)
{
    public string SessionId => Info["id"]!.GetValue<string>();

    public int PartCount => Messages.Sum(m => m.Parts.Count);
}

/// <summary>What an import brought in: the session id and the counts of the session, its messages and its parts.</summary>
public sealed record ImportResult(string SessionID, int Session, int Messages, int Parts);

/// <summary>
/// <c>opencode import</c>, done safely:
/// <list type="number">
/// <item>everything is parsed and validated before anything is written (OpenCode's required fields; every
/// message and part must belong to the session and message that hold it; no duplicate ids; size, depth and count
/// caps); a failure names the JSON path, e.g. <c>["info"]["time"]["updated"]</c>;</item>
/// <item>messages and parts are written first, then the file system is synced once, then the session file is
/// written last: until that moment nobody sees the session; on any failure every file the import created is
/// removed, so nothing of it stays;</item>
/// <item>like OpenCode 1.18, the session is filed under the importing project: <c>projectID</c>, <c>directory</c>
/// (and <c>path</c>, where the data has it) are replaced by the current project's; a session already in the store
/// keeps its other fields and moves to this project; messages and parts already present are left as they are
/// (OpenCode's ON CONFLICT DO NOTHING), so a re-import is idempotent.</item>
/// </list>
/// </summary>
public static class SessionImporter
{
    /// <summary>Reads an import file, refusing one over the size cap before reading it.</summary>
    public static async Task<byte[]> ReadFileAsync(string path, ImportLimits limits, CancellationToken ct)
    {
        string full = Path.GetFullPath(path);
        var fi = new FileInfo(full);
        if (!fi.Exists)
        {
            throw new InvalidInputException("path", "does not exist", $"File not found: {path}");
        }

        if (fi.Length > limits.MaxBytes)
        {
            throw TooLarge(fi.Length, limits);
        }

        try
        {
            return await File.ReadAllBytesAsync(full, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException("path", "cannot be read", $"Cannot read {path}: {ex.Message}");
        }
    }

    public static OpenCodeException TooLarge(long size, ImportLimits limits) => new(
        ErrorKind.LimitExceeded,
        $"The import is {size} bytes, over the limit of {limits.MaxBytes} bytes.");

    /// <summary>Parses JSON text; a syntax error says so, with its line and column.</summary>
    public static JsonNode ParseJson(ReadOnlySpan<byte> utf8, string source, ImportLimits limits)
    {
        if (utf8.Length > limits.MaxBytes)
        {
            throw TooLarge(utf8.Length, limits);
        }

        if (utf8.Length >= 3 && utf8[0] == 0xEF && utf8[1] == 0xBB && utf8[2] == 0xBF)
        {
            utf8 = utf8[3..];
        }

        // JsJson.Parse is the store's reader: it refuses invalid UTF-8 and duplicate keys up front and decodes lone
        // surrogate escapes as JavaScript does. System.Text.Json alone checks both only when a value is first read,
        // which surfaced as an InvalidOperationException after validation (found by the import fuzz target).
        try
        {
            return JsJson.Parse(utf8, limits.MaxDepth)
                ?? throw new InvalidInputException(source, "is null", $"Invalid JSON in {source}: the document is null.");
        }
        catch (JsonException ex)
        {
            string reason = ex.Message;
            int cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut < 0)
            {
                cut = reason.IndexOf(" Path:", StringComparison.Ordinal);
            }

            if (cut > 0)
            {
                reason = reason[..cut];
            }

            reason = reason.TrimEnd('.', ' ');
            string where = ex.LineNumber is long line ? $" at line {line + 1}, column {(ex.BytePositionInLine ?? 0) + 1}" : string.Empty;
            if (reason.Contains("maximum configured depth", StringComparison.Ordinal))
            {
                throw new OpenCodeException(ErrorKind.LimitExceeded, $"The JSON in {source} nests deeper than {limits.MaxDepth} levels{where}.");
            }

            throw new InvalidInputException(source, "is not valid JSON", $"Invalid JSON in {source}: {reason}{where}.");
        }
    }

    /// <summary>Turns a parsed export document into <see cref="ImportData"/>, validating all of it.</summary>
    public static ImportData FromJson(JsonNode root, ImportLimits limits)
    {
        if (root is not JsonObject obj)
        {
            throw Invalid("", "must be an object {info, messages}");
        }

        if (obj["info"] is not JsonObject info)
        {
            throw obj["info"] is null ? Invalid("info", "is required") : Invalid("info", "must be an object");
        }

        Guard(() => OpenCodeSchema.ValidateSession(info, "info"));
        if (obj["messages"] is not JsonArray arr)
        {
            throw obj["messages"] is null ? Invalid("messages", "is required") : Invalid("messages", "must be an array");
        }

        if (arr.Count > limits.MaxMessages)
        {
            throw new OpenCodeException(ErrorKind.LimitExceeded, $"The import has {arr.Count} messages, over the limit of {limits.MaxMessages}.");
        }

        var messages = new List<MessageWithParts>(arr.Count);
        for (int i = 0; i < arr.Count; i++)
        {
            string at = $"messages[{i}]";
            if (arr[i] is not JsonObject m)
            {
                throw Invalid(at, "must be an object {info, parts}");
            }

            if (m["info"] is not JsonObject mi)
            {
                throw m["info"] is null ? Invalid(at + ".info", "is required") : Invalid(at + ".info", "must be an object");
            }

            if (m["parts"] is not JsonArray pa)
            {
                throw m["parts"] is null ? Invalid(at + ".parts", "is required") : Invalid(at + ".parts", "must be an array");
            }

            var parts = new List<JsonObject>(pa.Count);
            for (int j = 0; j < pa.Count; j++)
            {
                parts.Add(pa[j] as JsonObject ?? throw Invalid($"{at}.parts[{j}]", "must be an object"));
            }

            messages.Add(new MessageWithParts(mi, parts));
        }

        var data = new ImportData(info, messages);
        Validate(data, limits);
        return data;
    }

    /// <summary>Checks every message and part against OpenCode's schema and against the session that holds them.</summary>
    public static void Validate(ImportData data, ImportLimits limits, string messagesAt = "messages")
    {
        Guard(() => OpenCodeSchema.ValidateSession(data.Info, "info"));
        string sessionId = data.SessionId;
        if (data.Messages.Count > limits.MaxMessages)
        {
            throw new OpenCodeException(ErrorKind.LimitExceeded, $"The import has {data.Messages.Count} messages, over the limit of {limits.MaxMessages}.");
        }

        int partCount = data.PartCount;
        if (partCount > limits.MaxParts)
        {
            throw new OpenCodeException(ErrorKind.LimitExceeded, $"The import has {partCount} parts, over the limit of {limits.MaxParts}.");
        }

        var messageIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var partIds = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < data.Messages.Count; i++)
        {
            var (mi, parts) = (data.Messages[i].Info, data.Messages[i].Parts);
            string at = $"{messagesAt}[{i}]";
            Guard(() => OpenCodeSchema.ValidateMessage(mi, at + ".info"));
            string messageId = mi["id"]!.GetValue<string>();
            if ((string?)mi["sessionID"] != sessionId)
            {
                throw Invalid(at + ".info.sessionID", $"must be the session's id {sessionId}, got {mi["sessionID"]!.ToJsonString()}");
            }

            if (!messageIds.TryAdd(messageId, i))
            {
                throw Invalid(at + ".info.id", $"repeats the id of {messagesAt}[{messageIds[messageId]}]");
            }

            for (int j = 0; j < parts.Count; j++)
            {
                var p = parts[j];
                string pat = $"{at}.parts[{j}]";
                Guard(() => OpenCodeSchema.ValidatePart(p, pat));
                if ((string?)p["sessionID"] != sessionId)
                {
                    throw Invalid(pat + ".sessionID", $"must be the session's id {sessionId}, got {p["sessionID"]!.ToJsonString()}");
                }

                if ((string?)p["messageID"] != messageId)
                {
                    throw Invalid(pat + ".messageID", $"must be its message's id {messageId}, got {p["messageID"]!.ToJsonString()}");
                }

                if (!partIds.Add(p["id"]!.GetValue<string>()))
                {
                    throw Invalid(pat + ".id", "repeats the id of another part");
                }
            }
        }
    }

    /// <summary>Parses, validates and writes an export document, filing it under <paramref name="project"/>.</summary>
    public static Task<ImportResult> ImportJsonAsync(SessionStore store, ReadOnlySpan<byte> utf8, string source, ProjectInfo project, ImportLimits limits, CancellationToken ct)
    {
        var data = FromJson(ParseJson(utf8, source, limits), limits);
        return WriteAsync(store, data, project, ct);
    }

    /// <summary>
    /// Writes validated data. With <paramref name="project"/>, the session is filed under it (projectID, directory
    /// and path overridden, as OpenCode 1.18 does); without, it keeps the projectID it has (a database import).
    /// </summary>
    public static async Task<ImportResult> WriteAsync(SessionStore store, ImportData data, ProjectInfo? project, CancellationToken ct, bool publish = true)
    {
        var layout = store.Layout;
        string sessionId = data.SessionId;
        string targetProject = project?.Id ?? (data.Info["projectID"] is JsonValue pv && pv.GetValueKind() == JsonValueKind.String ? pv.GetValue<string>() : ProjectInfo.GlobalId);
        if (!StoreLayout.IsValidProjectId(targetProject))
        {
            throw Invalid("info.projectID", "must be 1 to 128 characters of [0-9A-Za-z]");
        }

        JsonObject info;
        bool existed;
        using (await store.LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            JsonObject? current = null;
            string? currentProject = null;
            if (store.SessionExists(sessionId))
            {
                (current, currentProject) = store.ReadSession(sessionId);
            }

            existed = current is not null;

            // storage/part/<messageID>/ is keyed by the message id alone: a message id another session already uses
            // would put this import's parts under that session's message (and a delete of either would take both).
            for (int i = 0; i < data.Messages.Count; i++)
            {
                string messageId = data.Messages[i].Info["id"]!.GetValue<string>();
                if (store.PartOwner(messageId) is { } owner && owner != sessionId)
                {
                    throw new OpenCodeException(ErrorKind.Conflict, $"Invalid session data: messages[{i}].info.id {messageId} already belongs to session {owner}; message ids must be unique across sessions.");
                }
            }

            if (project is not null)
            {
                ProjectResolver.EnsureProjectFile(layout, project, store.Now); // after every check: a refusal writes nothing
            }

            var bulk = store.NewBulkWriter();
            try
            {
                // A file that already exists is left alone (OpenCode inserts messages and parts ON CONFLICT DO
                // NOTHING). New folders move into storage/ whole; the session file, written last, makes them visible.
                bulk.WriteEach(data.Messages, (m, w) =>
                {
                    string messageId = m.Info["id"]!.GetValue<string>();
                    WriteNew(w, layout.MessageFile(sessionId, messageId), m.Info);
                    foreach (var p in m.Parts)
                    {
                        WriteNew(w, layout.PartFile(messageId, p["id"]!.GetValue<string>()), p);
                    }

                    w.Seal(layout.PartDir(messageId)); // complete: into storage/ while the others are written
                }, ct);

                ct.ThrowIfCancellationRequested();

                // The session file last: until it exists, nobody lists the session.
                info = current ?? (JsonObject)data.Info.DeepClone();
                if (project is not null)
                {
                    Override(info, project);
                }

                store.CommitBulk(bulk, targetProject, info);
            }
            catch
            {
                bulk.Rollback();
                throw;
            }

            if (currentProject is not null && currentProject != targetProject)
            {
                // Moved to this project (OpenCode's upsert updates project_id): drop the copy filed elsewhere.
                AtomicFile.Delete(layout.SessionFile(currentProject, sessionId));
            }
        }

        if (publish)
        {
            store.Publish(existed ? "session.updated" : "session.created", new JsonObject { ["info"] = info.DeepClone() });
        }

        return new ImportResult(sessionId, 1, data.Messages.Count, data.PartCount);
    }

    /// <summary>OpenCode 1.18's import override: the session belongs to the project and directory that import it.
    /// <c>path</c> (newer OpenCode's worktree-relative directory) is rewritten only where the data has it.</summary>
    public static void Override(JsonObject info, ProjectInfo project)
    {
        info["projectID"] = project.Id;
        info["directory"] = project.Directory;
        if (info.ContainsKey("path"))
        {
            string rel = Path.GetRelativePath(project.Worktree, project.Directory).Replace('\\', '/');
            info["path"] = rel == "." ? string.Empty : rel;
        }
    }

    private static void WriteNew(BulkWriter w, string file, JsonObject obj) => w.WriteNew(file, JsJson.ToBytes(obj));

    private static void Guard(Action validate)
    {
        try
        {
            validate();
        }
        catch (InvalidInputException ex)
        {
            throw Invalid(ex.Field, ex.Reason);
        }
    }

    /// <summary>An import validation failure naming the JSON path in OpenCode's notation.</summary>
    public static InvalidInputException Invalid(string dottedField, string reason)
    {
        string path = dottedField.Length == 0 ? "[]" : OpenCodeSchema.ToBracketPath(dottedField);
        string text = reason == "is required" ? "missing required key" : reason;
        return new InvalidInputException(path, reason, $"Invalid session data: {text} at {path}");
    }

    internal static bool IsId(JsonNode? n, string prefix) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String && Identifier.IsValid(v.GetValue<string>(), prefix);
}
