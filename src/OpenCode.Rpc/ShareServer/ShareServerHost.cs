using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenCode.Rpc.Core.Json;

namespace OpenCode.Rpc.ShareServer;

/// <summary>Options of <c>opencode-rpc share-server</c>.</summary>
/// <param name="DataDir">Where the shares are kept.</param>
/// <param name="Host">Address to bind; loopback unless told otherwise.</param>
/// <param name="Port">Port; 0 picks a free one (see <see cref="ShareServerHost.BaseUrl"/>).</param>
/// <param name="PublicUrl">The base used in share links; default <c>http://&lt;host&gt;:&lt;port&gt;</c>.</param>
/// <param name="MaxBodyBytes">Largest request body.</param>
/// <param name="CreatesPerMinute">Shares one client address may create per minute.</param>
/// <param name="Durable">fsync every write (slower; rename alone is already atomic).</param>
public sealed record ShareServerOptions(
    string DataDir,
    string Host = "127.0.0.1",
    int Port = 4097,
    string? PublicUrl = null,
    long MaxBodyBytes = 16L * 1024 * 1024,
    int CreatesPerMinute = 60,
    bool Durable = false);

/// <summary>
/// The self-hostable share server: OpenCode's ShareNext API (reference §8) on Kestrel, plus a readable HTML page
/// per share. Every handler is a plain <see cref="RequestDelegate"/> and JSON goes through <see cref="JsonNode"/>,
/// so the server needs no reflection and stays NativeAOT-clean.
/// </summary>
public sealed class ShareServerHost : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly ShareServerStore store;
    private readonly ShareServerOptions options;
    private readonly ConcurrentDictionary<string, (long Minute, int Count)> creates = new(StringComparer.Ordinal);

    private ShareServerHost(WebApplication app, ShareServerStore store, ShareServerOptions options)
    {
        this.app = app;
        this.store = store;
        this.options = options;
    }

    /// <summary>The base URL the server answers on (with the real port when 0 was asked).</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    public static async Task<ShareServerHost> StartAsync(ShareServerOptions options, CancellationToken ct)
    {
        if (!IPAddress.TryParse(options.Host, out var address))
        {
            address = options.Host == "localhost" ? IPAddress.Loopback : throw new ArgumentException($"--host must be an IP address: {options.Host}");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(address, options.Port);
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
        });
        var app = builder.Build();
        var host = new ShareServerHost(app, new ShareServerStore(options.DataDir, options.Durable), options);
        host.Map();
        await app.StartAsync(ct).ConfigureAwait(false);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? $"http://{options.Host}:{options.Port}";
        host.BaseUrl = bound.TrimEnd('/');
        return host;
    }

    public Task WaitForShutdownAsync(CancellationToken ct) => app.WaitForShutdownAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        store.Dispose();
    }

    private string PublicBase(HttpContext c) => options.PublicUrl is { Length: > 0 } p ? p.TrimEnd('/') : $"{c.Request.Scheme}://{c.Request.Host}";

    private void Map()
    {
        app.MapPost("/api/share", Guard(CreateAsync));
        app.MapPost("/api/share/{id}/sync", Guard(SyncAsync));
        app.MapDelete("/api/share/{id}", Guard(DeleteAsync));
        app.MapGet("/api/share/{id}/data", Guard(DataAsync));
        app.MapGet("/share/{id}", Guard(PageAsync));
        app.MapFallback(Guard(c => ErrorAsync(c, 404, "no such route")));
    }

    /// <summary>Bad input never becomes a 500: oversized bodies are 413, unreadable requests 400.</summary>
    private static RequestDelegate Guard(Func<HttpContext, Task> handler) => async c =>
    {
        try
        {
            await handler(c).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex)
        {
            if (!c.Response.HasStarted)
            {
                await ErrorAsync(c, ex.StatusCode is 413 ? 413 : 400, ex.StatusCode is 413 ? "request body too large" : "bad request").ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (c.RequestAborted.IsCancellationRequested)
        {
            // The client left.
        }
    };

    private async Task CreateAsync(HttpContext c)
    {
        var body = await ReadObjectAsync(c).ConfigureAwait(false);
        if (body is null)
        {
            return;
        }

        if (body["sessionID"] is not JsonValue v || v.GetValueKind() != JsonValueKind.String || v.GetValue<string>() is not { } sessionId
            || !ShareServerStore.ShareId().IsMatch(sessionId))
        {
            await ErrorAsync(c, 400, "sessionID must be a string of letters, digits, _ or - (at most 64)").ConfigureAwait(false);
            return;
        }

        if (!AllowCreate(c))
        {
            c.Response.Headers.RetryAfter = "60";
            await ErrorAsync(c, 429, $"too many shares created; at most {options.CreatesPerMinute} per minute per client").ConfigureAwait(false);
            return;
        }

        var share = store.Create(sessionId);
        await JsonAsync(c, 200, new JsonObject
        {
            ["id"] = share.Id,
            ["secret"] = share.Secret,
            ["url"] = $"{PublicBase(c)}/share/{share.Id}",
        }).ConfigureAwait(false);
    }

    private async Task SyncAsync(HttpContext c)
    {
        if (await AuthorizeAsync(c).ConfigureAwait(false) is not var (share, body))
        {
            return;
        }

        if (body["data"] is not JsonArray data)
        {
            await ErrorAsync(c, 400, "data must be an array of {type, data}").ConfigureAwait(false);
            return;
        }

        if (store.Sync(share, data) is { } why)
        {
            await ErrorAsync(c, 400, why).ConfigureAwait(false);
            return;
        }

        await JsonAsync(c, 200, new JsonObject()).ConfigureAwait(false);
    }

    private async Task DeleteAsync(HttpContext c)
    {
        if (await AuthorizeAsync(c).ConfigureAwait(false) is not var (share, body))
        {
            return;
        }

        store.Delete(share);
        await JsonAsync(c, 200, new JsonObject()).ConfigureAwait(false);
    }

    private async Task DataAsync(HttpContext c)
    {
        var share = await FindAsync(c).ConfigureAwait(false);
        if (share is null)
        {
            return;
        }

        byte[] bytes = store.Data(share);
        c.Response.StatusCode = 200;
        c.Response.ContentType = "application/json";
        c.Response.ContentLength = bytes.Length;
        await c.Response.Body.WriteAsync(bytes, c.RequestAborted).ConfigureAwait(false);
    }

    private async Task PageAsync(HttpContext c)
    {
        var share = await FindAsync(c).ConfigureAwait(false);
        if (share is null)
        {
            return;
        }

        byte[] bytes = Encoding.UTF8.GetBytes(ShareHtml.Render(share.Id, JsJson.Parse(store.Data(share)) as JsonArray ?? []));
        c.Response.StatusCode = 200;
        c.Response.ContentType = "text/html; charset=utf-8";
        c.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'";
        c.Response.ContentLength = bytes.Length;
        await c.Response.Body.WriteAsync(bytes, c.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The share named by the route and the request body, when the body's secret is the share's; otherwise the
    /// error (404, 400 or 403) has already been answered and null is returned.</summary>
    private async Task<(StoredShare Share, JsonObject Body)?> AuthorizeAsync(HttpContext c)
    {
        var share = await FindAsync(c).ConfigureAwait(false);
        if (share is null)
        {
            return null;
        }

        var body = await ReadObjectAsync(c).ConfigureAwait(false);
        if (body is null)
        {
            return null;
        }

        if (!ShareServerStore.SecretMatches(share, body["secret"] is JsonValue s && s.GetValueKind() == JsonValueKind.String ? s.GetValue<string>() : null))
        {
            await ErrorAsync(c, 403, "wrong secret").ConfigureAwait(false);
            return null;
        }

        return (share, body);
    }

    private async Task<StoredShare?> FindAsync(HttpContext c)
    {
        string id = c.Request.RouteValues["id"] as string ?? string.Empty;
        if (!ShareServerStore.ShareId().IsMatch(id))
        {
            await ErrorAsync(c, 400, "share id must be 1-64 letters, digits, _ or -").ConfigureAwait(false);
            return null;
        }

        var share = store.Get(id);
        if (share is null)
        {
            await ErrorAsync(c, 404, "share not found").ConfigureAwait(false);
        }

        return share;
    }

    private bool AllowCreate(HttpContext c)
    {
        string client = c.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        long minute = Environment.TickCount64 / 60_000;
        var now = creates.AddOrUpdate(client, _ => (minute, 1), (_, old) => old.Minute == minute ? (minute, old.Count + 1) : (minute, 1));
        return now.Count <= options.CreatesPerMinute;
    }

    /// <summary>The body as a JSON object, or null after answering 400/413.</summary>
    private static async Task<JsonObject?> ReadObjectAsync(HttpContext c)
    {
        using var ms = new MemoryStream();
        await c.Request.Body.CopyToAsync(ms, c.RequestAborted).ConfigureAwait(false);
        try
        {
            if (JsJson.Parse(ms.GetBuffer().AsSpan(0, (int)ms.Length)) is JsonObject o)
            {
                return o;
            }
        }
        catch (JsonException)
        {
        }

        await ErrorAsync(c, 400, "the body must be a JSON object").ConfigureAwait(false);
        return null;
    }

    private static Task ErrorAsync(HttpContext c, int status, string message) => JsonAsync(c, status, new JsonObject { ["error"] = message });

    private static async Task JsonAsync(HttpContext c, int status, JsonObject body)
    {
        byte[] bytes = JsJson.ToBytes(body, indented: false);
        c.Response.StatusCode = status;
        c.Response.ContentType = "application/json";
        c.Response.ContentLength = bytes.Length;
        await c.Response.Body.WriteAsync(bytes, c.RequestAborted).ConfigureAwait(false);
    }
}
