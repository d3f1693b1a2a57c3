using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.ShareServer;

namespace OpenCode.Rpc.Benchmarks;

/// <summary>The share server's speed items: sync requests per second on loopback, and GET /data of a big share.</summary>
public sealed class ShareBench(bool quick) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ocrpc-share-bench-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Concurrent clients each POST one-part sync batches (a streaming text part, as OpenCode sends while
    /// a reply streams) over keep-alive connections; requests per second over the whole run.</summary>
    public async Task<Row> SyncThroughputAsync()
    {
        await using var server = await ShareServerHost.StartAsync(new ShareServerOptions(Path.Combine(root, "rps"), Port: 0), CancellationToken.None);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 });
        var (id, secret) = await CreateAsync(http, server.BaseUrl, "ses_0000000000001RPSRPSRPSRP");
        int clients = 16;
        int perClient = quick ? 250 : 1500;
        var runs = new List<double>();
        for (int run = 0; run < (quick ? 2 : 4); run++)
        {
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
            {
                for (int i = 0; i < perClient; i++)
                {
                    string body = $$$"""{"secret":"{{{secret}}}","data":[{"type":"part","data":{"id":"prt_{{{c:D4}}}{{{i % 50:D6}}}","messageID":"msg_0001","sessionID":"ses_0000000000001RPSRPSRPSRP","type":"text","text":"streamed text {{{i}}} of client {{{c}}}"}}]}""";
                    using var content = new StringContent(body, Encoding.UTF8, "application/json");
                    using var resp = await http.PostAsync($"{server.BaseUrl}/api/share/{id}/sync", content);
                    resp.EnsureSuccessStatusCode();
                }
            })));
            sw.Stop();
            if (run > 0)
            {
                runs.Add(clients * perClient / sw.Elapsed.TotalSeconds);
            }
        }

        var s = runs.Order().ToList();
        return new Row($"share server: sync requests/s, loopback, {clients} clients × {perClient} one-part batches",
            $"{s[s.Count / 2].ToString("N0", CultureInfo.InvariantCulture)}/s ({s[0]:N0}–{s[^1]:N0})", "opncd.ai not reachable here", "≥ 2,000/s");
    }

    /// <summary>GET /api/share/&lt;id&gt;/data of a share with 2,000 messages (a text part each, a tool part every
    /// other), body read completely.</summary>
    public async Task<Row> Data2000Async()
    {
        await using var server = await ShareServerHost.StartAsync(new ShareServerOptions(Path.Combine(root, "data"), Port: 0), CancellationToken.None);
        using var http = new HttpClient();
        const string sid = "ses_0000000000001DATADATADATA";
        var (id, secret) = await CreateAsync(http, server.BaseUrl, sid);
        var batch = new JsonArray { new JsonObject { ["type"] = "session", ["data"] = new JsonObject { ["id"] = sid, ["title"] = "big" } } };
        for (int i = 0; i < 2000; i++)
        {
            string mid = $"msg_{i:D10}";
            batch.Add((JsonNode)new JsonObject { ["type"] = "message", ["data"] = new JsonObject { ["id"] = mid, ["sessionID"] = sid, ["role"] = i % 2 == 0 ? "user" : "assistant", ["time"] = new JsonObject { ["created"] = 1_700_000_000_000L + i } } });
            batch.Add((JsonNode)new JsonObject { ["type"] = "part", ["data"] = new JsonObject { ["id"] = $"prt_{i:D10}a", ["messageID"] = mid, ["sessionID"] = sid, ["type"] = "text", ["text"] = new string('x', 400) } });
            if (i % 2 == 1)
            {
                batch.Add((JsonNode)new JsonObject { ["type"] = "part", ["data"] = new JsonObject { ["id"] = $"prt_{i:D10}b", ["messageID"] = mid, ["sessionID"] = sid, ["type"] = "tool", ["tool"] = "read", ["state"] = new JsonObject { ["status"] = "completed", ["output"] = new string('y', 1000) } } });
            }

            if (batch.Count >= 500 || i == 1999)
            {
                var body = new JsonObject { ["secret"] = secret, ["data"] = batch };
                using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
                using var resp = await http.PostAsync($"{server.BaseUrl}/api/share/{id}/sync", content);
                resp.EnsureSuccessStatusCode();
                batch = [];
            }
        }

        var times = new List<double>();
        long size = 0;
        for (int i = 0; i < (quick ? 8 : 25); i++)
        {
            var sw = Stopwatch.StartNew();
            byte[] bytes = await http.GetByteArrayAsync($"{server.BaseUrl}/api/share/{id}/data");
            sw.Stop();
            size = bytes.Length;
            if (i > 0)
            {
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
        }

        return new Row($"share server: GET /data of 2,000 messages / 3,000 parts ({size / 1024.0 / 1024.0:N1} MB)", Bench.Stat(times), "opncd.ai not reachable here", "≤ 100 ms");
    }

    private static async Task<(string Id, string Secret)> CreateAsync(HttpClient http, string baseUrl, string sessionId)
    {
        using var content = new StringContent($$$"""{"sessionID":"{{{sessionId}}}"}""", Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var resp = await http.PostAsync($"{baseUrl}/api/share", content);
        resp.EnsureSuccessStatusCode();
        var o = JsonNode.Parse(await resp.Content.ReadAsStringAsync())!;
        return ((string)o["id"]!, (string)o["secret"]!);
    }
}
