using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Share;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Core.Transfer;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Options of one <c>serve</c> run.</summary>
/// <param name="DataDir">The data dir (default <c>$XDG_DATA_HOME/opencode</c>).</param>
/// <param name="DefaultDirectory">The project dir used when <c>initialize</c> names none.</param>
/// <param name="MaxFrameBytes">Largest accepted request frame.</param>
/// <param name="ConfigDir">The global OpenCode config dir, used alone; null: <c>$XDG_CONFIG_HOME/opencode</c> plus <c>$OPENCODE_CONFIG_DIR</c> (see ConfigLocations).</param>
/// <param name="WatchStore">Report store changes made by other processes as notifications (<see cref="StoreWatcher"/>).</param>
/// <param name="ImportLimits">Caps on one <c>session/import</c> (bytes, depth, messages, parts); null: <see cref="ImportLimits.Default"/>.</param>
public sealed record ServerOptions(string DataDir, string DefaultDirectory, long MaxFrameBytes = ServerOptions.DefaultMaxFrameBytes, string? ConfigDir = null, bool WatchStore = false, ImportLimits? ImportLimits = null)
{
    public const long DefaultMaxFrameBytes = 64L * 1024 * 1024;

    public const int MaxListLimit = 100_000;

    /// <summary>Where OpenCode config files are read: <see cref="ConfigDir"/> when given (tests, <c>--config-dir</c>),
    /// else OpenCode's own locations from the environment.</summary>
    public ConfigLocations ConfigLocations => ConfigLocations.For(ConfigDir);
}

/// <summary>State shared by the RPC targets of one connection: the store, the project chosen at
/// <c>initialize</c>, the lifecycle flags and the notification queue.</summary>
public sealed class ServerContext
{
    private readonly Lock gate = new();
    private readonly TaskCompletionSource exitSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task notifyTail = Task.CompletedTask;
    private ProjectInfo? project;

    public ServerContext(ServerOptions options, Action<string> log)
    {
        Options = options;
        Log = log;
        Store = new SessionStore(new StoreLayout(options.DataDir), warn: m => log("warning: " + m));
        Store.Changed += e => Notify(e.Type, e.Properties);
        Forks = new ForkService(Store);
        Tree = new TreeService(Store, Forks);
        Search = new SearchService(Store);
        Share = new ShareService(Store, () => ShareSettings.Read(options.ConfigLocations, project?.Directory ?? options.DefaultDirectory, project is { IsGit: true } p ? p.Worktree : null), log);
        // Watching takes an inotify watch per folder of the store, added one by one: a few ms for a small store, much
        // more for a large one. It starts at once, beside the rest of the start (see WatcherStart).
        // Its own thread: the walk blocks for as long as it takes, and on two cores the pool would have nobody left.
        WatcherStart = options.WatchStore
            ? Task.Factory.StartNew(StartWatcher, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)
            : Task.FromResult<StoreWatcher?>(null);
    }

    private volatile StoreWatcher? watcher;

    /// <summary>The store watcher being set up; its result is null when not watching.</summary>
    [PropertyShape(Ignore = true)]
    public Task<StoreWatcher?> WatcherStart { get; }

    /// <summary>Watches the store for other processes' changes; null unless <see cref="ServerOptions.WatchStore"/> (or
    /// while it is still being set up).</summary>
    [PropertyShape(Ignore = true)]
    public StoreWatcher? Watcher => watcher;

    private StoreWatcher? StartWatcher()
    {
        try
        {
            return watcher = new StoreWatcher(Store, e =>
            {
                Search.Forget(e); // before the client hears of it, so a search it makes then sees the change
                Notify(e.Type, e.Properties);
            }, m => Log("warning: " + m));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            Log($"warning: not watching the store for other processes' changes: {ex.Message}");
            return null;
        }
    }

    public ServerOptions Options { get; }

    public Action<string> Log { get; }

    public SessionStore Store { get; }

    public ForkService Forks { get; }

    public TreeService Tree { get; }

    public SearchService Search { get; }

    /// <summary>Recovery of reverts a killed process left half done, started when the server starts (by the revert
    /// target); <c>initialize</c> answers only once it is over.</summary>
    [PropertyShape(Ignore = true)]
    public Task StartupRecovery { get; set; } = Task.CompletedTask;

    /// <summary>Set by the compaction target; step/finish calls its <c>AfterStepFinishAsync</c>.</summary>
    public Core.Compaction.CompactionService? Compaction { get; set; }
    public ShareService Share { get; }

    // Hidden from PolyType: the targets' constructors take this context, and shaping JsonRpc breaks NativeAOT.
    [PropertyShape(Ignore = true)]
    public JsonRpc? Rpc { get; set; }

    public bool Initialized => project is not null;

    public bool ShutdownRequested { get; set; }

    public bool ExitRequested => exitSignal.Task.IsCompleted;

    /// <summary>Completes when the client sends <c>exit</c>. The host stops on it; disposing the connection from
    /// inside the exit handler would wait on that very handler.</summary>
#pragma warning disable VSTHRD003 // our own completion source
    public Task ExitSignal => exitSignal.Task;
#pragma warning restore VSTHRD003

    public void RequestExit() => exitSignal.TrySetResult();

    public ProjectInfo Project => project ?? throw new RpcProtocolException(ErrorCodes.ServerNotInitialized, "The server is not initialized: send initialize first.");

    public void SetProject(ProjectInfo value) => project = value;

    /// <summary>Queues a notification. Notifications go out one at a time, in the order the changes happened.</summary>
    public void Notify(string method, JsonObject properties)
    {
        var rpc = Rpc;
        if (rpc is null)
        {
            return;
        }

        lock (gate)
        {
            notifyTail = SendAfterAsync(notifyTail, rpc, method, properties);
        }
    }

    /// <summary>Completes when every notification queued so far has been written. Handlers await it before they
    /// answer, so a client always receives a change's notifications before the reply that caused them.</summary>
#pragma warning disable VSTHRD003 // the tail is our own chain of sends, started by this object
    public Task FlushNotificationsAsync()
    {
        lock (gate)
        {
            return notifyTail;
        }
    }

    private async Task SendAfterAsync(Task previous, JsonRpc rpc, string method, JsonObject properties)
    {
        await previous.ConfigureAwait(false);
#pragma warning restore VSTHRD003
        try
        {
            var args = new Dictionary<string, object?>(StringComparer.Ordinal);
            var types = new Dictionary<string, Type>(StringComparer.Ordinal);
            foreach (var (key, value) in properties)
            {
                args[key] = value?.DeepClone();
                types[key] = typeof(JsonNode);
            }

            await rpc.NotifyWithParameterObjectAsync(method, args, types).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or ConnectionLostException or IOException)
        {
            // The client went away; nothing to tell it any more.
        }
        catch (Exception ex)
        {
            Log($"failed to send {method}: {ex.Message}");
        }
    }
}
