using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core.Sessions;

namespace OpenCode.Rpc.Core.Transfer;

/// <summary>
/// Imports from a share link (<c>opencode import https://opncd.ai/share/&lt;slug&gt;</c>): checks the link's shape,
/// fetches <c>GET &lt;origin&gt;/api/share/&lt;slug&gt;/data</c> (a flat array of <c>{type, data}</c>) with a timeout and
/// a size cap, follows redirects only within the same origin, and groups the parts under their messages.
/// The body must keep coming: a server that stops sending for <see cref="DefaultIdleTimeout"/>, or takes longer than
/// <see cref="DefaultTotalTimeout"/> in all, is given up on (HttpClient's own timeout ends at the headers).
/// </summary>
public static partial class ShareClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait for the next bytes of the body.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Longest whole download (a slow-loris server trickling bytes never ends otherwise).</summary>
    public static readonly TimeSpan DefaultTotalTimeout = TimeSpan.FromMinutes(10);

    private const int MaxRedirects = 5;

    [GeneratedRegex(@"^https?://[^/]+/share/([a-zA-Z0-9_-]+)$")]
    private static partial Regex ShareUrl();

    public static bool IsUrl(string s) =>
        s.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || s.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    /// <summary>The slug of a share link, or an error naming the expected shape with <paramref name="baseUrl"/>.</summary>
    public static string Slug(string url, string baseUrl)
    {
        var m = ShareUrl().Match(url);
        // The regex is OpenCode's; the parsed URL must agree with it, so that "https://opncd.ai?x/share/abc" or
        // "https://opncd.ai@evil.example/share/abc" (the host is evil.example) is not read as a link to opncd.ai.
        if (!m.Success || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.AbsolutePath != "/share/" + m.Groups[1].Value
            || uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            throw new InvalidInputException("url", "is not a share link", $"Invalid URL format. Expected: {baseUrl}/share/<slug>");
        }

        if (uri.UserInfo.Length > 0)
        {
            throw new InvalidInputException("url", "has a user name or password", $"Invalid URL format: a share link has no user name or password before the host ({uri.Host}). Expected: {baseUrl}/share/<slug>");
        }

        return m.Groups[1].Value;
    }

    /// <summary>A client that never follows redirects by itself (we follow same-origin ones only).</summary>
    public static HttpClient CreateHttpClient(TimeSpan? timeout = null) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        AutomaticDecompression = DecompressionMethods.All,
    })
    {
        Timeout = timeout ?? DefaultTimeout,
    };

    /// <summary>Fetches a share and returns it as import data (validated).</summary>
    public static async Task<ImportData> FetchAsync(HttpClient http, string url, string baseUrl, ImportLimits limits, CancellationToken ct, TimeSpan? idleTimeout = null, TimeSpan? totalTimeout = null)
    {
        string slug = Slug(url, baseUrl);
        var origin = new Uri(url).GetLeftPart(UriPartial.Authority);
        var target = new Uri($"{origin}/api/share/{slug}/data");
        var (body, contentType) = await GetAsync(http, target, slug, limits, idleTimeout ?? DefaultIdleTimeout, totalTimeout ?? DefaultTotalTimeout, ct).ConfigureAwait(false);
        JsonNode root;
        try
        {
            root = SessionImporter.ParseJson(body, "the share data", limits);
        }
        catch (InvalidInputException)
        {
            // An HTML error page or a captive portal is the usual cause: say what came instead of JSON.
            string what = contentType is { Length: > 0 } && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase)
                ? $" (the server answered {contentType})"
                : string.Empty;
            throw new OpenCodeException(ErrorKind.FetchFailed, $"Share data was not valid JSON{what}: {url}");
        }

        return Group(root, slug, limits);
    }

    private static async Task<(byte[] Body, string? ContentType)> GetAsync(HttpClient http, Uri target, string slug, ImportLimits limits, TimeSpan idleTimeout, TimeSpan totalTimeout, CancellationToken ct)
    {
        using var total = CancellationTokenSource.CreateLinkedTokenSource(ct);
        total.CancelAfter(totalTimeout);
        for (int hop = 0; ; hop++)
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, target);
            req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            req.Headers.UserAgent.Add(new ProductInfoHeaderValue("opencode-rpc", "1"));
            HttpResponseMessage resp;
            try
            {
                resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, total.Token).ConfigureAwait(false);
            }
            catch (HttpRequestException ex)
            {
                throw new OpenCodeException(ErrorKind.FetchFailed, $"Failed to fetch share data: cannot connect to {target.GetLeftPart(UriPartial.Authority)} ({ex.Message}).", ex);
            }
            catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
            {
                double waited = total.IsCancellationRequested ? totalTimeout.TotalSeconds : http.Timeout.TotalSeconds;
                throw new OpenCodeException(ErrorKind.FetchFailed, $"Failed to fetch share data: {target.GetLeftPart(UriPartial.Authority)} did not answer within {waited:0} s.", ex);
            }

            using (resp)
            {
                int code = (int)resp.StatusCode;
                if (code is >= 300 and < 400 && resp.Headers.Location is { } loc)
                {
                    var next = loc.IsAbsoluteUri ? loc : new Uri(target, loc);
                    if (next.GetLeftPart(UriPartial.Authority) != target.GetLeftPart(UriPartial.Authority))
                    {
                        throw new OpenCodeException(ErrorKind.FetchFailed, $"Failed to fetch share data: the server redirected to another host ({next.GetLeftPart(UriPartial.Authority)}), which is not followed.");
                    }

                    if (hop >= MaxRedirects)
                    {
                        throw new OpenCodeException(ErrorKind.FetchFailed, "Failed to fetch share data: too many redirects.");
                    }

                    target = next;
                    continue;
                }

                if (resp.StatusCode == HttpStatusCode.NotFound)
                {
                    throw new OpenCodeException(ErrorKind.ShareNotFound, $"Share not found or empty: {slug}");
                }

                if (!resp.IsSuccessStatusCode)
                {
                    throw new OpenCodeException(ErrorKind.FetchFailed, $"Failed to fetch share data: {code} {resp.ReasonPhrase}".TrimEnd());
                }

                if (resp.Content.Headers.ContentLength is long len && len > limits.MaxBytes)
                {
                    throw SessionImporter.TooLarge(len, limits);
                }

                await using var stream = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                using var ms = new MemoryStream();
                var buffer = new byte[81920];
                int n;
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(total.Token);
                try
                {
                    while (true)
                    {
                        idle.CancelAfter(idleTimeout); // restarts the idle clock for this read
                        if ((n = await stream.ReadAsync(buffer, idle.Token).ConfigureAwait(false)) == 0)
                        {
                            break;
                        }

                        if (ms.Length + n > limits.MaxBytes)
                        {
                            throw SessionImporter.TooLarge(ms.Length + n, limits);
                        }

                        await ms.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException)
                {
                    throw new OpenCodeException(ErrorKind.FetchFailed, $"Failed to fetch share data: the connection broke ({ex.Message}).", ex);
                }
                catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
                {
                    string why = total.IsCancellationRequested
                        ? $"the download took longer than {totalTimeout.TotalSeconds:0} s"
                        : $"the server sent nothing for {idleTimeout.TotalSeconds:0} s";
                    throw new OpenCodeException(ErrorKind.FetchFailed, $"Failed to fetch share data: {why} ({ms.Length} bytes received).", ex);
                }

                return (ms.ToArray(), resp.Content.Headers.ContentType?.MediaType);
            }
        }
    }

    /// <summary>The flat share array grouped into an export: the session, then each message in array order with
    /// its parts (in array order). Parts of a message that is not in the share are dropped, as OpenCode does.</summary>
    public static ImportData Group(JsonNode root, string slug, ImportLimits limits)
    {
        if (root is not JsonArray items)
        {
            throw new OpenCodeException(ErrorKind.FetchFailed, $"Share data for {slug} is not an array of {{type, data}}.");
        }

        JsonObject? session = null;
        var messages = new List<JsonObject>();
        var parts = new Dictionary<string, List<JsonObject>>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (item is not JsonObject o || o["data"] is not JsonObject data)
            {
                continue;
            }

            switch ((string?)(o["type"] is JsonValue t && t.GetValueKind() == JsonValueKind.String ? t : null))
            {
                case "session":
                    session = data;
                    break;
                case "message":
                    messages.Add(data);
                    break;
                case "part":
                    string mid = data["messageID"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : string.Empty;
                    if (!parts.TryGetValue(mid, out var list))
                    {
                        parts[mid] = list = [];
                    }

                    list.Add(data);
                    break;
            }
        }

        if (session is null || messages.Count == 0)
        {
            throw new OpenCodeException(ErrorKind.ShareNotFound, $"Share not found or empty: {slug}");
        }

        var doc = new JsonObject
        {
            ["info"] = session.DeepClone(),
            ["messages"] = new JsonArray(messages.Select(m => (JsonNode?)new JsonObject
            {
                ["info"] = m.DeepClone(),
                ["parts"] = new JsonArray((parts.GetValueOrDefault((string?)m["id"] ?? string.Empty) ?? []).Select(p => (JsonNode?)p.DeepClone()).ToArray()),
            }).ToArray()),
        };
        return SessionImporter.FromJson(doc, limits);
    }
}
