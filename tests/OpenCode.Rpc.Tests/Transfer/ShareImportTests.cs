using System.Net;
using System.Net.Sockets;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Transfer;

/// <summary>Import from a share link against a real HTTP server on 127.0.0.1 that the test starts.</summary>
public sealed class ShareImportTests
{
    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A tiny share server: routes path → (status, body, location).</summary>
    private sealed class ShareServer : IAsyncDisposable
    {
        private readonly HttpListener listener = new();
        private readonly Task loop;

        public ShareServer(Func<string, (int Status, string Body, string? Location)> route)
        {
            Port = FreePort();
            listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            listener.Start();
            loop = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    HttpListenerContext c;
                    try
                    {
                        c = await listener.GetContextAsync();
                    }
                    catch (Exception)
                    {
                        return;
                    }

                    string path = c.Request.Url!.AbsolutePath;
                    lock (Requests)
                    {
                        Requests.Add(path);
                    }

                    var (status, body, location) = route(path);
                    c.Response.StatusCode = status;
                    if (location is not null)
                    {
                        c.Response.RedirectLocation = location;
                    }

                    var bytes = System.Text.Encoding.UTF8.GetBytes(body);
                    c.Response.ContentType = "application/json";
                    await c.Response.OutputStream.WriteAsync(bytes);
                    c.Response.Close();
                }
            });
        }

        public int Port { get; }

        public List<string> Requests { get; } = [];

        public string Base => $"http://127.0.0.1:{Port}";

        public async ValueTask DisposeAsync()
        {
            // Close alone: on Unix, Stop then Close removes the listener twice, and the second removal binds the
            // port again, failing ("Address already in use") when another test has taken it in between.
            listener.Close();
            await loop.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    private static readonly string ShareData = File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "share", "share-data-flat-array.json"));

    [Fact]
    public async Task ImportShare_FetchesFlatData_GroupsPartsUnderMessages()
    {
        await using var http = new ShareServer(p => p == "/api/share/shr0001/data" ? (200, ShareData, null) : (404, "{}", null));
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var r = await server.CallAsync(Methods.SessionImport, new { url = $"{http.Base}/share/shr0001" });
        Assert.Equal("ses_df5b97920ffeUFbu7k46fCazeu", r.GetProperty("sessionID").GetString());
        Assert.Equal(3, r.GetProperty("messages").GetInt32());
        Assert.Equal(5, r.GetProperty("parts").GetInt32());
        Assert.Equal(["/api/share/shr0001/data"], http.Requests);
        var msgs = server.Server.Context.Store.ListMessages("ses_df5b97920ffeUFbu7k46fCazeu");
        Assert.Equal([1, 3, 1], msgs.Select(m => m.Parts.Count));
        Assert.All(msgs, m => Assert.All(m.Parts, p => Assert.Equal((string?)m.Info["id"], (string?)p["messageID"])));
    }

    [Fact]
    public async Task ImportShare_404_IsShareNotFound_AndCliExitsNonZero()
    {
        await using var http = new ShareServer(_ => (404, "{\"error\":\"nope\"}", null));
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { url = $"{http.Base}/share/nosuch" });
        Assert.Equal(ErrorCodes.ShareNotFound, err.Code);
        Assert.Equal("Share not found or empty: nosuch", err.Message);
        var cli = await ProcessServer.RunCliAsync(["import", $"{http.Base}/share/nosuch", "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir, "--config-dir", dirs.ConfigDir]);
        Assert.Equal(1, cli.Code);
        Assert.Equal("Error: Share not found or empty: nosuch\n", cli.Stderr);
    }

    [Fact]
    public async Task ImportShare_EmptyShare_IsShareNotFound()
    {
        await using var http = new ShareServer(_ => (200, "[]", null));
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { url = $"{http.Base}/share/empty1" });
        Assert.Equal(ErrorCodes.ShareNotFound, err.Code);
        Assert.Equal("Share not found or empty: empty1", err.Message);
    }

    [Fact]
    public async Task ImportShare_NothingListening_IsAClearConnectError_ExitNonZero()
    {
        int port = FreePort();
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { url = $"http://127.0.0.1:{port}/share/abc123" });
        Assert.Equal(ErrorCodes.FetchFailed, err.Code);
        Assert.StartsWith($"Failed to fetch share data: cannot connect to http://127.0.0.1:{port}", err.Message, StringComparison.Ordinal);
        var cli = await ProcessServer.RunCliAsync(["import", $"http://127.0.0.1:{port}/share/abc123", "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir, "--config-dir", dirs.ConfigDir]);
        Assert.Equal(1, cli.Code);
        Assert.StartsWith("Error: Failed to fetch share data: cannot connect", cli.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ImportShare_RedirectToAnotherHost_IsNotFollowed()
    {
        await using var http = new ShareServer(_ => (302, string.Empty, "http://localhost:1/api/share/x/data"));
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { url = $"{http.Base}/share/abc" });
        Assert.Equal(ErrorCodes.FetchFailed, err.Code);
        Assert.Contains("redirected to another host", err.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://opncd.ai/not-a-share")]
    [InlineData("https://opncd.ai/share/abc/")]
    [InlineData("https://opncd.ai/share/abc?x=1")]
    public async Task ImportShare_NotAShareLink_NamesTheExpectedShape_DefaultBase(string url)
    {
        using var dirs = new TestDirs();
        var cli = await ProcessServer.RunCliAsync(["import", url, "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir, "--config-dir", dirs.ConfigDir]);
        Assert.Equal(1, cli.Code);
        Assert.Equal("Error: Invalid URL format. Expected: https://opncd.ai/share/<slug>\n", cli.Stderr);
    }

    [Fact]
    public async Task ImportShare_NotAShareLink_UsesEnterpriseUrlFromOpencodeJson()
    {
        using var dirs = new TestDirs();
        await File.WriteAllTextAsync(Path.Combine(dirs.ProjectDir, "opencode.jsonc"), "{\n  // self-hosted\n  \"enterprise\": { \"url\": \"https://share.example.test/\" },\n}\n");
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { url = "http://127.0.0.1:9/x/y/z" });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        Assert.Equal("Invalid URL format. Expected: https://share.example.test/share/<slug>", err.Message);
    }
    [Fact]
    public async Task ImportShare_NotAShareLink_UsesEnterpriseUrlFromTheInjectedGlobalConfigDir()
    {
        using var dirs = new TestDirs();
        Directory.CreateDirectory(dirs.ConfigDir);
        await File.WriteAllTextAsync(Path.Combine(dirs.ConfigDir, "opencode.json"), """{ "enterprise": { "url": "https://global.example.test" } }""");
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { url = "http://127.0.0.1:9/x/y/z" });
        Assert.Equal("Invalid URL format. Expected: https://global.example.test/share/<slug>", err.Message);
        var cli = await ProcessServer.RunCliAsync(["import", "http://127.0.0.1:9/x/y/z", "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir, "--config-dir", dirs.ConfigDir]);
        Assert.Equal("Error: Invalid URL format. Expected: https://global.example.test/share/<slug>\n", cli.Stderr);
    }

    /// <summary>OpenCode 1.1.65 also reads <c>.opencode/opencode.json</c> in the project, over the project's own
    /// <c>opencode.json</c> (checked with the real binary's <c>opencode debug config</c>).</summary>
    [Fact]
    public async Task ImportShare_NotAShareLink_DotOpencodeFolderWinsOverTheProjectFile()
    {
        using var dirs = new TestDirs();
        await File.WriteAllTextAsync(Path.Combine(dirs.ProjectDir, "opencode.json"), """{ "enterprise": { "url": "https://project.example.test" } }""");
        Directory.CreateDirectory(Path.Combine(dirs.ProjectDir, ".opencode"));
        await File.WriteAllTextAsync(Path.Combine(dirs.ProjectDir, ".opencode", "opencode.jsonc"), """{ "enterprise": { "url": "https://dot-opencode.example.test" } }""");
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { url = "http://127.0.0.1:9/x/y/z" });
        Assert.Equal("Invalid URL format. Expected: https://dot-opencode.example.test/share/<slug>", err.Message);
    }
}
