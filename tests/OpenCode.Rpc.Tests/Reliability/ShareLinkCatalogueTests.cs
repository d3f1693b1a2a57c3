using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Reliability.HostileHttpServer;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>Hostile share links and hostile share servers for <c>session/import {url}</c>, one row each, against a
/// raw HTTP server on 127.0.0.1 that answers whatever bytes the row writes. Each must get the right code and a
/// message naming what was wrong, write nothing, and leave the server answering. Imports are capped at 1 MiB here.</summary>
public sealed class ShareLinkCatalogueTests
{
    private static readonly string ShareData = File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "share", "share-data-flat-array.json"));

    private delegate Task Responder(string path, Stream s, CancellationToken ct);

    private static Responder Json(string body, string type = "application/json") => (_, s, ct) => WriteAsync(s, 200, type, body, ct);

    private static Responder Status(int status, string body) => (_, s, ct) => WriteAsync(s, status, "application/json", body, ct);

    private static Responder Redirect(string location) => (_, s, ct) => WriteAsync(s, 302, "text/plain", string.Empty, ct, "Location: " + location);

    /// <summary>The real share data with one edit applied to the first item of <paramref name="type"/>.</summary>
    private static Responder EditedShare(string type, Action<JsonObject> edit)
    {
        var items = JsonNode.Parse(ShareData)!.AsArray();
        edit(items.First(i => (string?)i!["type"] == type)!["data"]!.AsObject());
        return Json(items.ToJsonString());
    }

    /// <summary>16 MiB of spaces inside "[...]", gzipped to a few KiB: small on the wire, 16x the cap unpacked.</summary>
    private static readonly Lazy<byte[]> GzipBomb = new(() =>
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize))
        {
            gz.Write("["u8);
            var spaces = new byte[1 << 20];
            Array.Fill(spaces, (byte)' ');
            for (int i = 0; i < 16; i++)
            {
                gz.Write(spaces);
            }

            gz.Write("]"u8);
        }

        return ms.ToArray();
    });

    /// <summary>name → (URL from the server's base "http://127.0.0.1:P", what the server does (null: nothing is
    /// expected to reach it), expected code, a fragment of the message or data.field).</summary>
    private static readonly Dictionary<string, (Func<string, string> Url, Responder? Server, int Code, string Fragment)> Cases = new()
    {
        // links that are not share links: refused before any request
        ["Link_FileScheme"] = (_ => "file:///etc/passwd", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_JavascriptScheme"] = (_ => "javascript:alert(document.cookie)", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_FtpScheme"] = (b => b.Replace("http://", "ftp://", StringComparison.Ordinal) + "/share/abc", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_DataScheme"] = (_ => "data:application/json,[]", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_Empty"] = (_ => string.Empty, null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_NoSlug"] = (b => b + "/share/", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_SlugTraversal"] = (b => b + "/share/../api/share/x/data", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_SlugEncodedTraversal"] = (b => b + "/share/%2e%2e", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_SlugWithQuery"] = (b => b + "/share/abc?redirect=http://127.0.0.2/", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_SlugWithFragment"] = (b => b + "/share/abc#x", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_UserInfoHidesTheRealHost"] = (b => b.Replace("http://", "http://opncd.ai@", StringComparison.Ordinal) + "/share/abc", null, ErrorCodes.InvalidParams, "user name or password"),
        ["Link_QueryBeforePathHidesThePath"] = (b => b + "?x/share/abc", null, ErrorCodes.InvalidParams, "Invalid URL format"),
        ["Link_NotAUrlAtAll"] = (_ => "share/abc", null, ErrorCodes.InvalidParams, "Invalid URL format"),

        // redirects: only the same origin is followed
        ["Redirect_ToAnotherLoopbackHost"] = (b => b + "/share/abc", Redirect("http://127.0.0.2:9/api/share/abc/data"), ErrorCodes.FetchFailed, "another host"),
        ["Redirect_ToAnotherPort"] = (b => b + "/share/abc", Redirect("http://127.0.0.1:9/api/share/abc/data"), ErrorCodes.FetchFailed, "another host"),
        ["Redirect_ToFileScheme"] = (b => b + "/share/abc", Redirect("file:///etc/passwd"), ErrorCodes.FetchFailed, "another host"),
        ["Redirect_DowngradeToAnotherScheme"] = (b => b + "/share/abc", Redirect("https://127.0.0.1/api/share/abc/data"), ErrorCodes.FetchFailed, "another host"),
        ["Redirect_Loop"] = (b => b + "/share/abc", Redirect("/api/share/abc/data"), ErrorCodes.FetchFailed, "too many redirects"),
        ["Redirect_WithoutLocation"] = (b => b + "/share/abc", (_, s, ct) => WriteAsync(s, 302, "text/plain", string.Empty, ct), ErrorCodes.FetchFailed, "302"),

        // a server answering garbage
        ["Server_500"] = (b => b + "/share/abc", Status(500, """{"error":"boom"}"""), ErrorCodes.FetchFailed, "500"),
        ["Server_403"] = (b => b + "/share/abc", Status(403, """{"error":"no"}"""), ErrorCodes.FetchFailed, "403"),
        ["Server_BinaryGarbage"] = (b => b + "/share/abc", (_, s, ct) => WriteAsync(s, 200, "application/json", [0x00, 0x01, 0xFF, 0xFE, 0x7B], ct), ErrorCodes.FetchFailed, "not valid JSON"),
        ["Server_TruncatedJson"] = (b => b + "/share/abc", Json(ShareData[..(ShareData.Length / 2)]), ErrorCodes.FetchFailed, "not valid JSON"),
        ["Server_HtmlPage"] = (b => b + "/share/abc", Json("<!doctype html><html><body>Sign in to the Wi-Fi</body></html>", "text/html"), ErrorCodes.FetchFailed, "text/html"),
        ["Server_ObjectNotArray"] = (b => b + "/share/abc", Json("""{"info":{},"messages":[]}"""), ErrorCodes.FetchFailed, "not an array"),
        ["Server_ArrayOfJunk"] = (b => b + "/share/abc", Json("""[1,"two",null,{"type":"session"},{"type":"part","data":[]}]"""), ErrorCodes.ShareNotFound, "not found or empty"),
        ["Server_DuplicateKeys"] = (b => b + "/share/abc", Json("[{\"type\":\"session\",\"type\":\"part\",\"data\":{}}]"), ErrorCodes.FetchFailed, "not valid JSON"),
        ["Server_NestingBomb"] = (b => b + "/share/abc", Json(new string('[', 50_000) + new string(']', 50_000)), ErrorCodes.LimitExceeded, "nests deeper"),
        ["Server_ConnectionDropsMidBody"] = (b => b + "/share/abc", async (_, s, ct) =>
        {
            await WriteHeadAsync(s, 200, ct, "Content-Type: application/json", "Content-Length: 100000");
            await s.WriteAsync("[{\"type\""u8.ToArray(), ct);
        }, ErrorCodes.FetchFailed, "connection broke"),

        // well-formed share data that would escape the store or mix sessions
        ["Data_SessionIdTraversal"] = (b => b + "/share/abc", EditedShare("session", d => d["id"] = "ses_../../../tmp/x"), ErrorCodes.InvalidParams, "id"),
        ["Data_MessageOfAnotherSession"] = (b => b + "/share/abc", EditedShare("message", d => d["sessionID"] = "ses_someoneelse1"), ErrorCodes.InvalidParams, "sessionID"),
        ["Data_PartOfAnotherSession"] = (b => b + "/share/abc", EditedShare("part", d => d["sessionID"] = "ses_someoneelse1"), ErrorCodes.InvalidParams, "sessionID"),
        ["Data_PartIdTraversal"] = (b => b + "/share/abc", EditedShare("part", d => d["id"] = "prt_/../../x"), ErrorCodes.InvalidParams, "id"),

        // enormous bodies: the cap holds whatever the server says or does
        ["Huge_DeclaredLength5GB"] = (b => b + "/share/abc", async (_, s, ct) =>
        {
            await WriteHeadAsync(s, 200, ct, "Content-Type: application/json", "Content-Length: 5000000000");
            await s.WriteAsync("["u8.ToArray(), ct);
            await Task.Delay(TimeSpan.FromSeconds(30), ct); // holds the connection; the client must not wait for it
        }, ErrorCodes.LimitExceeded, "over the limit"),
        ["Huge_EndlessChunkedBody"] = (b => b + "/share/abc", async (_, s, ct) =>
        {
            await WriteHeadAsync(s, 200, ct, "Content-Type: application/json", "Transfer-Encoding: chunked");
            var chunk = Encoding.ASCII.GetBytes($"{64 * 1024:x}\r\n{new string(' ', 64 * 1024)}\r\n");
            for (int i = 0; i < 1600; i++) // 100 MiB at most: bounded even if the client never stopped reading
            {
                await s.WriteAsync(chunk, ct);
            }
        }, ErrorCodes.LimitExceeded, "over the limit"),
        ["Huge_GzipBomb"] = (b => b + "/share/abc", (_, s, ct) => WriteAsync(s, 200, "application/json", GzipBomb.Value, ct, "Content-Encoding: gzip"), ErrorCodes.LimitExceeded, "over the limit"),
    };

    public static IEnumerable<object[]> Names => Cases.Keys.Select(k => new object[] { k });

    private static ServerOptions Options(TestDirs dirs) =>
        new(dirs.DataDir, dirs.ProjectDir, ConfigDir: dirs.ConfigDir, ImportLimits: ImportLimits.Default with { MaxBytes = 1 << 20 });

    [Theory]
    [MemberData(nameof(Names))]
    public async Task HostileShareLink_AnswersErrorWritesNothingAndKeepsServing(string name)
    {
        var (url, respond, code, fragment) = Cases[name];
        await using var http = new HostileHttpServer((p, s, ct) => respond is null ? WriteAsync(s, 500, "text/plain", "unexpected", ct) : respond(p, s, ct));
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs, options: Options(dirs));
        var ctx = await ImportCatalogueTests.SeedAsync(wire);
        var before = ImportCatalogueTests.Tree(dirs);

        var answer = await wire.RequestAsync(10, Methods.SessionImport, new JsonObject { ["url"] = url(http.Base) }.ToJsonString());

        ImportCatalogueTests.AssertRefused(name, answer, code, fragment);
        Assert.Equal(before, ImportCatalogueTests.Tree(dirs));
        if (respond is null)
        {
            Assert.Empty(http.Requests); // refused before anything was fetched
        }

        await ImportCatalogueTests.AssertServingAsync(wire, ctx);
    }

    /// <summary>The unedited share data imports from the same server: the rows fail for what they changed.</summary>
    [Fact]
    public async Task TheUneditedShare_Imports()
    {
        await using var http = new HostileHttpServer((_, s, ct) => WriteAsync(s, 200, "application/json", ShareData, ct));
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs, options: Options(dirs));
        var answer = await wire.RequestAsync(10, Methods.SessionImport, new JsonObject { ["url"] = http.Base + "/share/abc" }.ToJsonString());
        Assert.Equal(3, answer.GetProperty("result").GetProperty("messages").GetInt32());
        Assert.Equal(["/api/share/abc/data"], http.Requests);
    }

    /// <summary>A slow-loris server trickling one byte every 100 ms: the client cancels the request, gets
    /// RequestCancelled at once, nothing is written, and the server answers the next request.</summary>
    [Fact]
    public async Task SlowShareBody_CancelRequest_AnswersCancelledWritesNothingAndKeepsServing()
    {
        await using var http = new HostileHttpServer(async (_, s, ct) =>
        {
            await WriteHeadAsync(s, 200, ct, "Content-Type: application/json", "Transfer-Encoding: chunked");
            for (int i = 0; i < 600; i++) // 60 s at most
            {
                await s.WriteAsync("1\r\n \r\n"u8.ToArray(), ct);
                await s.FlushAsync(ct);
                await Task.Delay(100, ct);
            }
        });
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs, options: Options(dirs));
        var ctx = await ImportCatalogueTests.SeedAsync(wire);
        var before = ImportCatalogueTests.Tree(dirs);

        await wire.SendAsync(RawWire.Frame(new JsonObject
        {
            ["jsonrpc"] = "2.0",
            ["id"] = 10,
            ["method"] = Methods.SessionImport,
            ["params"] = new JsonObject { ["url"] = http.Base + "/share/slow1" },
        }.ToJsonString()));
        await http.FirstRequest.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(500); // a few bytes have trickled in
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await wire.SendAsync(RawWire.Frame("""{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":10}}"""));
        var answer = await wire.ReadUntilAsync(f => f.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.Number && i.GetInt64() == 10);

        Assert.Equal(ErrorCodes.RequestCancelled, answer.GetProperty("error").GetProperty("code").GetInt32());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"the cancel took {sw.Elapsed}");
        Assert.Equal(before, ImportCatalogueTests.Tree(dirs));
        await ImportCatalogueTests.AssertServingAsync(wire, ctx);
    }

    /// <summary>A server that sends the head and then nothing: the download gives up after the idle timeout and says so.</summary>
    [Fact]
    public async Task StalledShareBody_FailsAfterTheIdleTimeout_NamingIt()
    {
        await using var http = new HostileHttpServer(async (_, s, ct) =>
        {
            await WriteHeadAsync(s, 200, ct, "Content-Type: application/json", "Content-Length: 1000");
            await s.WriteAsync("[ "u8.ToArray(), ct);
            await s.FlushAsync(ct);
            await Task.Delay(TimeSpan.FromSeconds(30), ct);
        });
        using var client = ShareClient.CreateHttpClient();
        var ex = await Assert.ThrowsAsync<OpenCodeException>(() => ShareClient.FetchAsync(client, http.Base + "/share/stall1", "https://opncd.ai", ImportLimits.Default, CancellationToken.None, idleTimeout: TimeSpan.FromSeconds(1)));
        Assert.Equal(ErrorKind.FetchFailed, ex.Kind);
        Assert.Equal("Failed to fetch share data: the server sent nothing for 1 s (2 bytes received).", ex.Message);
    }

    /// <summary>A server that keeps trickling (so the idle timeout never fires): the whole download is bounded too.</summary>
    [Fact]
    public async Task TricklingShareBody_FailsAfterTheTotalTimeout_NamingIt()
    {
        await using var http = new HostileHttpServer(async (_, s, ct) =>
        {
            await WriteHeadAsync(s, 200, ct, "Content-Type: application/json", "Transfer-Encoding: chunked");
            for (int i = 0; i < 300; i++)
            {
                await s.WriteAsync("1\r\n \r\n"u8.ToArray(), ct);
                await s.FlushAsync(ct);
                await Task.Delay(100, ct);
            }
        });
        using var client = ShareClient.CreateHttpClient();
        var ex = await Assert.ThrowsAsync<OpenCodeException>(() => ShareClient.FetchAsync(client, http.Base + "/share/trickle1", "https://opncd.ai", ImportLimits.Default, CancellationToken.None, idleTimeout: TimeSpan.FromSeconds(5), totalTimeout: TimeSpan.FromSeconds(2)));
        Assert.Equal(ErrorKind.FetchFailed, ex.Kind);
        Assert.StartsWith("Failed to fetch share data: the download took longer than 2 s (", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>A server that accepts the connection and never answers: HttpClient's own timeout, named.</summary>
    [Fact]
    public async Task SilentShareServer_FailsAfterTheTimeout_NamingTheHost()
    {
        await using var http = new HostileHttpServer((_, _, ct) => Task.Delay(TimeSpan.FromSeconds(30), ct));
        using var client = ShareClient.CreateHttpClient(TimeSpan.FromSeconds(1));
        var ex = await Assert.ThrowsAsync<OpenCodeException>(() => ShareClient.FetchAsync(client, http.Base + "/share/silent1", "https://opncd.ai", ImportLimits.Default, CancellationToken.None));
        Assert.Equal(ErrorKind.FetchFailed, ex.Kind);
        Assert.Equal($"Failed to fetch share data: {http.Base} did not answer within 1 s.", ex.Message);
    }
}
