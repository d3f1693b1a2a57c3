using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Share;

/// <summary>
/// Deleting a shared session deletes its share on the server (<c>DELETE &lt;base&gt;/api/share/&lt;id&gt;</c> with the
/// secret), as OpenCode's session remove does. OpenCode ignores a failure there and the share stays public forever;
/// here <see cref="SessionStore.DeleteSessionAsync"/> moves the share record into
/// <c>&lt;data&gt;/opencode-rpc/share-deletes/&lt;sessionID&gt;.json</c> first, and this queue sends the delete until the
/// server confirms it (or says the share is already gone), surviving restarts. The base URL is pinned into the
/// queued record at the first attempt, so a later config change cannot send the secret to another server.
/// </summary>
public static partial class ShareDeletes
{
    /// <summary>Share ids go into a URL path: only what OpenCode's server hands out.</summary>
    [GeneratedRegex("^[A-Za-z0-9_-]{1,128}$")]
    private static partial Regex ShareId();

    /// <summary>The session ids whose share is still to be deleted, oldest first.</summary>
    public static IReadOnlyList<string> Pending(StoreLayout layout)
    {
        if (!Directory.Exists(layout.ShareDeleteDir))
        {
            return [];
        }

        return Directory.EnumerateFiles(layout.ShareDeleteDir, "*.json")
            .Select(f => (Id: Path.GetFileNameWithoutExtension(f), Time: File.GetLastWriteTimeUtc(f)))
            .Where(x => Identifier.IsValid(x.Id, Identifier.Session))
            .OrderBy(x => x.Time).ThenBy(x => x.Id, StringComparer.Ordinal)
            .Select(x => x.Id).ToList();
    }

    /// <summary>Tries every queued delete once. True when the queue is empty afterwards; failures that may pass
    /// (server down, 5xx, 408, 429) stay queued and are logged, permanent refusals are logged and dropped.</summary>
    public static async Task<bool> SendAsync(StoreLayout layout, Func<string> baseUrl, HttpClient http, Action<string> log, CancellationToken ct)
    {
        bool done = true;
        foreach (var sessionId in Pending(layout))
        {
            ct.ThrowIfCancellationRequested();
            string file = layout.ShareDeleteFile(sessionId);
            JsonObject? record;
            try
            {
                record = SessionStore.ReadObject(file);
            }
            catch (StoreCorruptException ex)
            {
                log($"share: dropping the unreadable share-delete record {file}: {ex.Message}");
                AtomicFile.Delete(file);
                continue;
            }

            if (record is null)
            {
                continue; // sent meanwhile by another process
            }

            if (Str(record, "id") is not { } id || !ShareId().IsMatch(id) || Str(record, "secret") is not { Length: > 0 } secret)
            {
                log($"share: dropping the share-delete record {file}: it has no valid id and secret");
                AtomicFile.Delete(file);
                continue;
            }

            string target = Str(record, "baseUrl") ?? baseUrl();
            if (record["baseUrl"] is null)
            {
                record["baseUrl"] = target;
                AtomicFile.Write(file, JsJson.ToBytes(record));
            }

            try
            {
                await ShareService.SendAsync(http, HttpMethod.Delete, $"{target}/api/share/{id}", new JsonObject { ["secret"] = secret }, ct).ConfigureAwait(false);
                log($"share: deleted the share {id} of deleted session {sessionId} on {target}");
            }
            catch (ShareHttpException ex) when (ex.Status == HttpStatusCode.NotFound)
            {
                // Already gone on the server: nothing left to do.
            }
            catch (ShareHttpException ex) when ((int)ex.Status is >= 400 and < 500 and not 408 and not 429)
            {
                log($"share: the server refused to delete the share {id} of deleted session {sessionId}, not retrying: {ex.Message}");
            }
            catch (OpenCodeException ex)
            {
                log($"share: could not delete the share {id} of deleted session {sessionId} on {target} yet; it stays queued: {ex.Message}");
                done = false;
                continue;
            }

            AtomicFile.Delete(file);
        }

        return done;
    }

    private static string? Str(JsonObject o, string name) =>
        o[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
