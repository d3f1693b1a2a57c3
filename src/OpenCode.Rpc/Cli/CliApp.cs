using System.CommandLine;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Cli;

/// <summary>The <c>opencode-rpc</c> command line: <c>serve</c> and the CLI verbs, all over the same core.</summary>
public static class CliApp
{
    public static readonly Option<string?> DataDirOption = new("--data-dir")
    {
        Description = "data directory (default: $XDG_DATA_HOME/opencode, else ~/.local/share/opencode)",
        Recursive = true,
    };

    public static readonly Option<string?> DirectoryOption = new("--directory")
    {
        Description = "project directory (default: the current directory)",
        Recursive = true,
    };

    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("opencode-rpc: OpenCode-compatible session manager, as a stdio JSON-RPC sidecar and a CLI");
        root.Options.Add(DataDirOption);
        root.Options.Add(DirectoryOption);
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(SessionCommands.Create());
        root.Subcommands.Add(TransferCommands.CreateExport());
        root.Subcommands.Add(TransferCommands.CreateImport());
        root.Subcommands.Add(ShareServerCommand.Create());
        root.Subcommands.Add(CheckpointCommand.Create());
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }

    public static string DataDir(ParseResult pr) =>
        Path.GetFullPath(pr.GetValue(DataDirOption) is { Length: > 0 } d ? d : StoreLayout.DefaultDataDir());

    /// <summary>A <c>--config-dir</c> option for a verb that reads OpenCode's config (one instance per command).</summary>
    public static Option<string?> NewConfigDirOption() => new("--config-dir")
    {
        Description = "global OpenCode config dir, used alone (default: $XDG_CONFIG_HOME/opencode, else ~/.config/opencode, plus $OPENCODE_CONFIG_DIR read last)",
    };

    public static ConfigLocations ConfigLocations(ParseResult pr, Option<string?> configDir) =>
        Core.Config.ConfigLocations.For(pr.GetValue(configDir) is { Length: > 0 } d ? Path.GetFullPath(d) : null);

    /// <summary>The project's merged OpenCode config, as the sidecar reads it.</summary>
    public static OpenCodeConfig Config(ParseResult pr, Option<string?> configDir, Core.Projects.ProjectInfo project) =>
        OpenCodeConfig.Load(ConfigLocations(pr, configDir), project.Directory, project.IsGit ? project.Worktree : null);

    public static string ProjectDir(ParseResult pr) =>
        Path.GetFullPath(pr.GetValue(DirectoryOption) is { Length: > 0 } d ? d : Environment.CurrentDirectory);

    public static void Log(string message) => Console.Error.WriteLine($"opencode-rpc: {message}");

    /// <summary>Runs a CLI verb; a core error prints <c>Error: &lt;sentence&gt;</c> to stderr and exits 1, as OpenCode does.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (OpenCodeException ex)
        {
            await Console.Error.WriteLineAsync($"Error: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
    }
}
