using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Core.Transfer;

namespace OpenCode.Rpc.Core.Share;

/// <summary>Config <c>share</c> (reference §8).</summary>
public enum ShareMode
{
    Manual,
    Auto,
    Disabled,
}

/// <summary>What OpenCode stores in <c>storage/session_share/&lt;sessionID&gt;.json</c>.</summary>
public sealed record ShareRecord(string Id, string Secret, string Url);

/// <summary>Where the share API is and whether sharing is allowed, read per call (config may change).</summary>
/// <param name="BaseUrl">The share API base (<c>enterprise.url</c>, else https://opncd.ai).</param>
/// <param name="Mode">The effective mode, with <c>OPENCODE_DISABLE_SHARE</c> applied.</param>
/// <param name="Config">The config the settings came from; the <c>model</c> sync item describes models from it.</param>
/// <param name="ModelsDevCache">OpenCode's models.dev cache file (see <see cref="ModelCatalog"/>), if any.</param>
public sealed record ShareSettings(string BaseUrl, ShareMode Mode, OpenCodeConfig? Config = null, string? ModelsDevCache = null)
{
    /// <summary>Reads <c>enterprise.url</c>, <c>share</c>, the deprecated <c>autoshare</c> from the same merged
    /// config every other feature reads (<see cref="OpenCodeConfig"/>, so an injected config dir is honoured), and
    /// the environment (<c>OPENCODE_DISABLE_SHARE</c> forces disabled, <c>OPENCODE_AUTO_SHARE</c> turns auto on).</summary>
    public static ShareSettings Read(ConfigLocations locations, string directory, string? worktree) =>
        From(OpenCodeConfig.Load(locations, directory, worktree));

    public static ShareSettings From(OpenCodeConfig config)
    {
        var mode = config.Share switch
        {
            "auto" => ShareMode.Auto,
            "disabled" => ShareMode.Disabled,
            null when config.AutoShare => ShareMode.Auto,
            _ => ShareMode.Manual,
        };
        if (mode == ShareMode.Manual && EnvTrue("OPENCODE_AUTO_SHARE"))
        {
            mode = ShareMode.Auto;
        }

        if (EnvTrue("OPENCODE_DISABLE_SHARE"))
        {
            mode = ShareMode.Disabled;
        }

        return new ShareSettings(config.ShareBaseUrl, mode, config, ModelCatalog.DefaultModelsDevCache());
    }

    private static bool EnvTrue(string name) => Environment.GetEnvironmentVariable(name) is "1" or "true";
}

/// <summary>
/// The ShareNext client, wire-compatible with OpenCode (reference §8). <see cref="ShareAsync"/> creates the share,
/// records it in <c>session_share/</c>, sets <c>session.share</c> and runs a full sync. Later store changes of a
/// shared session are queued per session, deduplicated by key (<c>session</c>, <c>message/&lt;id&gt;</c>,
/// <c>part/&lt;messageID&gt;/&lt;id&gt;</c>, <c>session_diff</c>, <c>model</c>), and sent about every second as
/// <c>POST &lt;base&gt;/api/share/&lt;id&gt;/sync</c>. The queue of each session is a side file
/// (<c>&lt;data&gt;/opencode-rpc/share-queue/&lt;sessionID&gt;.json</c>) rewritten atomically on every change, so a
/// restart loses nothing; a failed send is retried with exponential backoff.
/// </summary>
public sealed class ShareService : IDisposable
{
    public const int MaxItemsPerBatch = 500;

    private readonly SessionStore store;
    private readonly Func<ShareSettings> settings;
    private readonly HttpClient http;
    private readonly Action<string> log;
    private readonly TimeSpan debounce;
    private readonly TimeSpan maxBackoff;
    private readonly Lock gate = new();
    private readonly Dictionary<string, Queue> queues = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim wake = new(0);
    private readonly SemaphoreSlim sending = new(1, 1);
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    private long seq;

    public ShareService(SessionStore store, Func<ShareSettings> settings, Action<string> log, HttpClient? http = null, TimeSpan? debounce = null, TimeSpan? maxBackoff = null)
    {
        this.store = store;
        this.settings = settings;
        this.log = log;
        this.http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        this.debounce = debounce ?? TimeSpan.FromSeconds(1);
        this.maxBackoff = maxBackoff ?? TimeSpan.FromSeconds(30);
        Restore();
        store.Changed += OnChanged;
        loop = Task.Run(() => RunAsync(stop.Token));
        if (queues.Values.Any(q => q.Items.Count > 0) || ShareDeletes.Pending(store.Layout).Count > 0)
        {
            wake.Release();
        }
    }

    public string QueueDir => Path.Combine(store.Layout.SideDir, "share-queue");

    public string QueueFile(string sessionId) => Path.Combine(QueueDir, StoreLayout_Check(sessionId) + ".json");

    /// <summary>Items waiting to be sent for a session.</summary>
    public int Pending(string sessionId)
    {
        lock (gate)
        {
            return queues.TryGetValue(sessionId, out var q) ? q.Items.Count : 0;
        }
    }

    /// <summary>Deleted sessions whose share is still to be deleted on the server (<see cref="ShareDeletes"/>).</summary>
    public int PendingDeletes => ShareDeletes.Pending(store.Layout).Count;

    /// <summary>The share record OpenCode keeps for a session, or null.</summary>
    public ShareRecord? Record(string sessionId)
    {
        var o = SessionStore.ReadObject(store.Layout.SessionShareFile(sessionId));
        return o is not null && Str(o, "id") is { } id && Str(o, "secret") is { } secret
            ? new ShareRecord(id, secret, Str(o, "url") ?? string.Empty)
            : null;
    }

    /// <summary>Shares a session (or returns it as it is when it is already shared).</summary>
    public async Task<JsonObject> ShareAsync(string sessionId, bool sanitize, CancellationToken ct)
    {
        SessionStore.CheckId(sessionId, Identifier.Session, "sessionID");
        var s = settings();
        if (s.Mode == ShareMode.Disabled)
        {
            throw new OpenCodeException(ErrorKind.ShareDisabled, "Sharing is disabled in configuration (share: \"disabled\" or OPENCODE_DISABLE_SHARE).");
        }

        var info = store.GetSession(sessionId); // not found -> SessionNotFound
        if (Record(sessionId) is { } existing && info["share"] is JsonObject)
        {
            return info;
        }

        var created = await SendAsync(HttpMethod.Post, s.BaseUrl + "/api/share", new JsonObject { ["sessionID"] = sessionId }, ct).ConfigureAwait(false);
        if (Str(created, "id") is not { Length: > 0 } id || Str(created, "secret") is not { Length: > 0 } secret || Str(created, "url") is not { Length: > 0 } url)
        {
            throw new OpenCodeException(ErrorKind.FetchFailed, $"The share server at {s.BaseUrl} answered without id, secret and url.");
        }

        AtomicFile.Write(store.Layout.SessionShareFile(sessionId), JsJson.ToBytes(new JsonObject { ["id"] = id, ["secret"] = secret, ["url"] = url }));
        lock (gate)
        {
            queues[sessionId] = new Queue(sanitize);
            Persist(sessionId);
        }

        info = await store.UpdateSessionAsync(sessionId, i => i["share"] = new JsonObject { ["url"] = url }, ct).ConfigureAwait(false);
        EnqueueFull(sessionId);
        await TrySendAsync(sessionId, ct).ConfigureAwait(false);
        return info;
    }

    /// <summary>Deletes the share on the server, then the record and <c>session.share</c>. Works for any session
    /// whose record holds the secret (also imported ones).</summary>
    public async Task<JsonObject> UnshareAsync(string sessionId, CancellationToken ct)
    {
        SessionStore.CheckId(sessionId, Identifier.Session, "sessionID");
        store.GetSession(sessionId);
        var record = Record(sessionId) ?? throw new OpenCodeException(ErrorKind.ShareNotFound, $"Session is not shared: {sessionId}");
        var s = settings();
        try
        {
            await SendAsync(HttpMethod.Delete, $"{s.BaseUrl}/api/share/{record.Id}", new JsonObject { ["secret"] = record.Secret }, ct).ConfigureAwait(false);
        }
        catch (ShareHttpException ex) when (ex.Status == HttpStatusCode.NotFound)
        {
            // Already gone on the server: removing it locally is all that is left.
        }

        lock (gate)
        {
            queues.Remove(sessionId);
            AtomicFile.Delete(QueueFile(sessionId));
        }

        AtomicFile.Delete(store.Layout.SessionShareFile(sessionId));
        return await store.UpdateSessionAsync(sessionId, i => i.Remove("share"), ct).ConfigureAwait(false);
    }

    /// <summary>Sends everything pending now: sync items, then the deletes of deleted sessions' shares. True when
    /// nothing is left.</summary>
    public async Task<bool> FlushAsync(CancellationToken ct)
    {
        string[] ids;
        lock (gate)
        {
            ids = queues.Where(q => q.Value.Items.Count > 0).Select(q => q.Key).ToArray();
        }

        bool ok = true;
        foreach (var id in ids)
        {
            ok &= await TrySendAsync(id, ct).ConfigureAwait(false);
        }

        if (ShareDeletes.Pending(store.Layout).Count > 0)
        {
            await sending.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                ok &= await ShareDeletes.SendAsync(store.Layout, () => settings().BaseUrl, http, log, ct).ConfigureAwait(false);
            }
            finally
            {
                sending.Release();
            }
        }

        return ok;
    }

    public void Dispose()
    {
        store.Changed -= OnChanged;
        stop.Cancel();
        try
        {
#pragma warning disable VSTHRD002 // the loop only awaits delays that the cancellation above ends
            loop.Wait(TimeSpan.FromSeconds(5));
#pragma warning restore VSTHRD002
        }
        catch (AggregateException)
        {
        }

        stop.Dispose();
        wake.Dispose();
        sending.Dispose();
        http.Dispose();
    }

    private static string StoreLayout_Check(string sessionId) =>
        Identifier.IsValid(sessionId, Identifier.Session) ? sessionId : throw new InvalidInputException("sessionID", "is not a session id");

    // ------------------------------------------------------------------ queue

    private void OnChanged(StoreEvent e)
    {
        try
        {
            switch (e.Type)
            {
                case "session.created":
                    if (e.Properties["info"] is JsonObject created && created["parentID"] is null && Str(created, "id") is { } newId)
                    {
                        AutoShare(newId);
                    }

                    break;
                case "session.updated":
                    if (e.Properties["info"] is JsonObject s && Str(s, "id") is { } sid && IsShared(sid))
                    {
                        Enqueue(sid, "session", "session", s);
                    }

                    break;
                case "message.updated":
                    if (e.Properties["info"] is JsonObject m && Str(m, "sessionID") is { } msid && IsShared(msid) && Str(m, "id") is { } mid)
                    {
                        Enqueue(msid, "message/" + mid, "message", m);
                        if (Str(m, "role") == "user")
                        {
                            Enqueue(msid, "model", "model", Models(msid));
                        }
                    }

                    break;
                case "message.part.updated":
                    if (e.Properties["part"] is JsonObject p && Str(p, "sessionID") is { } psid && IsShared(psid)
                        && Str(p, "messageID") is { } pmid && Str(p, "id") is { } pid)
                    {
                        Enqueue(psid, $"part/{pmid}/{pid}", "part", p);
                    }

                    break;
                case "session.diff":
                    if (Str(e.Properties, "sessionID") is { } dsid && IsShared(dsid))
                    {
                        Enqueue(dsid, "session_diff", "session_diff", e.Properties["diff"] as JsonArray ?? Diffs(dsid));
                    }

                    break;
                case "session.deleted":
                    if (e.Properties["info"] is JsonObject d && Str(d, "id") is { } did)
                    {
                        lock (gate)
                        {
                            if (queues.Remove(did))
                            {
                                AtomicFile.Delete(QueueFile(did));
                            }
                        }

                        if (File.Exists(store.Layout.ShareDeleteFile(did)))
                        {
                            wake.Release(); // the store queued its share for deletion on the server
                        }
                    }

                    break;
            }
        }
        catch (Exception ex) when (ex is OpenCodeException or IOException or UnauthorizedAccessException)
        {
            log($"share: could not queue {e.Type}: {ex.Message}");
        }
    }

    private void AutoShare(string sessionId)
    {
        ShareSettings s;
        try
        {
            s = settings();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OpenCodeException)
        {
            log($"share: not auto-sharing {sessionId}: {ex.Message}");
            return;
        }

        if (s.Mode != ShareMode.Auto)
        {
            return;
        }

        // In the background, errors only logged: as OpenCode does.
        _ = Task.Run(async () =>
        {
            try
            {
                await ShareAsync(sessionId, sanitize: false, stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OpenCodeException or IOException or OperationCanceledException)
            {
                log($"share: auto-share of {sessionId} failed: {ex.Message}");
            }
        });
    }

    private bool IsShared(string sessionId)
    {
        lock (gate)
        {
            if (queues.ContainsKey(sessionId))
            {
                return true;
            }
        }

        return Identifier.IsValid(sessionId, Identifier.Session) && File.Exists(store.Layout.SessionShareFile(sessionId));
    }

    private void EnqueueFull(string sessionId)
    {
        var info = store.GetSession(sessionId);
        var items = new List<(string Key, string Type, JsonNode Data)> { ("session", "session", info) };
        foreach (var m in store.ListMessages(sessionId))
        {
            items.Add(("message/" + Str(m.Info, "id"), "message", m.Info));
            foreach (var p in m.Parts)
            {
                items.Add(($"part/{Str(m.Info, "id")}/{Str(p, "id")}", "part", p));
            }
        }

        items.Add(("session_diff", "session_diff", Diffs(sessionId)));
        items.Add(("model", "model", Models(sessionId)));
        lock (gate)
        {
            foreach (var (key, type, data) in items)
            {
                Add(sessionId, key, type, data);
            }

            Persist(sessionId);
        }
    }

    private void Enqueue(string sessionId, string key, string type, JsonNode data)
    {
        lock (gate)
        {
            Add(sessionId, key, type, data);
            Persist(sessionId);
        }

        wake.Release();
    }

    private void Add(string sessionId, string key, string type, JsonNode data)
    {
        if (!queues.TryGetValue(sessionId, out var q))
        {
            queues[sessionId] = q = new Queue(false);
        }

        var copy = data.DeepClone();
        if (q.Sanitize)
        {
            switch (type)
            {
                case "session":
                    ExportSanitizer.Session((JsonObject)copy);
                    break;
                case "message":
                    ExportSanitizer.Message((JsonObject)copy);
                    break;
                case "part":
                    ExportSanitizer.Part((JsonObject)copy);
                    break;
            }
        }

        q.Items[key] = (new JsonObject { ["type"] = type, ["data"] = copy }, ++seq);
    }

    /// <summary>The deduplicated models of the user messages, described as OpenCode describes them (its provider
    /// record: name, capabilities, cost, limits), from opencode.json and OpenCode's models.dev cache.</summary>
    private JsonArray Models(string sessionId)
    {
        var s = settings();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new JsonArray();
        foreach (var m in store.ReadMessageInfos(sessionId))
        {
            if (Str(m, "role") == "user" && m["model"] is JsonObject model && Str(model, "providerID") is { } provider && Str(model, "modelID") is { } id
                && seen.Add(provider + "/" + id))
            {
                result.Add((JsonNode)ModelCatalog.Describe(s.Config ?? OpenCodeConfig.Empty, s.ModelsDevCache, provider, id));
            }
        }

        return result;
    }

    private JsonArray Diffs(string sessionId) =>
        JsJsonTry(store.Layout.SessionDiffFile(sessionId)) as JsonArray ?? [];

    private static JsonNode? JsJsonTry(string path)
    {
        try
        {
            return File.Exists(path) ? JsJson.Parse(File.ReadAllBytes(path)) : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Writes a session's queue file (caller holds the gate).</summary>
    private void Persist(string sessionId)
    {
        if (!queues.TryGetValue(sessionId, out var q))
        {
            return;
        }

        var items = new JsonObject();
        foreach (var (key, (item, _)) in q.Items)
        {
            items[key] = item.DeepClone();
        }

        var doc = new JsonObject { ["sessionID"] = sessionId, ["sanitize"] = q.Sanitize, ["items"] = items };
        AtomicFile.Write(QueueFile(sessionId), JsJson.ToBytes(doc, indented: false), durable: false);
    }

    private void Restore()
    {
        if (!Directory.Exists(QueueDir))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(QueueDir, "*.json"))
        {
            string sid = Path.GetFileNameWithoutExtension(file);
            if (!Identifier.IsValid(sid, Identifier.Session))
            {
                continue;
            }

            var o = SessionStore.ReadObject(file);
            if (o is null)
            {
                continue;
            }

            var q = new Queue(o["sanitize"] is JsonValue v && v.GetValueKind() == JsonValueKind.True);
            if (o["items"] is JsonObject items)
            {
                foreach (var (key, item) in items)
                {
                    if (item is JsonObject io)
                    {
                        q.Items[key] = ((JsonObject)io.DeepClone(), ++seq);
                    }
                }
            }

            queues[sid] = q;
        }
    }

    // ------------------------------------------------------------------ sending

    private async Task RunAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await wake.WaitAsync(ct).ConfigureAwait(false);
                await Task.Delay(debounce, ct).ConfigureAwait(false);
                while (wake.CurrentCount > 0)
                {
                    await wake.WaitAsync(ct).ConfigureAwait(false);
                }

                if (await FlushAsync(ct).ConfigureAwait(false))
                {
                    backoff = TimeSpan.FromSeconds(1);
                }
                else
                {
                    await Task.Delay(backoff, ct).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, maxBackoff.Ticks));
                    wake.Release();
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                log($"share: sync loop: {ex.Message}");
            }
        }
    }

    /// <summary>Sends one session's pending items in batches; items changed meanwhile stay queued.</summary>
    private async Task<bool> TrySendAsync(string sessionId, CancellationToken ct)
    {
        await sending.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var record = Record(sessionId);
            if (record is null)
            {
                lock (gate)
                {
                    // Unshared (or deleted) meanwhile: nothing to send to.
                    if (queues.Remove(sessionId))
                    {
                        AtomicFile.Delete(QueueFile(sessionId));
                    }
                }

                return true;
            }

            string baseUrl = settings().BaseUrl;
            while (true)
            {
                List<(string Key, JsonObject Item, long Seq)> batch;
                lock (gate)
                {
                    if (!queues.TryGetValue(sessionId, out var q) || q.Items.Count == 0)
                    {
                        return true;
                    }

                    // The session first, as OpenCode's full sync sends it; the rest in key order.
                    batch = q.Items.OrderBy(kv => kv.Key == "session" ? 0 : 1).ThenBy(kv => kv.Key, StringComparer.Ordinal)
                        .Take(MaxItemsPerBatch).Select(kv => (kv.Key, kv.Value.Item, kv.Value.Seq)).ToList();
                }

                var body = new JsonObject
                {
                    ["secret"] = record.Secret,
                    ["data"] = new JsonArray(batch.Select(b => (JsonNode?)b.Item.DeepClone()).ToArray()),
                };
                try
                {
                    await SendAsync(HttpMethod.Post, $"{baseUrl}/api/share/{record.Id}/sync", body, ct).ConfigureAwait(false);
                }
                catch (OpenCodeException ex)
                {
                    log($"share: sync of {sessionId} failed, will retry: {ex.Message}");
                    return false;
                }

                lock (gate)
                {
                    if (queues.TryGetValue(sessionId, out var q))
                    {
                        foreach (var (key, _, s) in batch)
                        {
                            if (q.Items.TryGetValue(key, out var now) && now.Seq == s)
                            {
                                q.Items.Remove(key);
                            }
                        }

                        Persist(sessionId);
                    }
                }
            }
        }
        finally
        {
            sending.Release();
        }
    }

    private Task<JsonObject> SendAsync(HttpMethod method, string url, JsonObject body, CancellationToken ct) =>
        SendAsync(http, method, url, body, ct);

    /// <summary>One JSON request to the share server; a non-2xx answer is a <see cref="ShareHttpException"/>, an
    /// unreachable server a <see cref="OpenCodeException"/> (FetchFailed).</summary>
    internal static async Task<JsonObject> SendAsync(HttpClient http, HttpMethod method, string url, JsonObject body, CancellationToken ct)
    {
        using var req = new HttpRequestMessage(method, url)
        {
            Content = new ByteArrayContent(JsJson.ToBytes(body, indented: false)),
        };
        req.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        req.Headers.UserAgent.Add(new ProductInfoHeaderValue("opencode-rpc", "1"));
        HttpResponseMessage resp;
        try
        {
            resp = await http.SendAsync(req, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new OpenCodeException(ErrorKind.FetchFailed, $"The share server at {new Uri(url).GetLeftPart(UriPartial.Authority)} cannot be reached ({ex.Message}).", ex);
        }
        catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new OpenCodeException(ErrorKind.FetchFailed, $"The share server at {new Uri(url).GetLeftPart(UriPartial.Authority)} did not answer in time.", ex);
        }

        using (resp)
        {
            byte[] bytes = await resp.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            if (!resp.IsSuccessStatusCode)
            {
                string detail = string.Empty;
                try
                {
                    detail = JsJson.Parse(bytes) is JsonObject e && Str(e, "error") is { } m ? ": " + m : string.Empty;
                }
                catch (JsonException)
                {
                }

                throw new ShareHttpException(resp.StatusCode, $"The share server answered {(int)resp.StatusCode} {resp.ReasonPhrase}{detail} ({method} {new Uri(url).AbsolutePath}).");
            }

            try
            {
                return bytes.Length == 0 ? [] : JsJson.Parse(bytes) as JsonObject ?? [];
            }
            catch (JsonException)
            {
                return [];
            }
        }
    }

    private static string? Str(JsonObject o, string name) =>
        o[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private sealed class Queue(bool sanitize)
    {
        public bool Sanitize { get; } = sanitize;

        public Dictionary<string, (JsonObject Item, long Seq)> Items { get; } = new(StringComparer.Ordinal);
    }
}

/// <summary>The share server answered with an error status.</summary>
public sealed class ShareHttpException(HttpStatusCode status, string message) : OpenCodeException(ErrorKind.FetchFailed, message)
{
    public HttpStatusCode Status { get; } = status;

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["status"] = (int)Status };
}
