using System.CommandLine;
using OpenCode.Rpc.ShareServer;

namespace OpenCode.Rpc.Cli;

/// <summary><c>opencode-rpc share-server</c>: the self-hostable share server (OpenCode's ShareNext API + HTML).</summary>
public static class ShareServerCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "port to listen on (0: a free one)", DefaultValueFactory = _ => 4097 };
        var host = new Option<string>("--host") { Description = "address to bind (default loopback)", DefaultValueFactory = _ => "127.0.0.1" };
        var publicUrl = new Option<string?>("--public-url") { Description = "base of the share links it hands out (default http://<host>:<port>)" };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "largest request body", DefaultValueFactory = _ => 16L * 1024 * 1024 };
        var creates = new Option<int>("--creates-per-minute") { Description = "shares one client address may create per minute", DefaultValueFactory = _ => 60 };
        var durable = new Option<bool>("--durable") { Description = "fsync every write" };
        var cmd = new Command("share-server", "serve shares: OpenCode's share API (set enterprise.url to it) and a readable page per share")
        {
            port, host, publicUrl, maxBody, creates, durable,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            string dataDir = pr.GetValue(CliApp.DataDirOption) is { Length: > 0 } d
                ? Path.GetFullPath(d)
                : Path.Combine(Core.Storage.StoreLayout.DefaultDataDir(), "opencode-rpc", "share-server");
            var options = new ShareServerOptions(dataDir, pr.GetValue(host)!, pr.GetValue(port), pr.GetValue(publicUrl), pr.GetValue(maxBody), pr.GetValue(creates), pr.GetValue(durable));
            try
            {
                await using var server = await ShareServerHost.StartAsync(options, ct).ConfigureAwait(false);
                // The first stdout line tells scripts (and tests) where it listens.
                Console.WriteLine($"listening on {server.BaseUrl}");
                await Console.Out.FlushAsync(ct).ConfigureAwait(false);
                await server.WaitForShutdownAsync(ct).ConfigureAwait(false);
                return 0;
            }
            catch (OperationCanceledException)
            {
                return 0;
            }
            catch (Exception ex) when (ex is IOException or ArgumentException)
            {
                CliApp.Log($"share-server: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }
}
