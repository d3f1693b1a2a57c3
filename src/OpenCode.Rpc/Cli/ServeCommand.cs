using System.CommandLine;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Server;

namespace OpenCode.Rpc.Cli;

/// <summary><c>opencode-rpc serve</c>: JSON-RPC 2.0 over stdin/stdout with LSP framing.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var maxFrame = new Option<long>("--max-frame-bytes")
        {
            Description = "largest request frame accepted, in bytes",
            DefaultValueFactory = _ => ServerOptions.DefaultMaxFrameBytes,
        };
        var configDir = new Option<string?>("--config-dir")
        {
            Description = "global OpenCode config dir, used alone (default: $XDG_CONFIG_HOME/opencode, else ~/.config/opencode, plus $OPENCODE_CONFIG_DIR read last)",
        };
        var watch = new Option<bool>("--watch-store")
        {
            Description = "notify the client of store changes made by other processes (another sidecar, OpenCode)",
            DefaultValueFactory = _ => true,
        };
        var maxImport = new Option<long>("--max-import-bytes")
        {
            Description = "largest session/import accepted (file, content or share download), in bytes",
            DefaultValueFactory = _ => ImportLimits.DefaultMaxBytes,
        };
        var cmd = new Command("serve", "speak JSON-RPC 2.0 over stdin/stdout (LSP framing)") { maxFrame, configDir, watch, maxImport };
        cmd.SetAction(async (pr, ct) =>
        {
            // stdout is the wire. Anything that writes to Console.Out by mistake goes to stderr instead.
            var stdout = Console.OpenStandardOutput();
            var stdin = Console.OpenStandardInput();
            Console.SetOut(Console.Error);
            var options = new ServerOptions(CliApp.DataDir(pr), CliApp.ProjectDir(pr), pr.GetValue(maxFrame), pr.GetValue(configDir), pr.GetValue(watch),
                ImportLimits.Default with { MaxBytes = pr.GetValue(maxImport) });
            using var server = RpcServer.Start(stdout, stdin, options, CliApp.Log);
            try
            {
#pragma warning disable VSTHRD003 // both tasks belong to the server this method started
                await Task.WhenAny(server.Completion, server.Context.ExitSignal).WaitAsync(ct).ConfigureAwait(false);
                if (server.Completion is { IsFaulted: true } failed)
                {
                    await failed.ConfigureAwait(false); // surfaces the fatal connection error that ended it
                }
#pragma warning restore VSTHRD003
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C / SIGTERM: leave quietly; every acknowledged write is already on disk.
            }
            catch (Exception ex)
            {
                CliApp.Log($"connection ended: {ex.Message}");
            }

            return server.ExitCode;
        });
        return cmd;
    }
}
