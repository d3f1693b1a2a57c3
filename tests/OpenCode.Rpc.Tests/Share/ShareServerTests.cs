using System.Net;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Share.ShareTestKit;

namespace OpenCode.Rpc.Tests.Share;

/// <summary>The share server on its own: bad input is 4xx with a JSON error, limits hold, the store survives a restart.</summary>
public sealed class ShareServerTests
{
    [Theory]
    [InlineData("POST", "/api/share", "not json", 400)]
    [InlineData("POST", "/api/share", "[1,2]", 400)]
    [InlineData("POST", "/api/share", """{"sessionID":"../../etc"}""", 400)]
    [InlineData("POST", "/api/share", """{"sessionID":42}""", 400)]
    [InlineData("POST", "/api/share/bad.id/sync", """{"secret":"x","data":[]}""", 400)]
    [InlineData("POST", "/api/share/nosuch/sync", """{"secret":"x","data":[]}""", 404)]
    [InlineData("GET", "/api/share/nosuch/data", null, 404)]
    [InlineData("GET", "/share/bad.id", null, 400)]
    [InlineData("DELETE", "/api/share/nosuch", """{"secret":"x"}""", 404)]
    [InlineData("GET", "/nothing/here", null, 404)]
    public async Task BadRequests_Get4xxWithAJsonError(string method, string path, string? body, int expected)
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "srv"));
        var (status, text) = await SendAsync(new HttpMethod(method), server.BaseUrl + path, body);
        Assert.Equal(expected, (int)status);
        Assert.NotNull((string?)JsonNode.Parse(text)!["error"]);
    }

    [Fact]
    public async Task Cli_ShareServer_BindsLoopbackByDefaultAndServes()
    {
        using var dirs = new TestDirs();
        string data = Path.Combine(dirs.Root, "srv");
        var psi = ProcessServer.SidecarStartInfo(["share-server", "--port", "0", "--data-dir", data]);
        using var p = System.Diagnostics.Process.Start(psi)!;
        try
        {
            string? line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.NotNull(line);
            Assert.StartsWith("listening on http://127.0.0.1:", line, StringComparison.Ordinal);
            string baseUrl = line["listening on ".Length..];
            var (status, body) = await SendAsync(HttpMethod.Post, $"{baseUrl}/api/share", """{"sessionID":"ses_0000000000001KKKKKKKKKKKKK"}""");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal($"{baseUrl}/share/KKKKKKKK", (string?)JsonNode.Parse(body)!["url"]);
            Assert.True(File.Exists(Path.Combine(data, "shares", "KKKKKKKK", "share.json")));
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Sync_BadItemInABatch_Is400AndNothingOfTheBatchIsStored()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "srv"));
        var created = JsonNode.Parse((await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", """{"sessionID":"ses_0000000000001BBBBBBBBBBBBB"}""")).Body)!;
        string id = (string)created["id"]!;
        string batch = $$$"""{"secret":"{{{created["secret"]}}}","data":[{"type":"message","data":{"id":"msg_1","sessionID":"s"}},{"type":"part","data":{"id":"../x","messageID":"msg_1"}}]}""";
        var r = await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share/{id}/sync", batch);
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Contains("data[1]", (string?)JsonNode.Parse(r.Body)!["error"], StringComparison.Ordinal);
        Assert.Equal("[]", (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{id}/data")).Body);
    }

    [Fact]
    public async Task Body_OverTheLimit_Is413()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "srv"), maxBody: 1024);
        string big = "{\"sessionID\":\"ses_0000000000001CCCCCCCCCCCCC\",\"pad\":\"" + new string('x', 4096) + "\"}";
        var (status, text) = await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", big);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.NotNull((string?)JsonNode.Parse(text)!["error"]);
    }

    [Fact]
    public async Task Create_OverTheRatePerClient_Is429()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "srv"), createsPerMinute: 3);
        var codes = new List<HttpStatusCode>();
        for (int i = 0; i < 5; i++)
        {
            codes.Add((await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", $$$"""{"sessionID":"ses_000000000000{{{i}}}DDDDDDDDDDDDD"}""")).Status);
        }

        // A minute boundary may fall between the calls; then the count restarts, so at least one is refused.
        Assert.Contains(HttpStatusCode.TooManyRequests, codes);
        Assert.Equal(HttpStatusCode.OK, codes[0]);
    }

    [Fact]
    public async Task Create_SameSessionTwice_GetsAnotherIdAndAnotherSecret()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "srv"));
        string body = """{"sessionID":"ses_0000000000001EEEEEEEEEEEEE"}""";
        var a = JsonNode.Parse((await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", body)).Body)!;
        var b = JsonNode.Parse((await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", body)).Body)!;
        Assert.Equal("EEEEEEEE", (string?)a["id"]);
        Assert.NotEqual((string?)a["id"], (string?)b["id"]);
        Assert.NotEqual((string?)a["secret"], (string?)b["secret"]);
    }

    [Fact]
    public async Task Restart_KeepsSharesAndTheirOrder()
    {
        using var dirs = new TestDirs();
        string data = Path.Combine(dirs.Root, "srv");
        string id;
        string before;
        int port;
        await using (var server = await StartServerAsync(data))
        {
            port = PortOf(server.BaseUrl);
            var c = JsonNode.Parse((await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", """{"sessionID":"ses_0000000000001FFFFFFFFFFFFF"}""")).Body)!;
            id = (string)c["id"]!;
            string batch = $$$"""
                {"secret":"{{{c["secret"]}}}","data":[
                 {"type":"session","data":{"id":"ses_0000000000001FFFFFFFFFFFFF","title":"t"}},
                 {"type":"part","data":{"id":"prt_1","messageID":"msg_1","type":"text","text":"x"}},
                 {"type":"message","data":{"id":"msg_1","role":"user"}},
                 {"type":"model","data":[]},{"type":"session_diff","data":[]}]}
                """;
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share/{id}/sync", batch)).Status);
            before = (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{id}/data")).Body;
        }

        var types = JsonNode.Parse(before)!.AsArray().Select(i => (string?)i!["type"]).ToList();
        Assert.Equal(["message", "model", "part", "session", "session_diff"], types);
        await using var again = await StartServerAsync(data, port);
        Assert.Equal(before, (await SendAsync(HttpMethod.Get, $"{again.BaseUrl}/api/share/{id}/data")).Body);
    }

    [Fact]
    public async Task Restart_AfterATornJournalLine_KeepsEveryAcknowledgedBatchAndAcceptsNewOnes()
    {
        using var dirs = new TestDirs();
        string data = Path.Combine(dirs.Root, "srv");
        string id;
        string secret;
        string before;
        int port;
        await using (var server = await StartServerAsync(data))
        {
            port = PortOf(server.BaseUrl);
            var c = JsonNode.Parse((await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", """{"sessionID":"ses_0000000000001JJJJJJJJJJJJJ"}""")).Body)!;
            id = (string)c["id"]!;
            secret = (string)c["secret"]!;
            string batch = $$$"""{"secret":"{{{secret}}}","data":[{"type":"message","data":{"id":"msg_1","role":"user"}}]}""";
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share/{id}/sync", batch)).Status);
            before = (await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/api/share/{id}/data")).Body;
        }

        // A crash in the middle of an append leaves half a line.
        await File.AppendAllTextAsync(Path.Combine(data, "shares", id, "items.jsonl"), """[{"type":"message","data":{"id":"msg_2","ro""");
        await using (var again = await StartServerAsync(data, port))
        {
            Assert.Equal(before, (await SendAsync(HttpMethod.Get, $"{again.BaseUrl}/api/share/{id}/data")).Body);
            string batch = $$$"""{"secret":"{{{secret}}}","data":[{"type":"message","data":{"id":"msg_3","role":"user"}}]}""";
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, $"{again.BaseUrl}/api/share/{id}/sync", batch)).Status);
        }

        await using var third = await StartServerAsync(data, port);
        var ids = (await DataAsync(third.BaseUrl, id))!.Select(i => (string?)i!["data"]!["id"]).ToList();
        Assert.Equal(["msg_1", "msg_3"], ids);
    }

    [Fact]
    public async Task Page_EscapesEverythingFromTheShare()
    {
        using var dirs = new TestDirs();
        await using var server = await StartServerAsync(Path.Combine(dirs.Root, "srv"));
        var c = JsonNode.Parse((await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share", """{"sessionID":"ses_0000000000001GGGGGGGGGGGGG"}""")).Body)!;
        string id = (string)c["id"]!;
        string batch = $$$"""
            {"secret":"{{{c["secret"]}}}","data":[
             {"type":"session","data":{"id":"ses_0000000000001GGGGGGGGGGGGG","title":"<script>alert(1)</script>"}},
             {"type":"message","data":{"id":"msg_1","role":"user"}},
             {"type":"part","data":{"id":"prt_1","messageID":"msg_1","type":"text","text":"<img src=x onerror=alert(2)>\n```\n<b>code</b>\n```"}}]}
            """;
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, $"{server.BaseUrl}/api/share/{id}/sync", batch)).Status);
        var (status, html) = await SendAsync(HttpMethod.Get, $"{server.BaseUrl}/share/{id}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<img", html, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html, StringComparison.Ordinal);
        Assert.Contains("<pre><code>&lt;b&gt;code&lt;/b&gt;</code></pre>", html, StringComparison.Ordinal);
    }
}
