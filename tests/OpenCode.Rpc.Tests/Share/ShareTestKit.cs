using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.ShareServer;

namespace OpenCode.Rpc.Tests.Share;

/// <summary>Helpers of the share tests: our share server in-process on a free loopback port, config files, polling.</summary>
internal static class ShareTestKit
{
    public static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(60) };

    public static Task<ShareServerHost> StartServerAsync(string dataDir, int port = 0, int createsPerMinute = 60, long maxBody = 16L * 1024 * 1024) =>
        ShareServerHost.StartAsync(new ShareServerOptions(dataDir, "127.0.0.1", port, null, maxBody, createsPerMinute), CancellationToken.None);

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public static int PortOf(string baseUrl) => new Uri(baseUrl).Port;

    /// <summary>Writes <c>opencode.json</c> with <c>enterprise.url</c> (and <c>share</c>) into the test's global config
    /// dir, the one its servers are given (<see cref="Infrastructure.TestDirs.ConfigDir"/>), never the real one.</summary>
    public static void WriteConfig(Infrastructure.TestDirs dirs, string baseUrl, string? mode = null) =>
        WriteConfigFile(dirs.ConfigDir, "opencode.json", baseUrl, mode);

    /// <summary>Writes a config file into any folder (a project folder, its <c>.opencode/</c>, a config dir).</summary>
    public static void WriteConfigFile(string dir, string name, string baseUrl, string? mode = null)
    {
        var o = new JsonObject { ["enterprise"] = new JsonObject { ["url"] = baseUrl } };
        if (mode is not null)
        {
            o["share"] = mode;
        }

        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, name), o.ToJsonString());
    }

    /// <summary>Polls until the condition holds (a generous bound only so a broken build cannot hang the run).</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "never happened: " + what);
            await Task.Delay(50);
        }
    }

    public static async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string url, string? json = null)
    {
        using var req = new HttpRequestMessage(method, url);
        if (json is not null)
        {
            req.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var resp = await Http.SendAsync(req);
        return (resp.StatusCode, await resp.Content.ReadAsStringAsync());
    }

    public static async Task<JsonArray?> DataAsync(string baseUrl, string shareId)
    {
        var (status, body) = await SendAsync(HttpMethod.Get, $"{baseUrl}/api/share/{shareId}/data");
        return status == HttpStatusCode.OK ? JsonNode.Parse(body)!.AsArray() : null;
    }
}
