using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Projects;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary><c>initialize</c>, <c>initialized</c>, <c>shutdown</c> and <c>exit</c>, with LSP's meaning.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class LifecycleTarget(ServerContext ctx)
{
    private static readonly TimeSpan WatcherWait = TimeSpan.FromMilliseconds(10);

    private static readonly HashSet<string> LifecycleMethods = [Methods.Initialize, Methods.Initialized, Methods.Shutdown, Methods.Exit];

    public static string Version => typeof(LifecycleTarget).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    [JsonRpcMethod(Methods.Initialize, UseSingleObjectParameterDeserialization = true)]
    public async Task<InitializeResult> InitializeAsync(JsonElement p = default, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();

        // A client that has the answer sees no half-reverted worktree (see RevertService.RecoverAsync).
        await ctx.StartupRecovery.WaitAsync(ct).ConfigureAwait(false);
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.InitializeParams);
        if (ctx.Initialized)
        {
            throw new RpcProtocolException(ErrorCodes.InvalidRequest, "The server is already initialized.");
        }

        string dir = q.Directory ?? ctx.Options.DefaultDirectory;
        if (dir.Length == 0 || !Path.IsPathRooted(dir))
        {
            throw new InvalidInputException("directory", "must be an absolute path");
        }

        if (!Directory.Exists(dir))
        {
            throw new InvalidInputException("directory", "does not exist or is not a directory", $"Invalid directory: {dir} does not exist.");
        }

        var project = ProjectResolver.Resolve(dir);
        ctx.Store.Initialize();
        // A small store's watcher is in place before the answer, so a client sees every change made after it; a large
        // store's may take longer, and the answer does not wait for more than this.
        try
        {
            await ctx.WatcherStart.WaitAsync(WatcherWait, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            ctx.Log("the store watcher is still starting (a large store): changes by other processes are reported once it is");
        }

        // Off the answer's path: the walk of every folder grows with the store (see SweepStaleTemps).
        // Its own thread, as the watcher's: a long synchronous walk must not hold one of the pool's few threads.
        _ = Task.Factory.StartNew(() => SweepQuietly(ctx), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        ctx.SetProject(project);
        ctx.Log($"initialized: project {project.Id} ({project.Worktree}), data dir {ctx.Store.Layout.DataDir}");

        // Derived from the targets' attributes, so a new method is announced the moment it is served.
        var methods = RpcServer.KnownMethods.Where(m => !LifecycleMethods.Contains(m)).Order(StringComparer.Ordinal).ToArray();
        return new InitializeResult(
            new ServerInfo("opencode-rpc", Version),
            new ServerCapabilities(
                methods,
                Notifications.All,
                new ProjectSummary(project.Id, project.Worktree, project.Directory, project.Vcs, ctx.Store.Layout.DataDir),
                new ServerLimits(ctx.Options.MaxFrameBytes, Core.Sessions.SessionStore.MaxTitleLength, ServerOptions.MaxListLimit)));
    }

    [JsonRpcMethod(Methods.Initialized, UseSingleObjectParameterDeserialization = true)]
    public void Initialized(JsonElement p = default)
    {
        // Nothing to do: the client tells us it has processed our initialize answer.
    }

    [JsonRpcMethod(Methods.Shutdown)]
    public async Task<JsonNode?> ShutdownAsync(CancellationToken ct)
    {
        ctx.ShutdownRequested = true;
        await ctx.FlushNotificationsAsync().WaitAsync(ct).ConfigureAwait(false);
        return null;
    }

    [JsonRpcMethod(Methods.Exit)]
    public void Exit()
    {
        ctx.RequestExit();
    }

    private static void SweepQuietly(ServerContext ctx)
    {
        try
        {
            // After a process died mid-work (its journal was left), sweep now; otherwise at most once a day.
            ctx.Store.SweepStaleTemps(ctx.Store.AbandonedJournalsAtStart > 0 ? TimeSpan.Zero : Core.Sessions.SessionStore.TempSweepInterval);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A folder removed mid-walk, a read-only data dir: the next start tries again.
            ctx.Log($"temp sweep: {ex.Message}");
        }
    }
}
