using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace OpenCode.Rpc.Server;

/// <summary>
/// One JSON-RPC connection over a pair of streams with LSP framing (<c>Content-Length</c> headers), served by
/// StreamJsonRpc with source-generated System.Text.Json. Used by <c>serve</c> over stdio and by tests over
/// in-memory pipes.
/// </summary>
public sealed class RpcServer : IDisposable
{
    private readonly LspMessageHandler handler;

    private RpcServer(ServerContext ctx, JsonRpc rpc, LspMessageHandler handler)
    {
        Context = ctx;
        Rpc = rpc;
        this.handler = handler;
    }

    public ServerContext Context { get; }

    public JsonRpc Rpc { get; }

    /// <summary>Completes when the connection ends: stdin EOF, <c>exit</c>, or a fatal protocol error.</summary>
#pragma warning disable VSTHRD003 // JsonRpc.Completion is meant to be awaited by the host that started it.
    public Task Completion => Rpc.Completion;


#pragma warning restore VSTHRD003

    /// <summary>LSP's rule: 0 after <c>shutdown</c> (or a plain EOF), 1 for <c>exit</c> without <c>shutdown</c>.</summary>
    public int ExitCode => Context.ExitRequested && !Context.ShutdownRequested ? 1 : 0;

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "All payload types are source-generated in ProtocolJsonContext.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "All payload types are source-generated in ProtocolJsonContext.")]
    public static SystemTextJsonFormatter CreateFormatter() => new()
    {
        JsonSerializerOptions = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            TypeInfoResolver = ProtocolJsonContext.Default,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            MaxDepth = 256,
        },
    };

    public static RpcServer Start(Stream sending, Stream receiving, ServerOptions options, Action<string> log)
    {
        var ctx = new ServerContext(options, log);
        var handler = new LspMessageHandler(sending, receiving, CreateFormatter(), options.MaxFrameBytes, log);
        var rpc = new OpenCodeJsonRpc(handler, ctx);
        QuietTrace(rpc, log);
        ctx.Rpc = rpc;
        // FromShape: target metadata from PolyType's source generator, so the server also works under NativeAOT.
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<LifecycleTarget>(), new LifecycleTarget(ctx), null);
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<SessionTarget>(), new SessionTarget(ctx), null);
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<MessageTarget>(), new MessageTarget(ctx), null);
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<TreeTarget>(), new TreeTarget(ctx), null);
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<TransferTarget>(), new TransferTarget(ctx), null);
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<RevertTarget>(), new RevertTarget(ctx), null);
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<CompactionTarget>(), new CompactionTarget(ctx), null);
        rpc.AddLocalRpcTarget(RpcTargetMetadata.FromShape<ShareTarget>(), new ShareTarget(ctx), null);
        rpc.StartListening();
        return new RpcServer(ctx, rpc, handler);
    }

    /// <summary>
    /// StreamJsonRpc's TraceSource comes with .NET's DefaultTraceListener, which on Linux sends each event to syslog:
    /// a socket, a failed connect to /dev/log and a close per warning (one per notification a peer has no handler
    /// for). Its warnings and errors go to our stderr log instead, and nothing else is traced.
    /// </summary>
    public static void QuietTrace(JsonRpc rpc, Action<string>? log)
    {
        rpc.TraceSource.Listeners.Clear();
        if (log is null)
        {
            rpc.TraceSource.Switch.Level = SourceLevels.Off;
            return;
        }

        rpc.TraceSource.Switch.Level = SourceLevels.Warning;
        rpc.TraceSource.Listeners.Add(new LogTraceListener(log));
    }

    public void Dispose()
    {
        // A watcher still starting is disposed when it is done.
        _ = Context.WatcherStart.ContinueWith(_ => Context.Watcher?.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        Rpc.Dispose();
        // The handler writes through a pump: wait until every frame written so far is on the stream, so a process
        // that exits right after this has sent its last answers.
        handler.Drain();
        Context.Share.Dispose();
    }

    /// <summary>Every method name this server serves, read from the targets' attributes.</summary>
    public static readonly IReadOnlySet<string> KnownMethods = NamesOf<LifecycleTarget>()
        .Concat(NamesOf<SessionTarget>())
        .Concat(NamesOf<MessageTarget>())
        .Concat(NamesOf<TreeTarget>())
        .Concat(NamesOf<TransferTarget>())
        .Concat(NamesOf<RevertTarget>())
        .Concat(NamesOf<CompactionTarget>())
        .Concat(NamesOf<ShareTarget>())
        .ToHashSet(StringComparer.Ordinal);

    private static IEnumerable<string> NamesOf<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods)] T>() =>
        typeof(T).GetMethods()
            .Select(m => m.GetCustomAttributes(typeof(JsonRpcMethodAttribute), false).OfType<JsonRpcMethodAttribute>().FirstOrDefault()?.Name)
            .OfType<string>();

    private sealed class LogTraceListener(Action<string> log) : TraceListener
    {
        private readonly System.Text.StringBuilder line = new();

        public override void Write(string? message)
        {
            lock (line)
            {
                line.Append(message);
            }
        }

        public override void WriteLine(string? message)
        {
            string text;
            lock (line)
            {
                text = line.Append(message).ToString();
                line.Clear();
            }

            log("json-rpc: " + text);
        }
    }

    /// <summary>Gates requests on the lifecycle and routes every failure through <see cref="ErrorMapper"/>.</summary>
    private sealed class OpenCodeJsonRpc(IJsonRpcMessageHandler handler, ServerContext ctx) : JsonRpc(handler)
    {
        protected override JsonRpcError.ErrorDetail CreateErrorDetails(JsonRpcRequest request, Exception exception) =>
            ErrorMapper.Map(request.Method ?? "a request", exception, ctx.Log);

        protected override ValueTask<JsonRpcMessage> DispatchRequestAsync(JsonRpcRequest request, TargetMethod targetMethod, CancellationToken cancellationToken)
        {
            string method = request.Method ?? string.Empty;
            if (request.IsResponseExpected && method is Methods.Initialized or Methods.Exit or Methods.CancelRequest)
            {
                return ValueTask.FromResult(Error(request, ErrorCodes.InvalidRequest, $"{method} is a notification: send it without an id.", "InvalidRequest"));
            }

            if (!ctx.Initialized && method is not (Methods.Initialize or Methods.Exit or Methods.Shutdown))
            {
                return ValueTask.FromResult(Error(request, ErrorCodes.ServerNotInitialized, $"The server is not initialized: send initialize before {method}.", "ServerNotInitialized"));
            }

            if (ctx.ShutdownRequested && method is not (Methods.Exit or Methods.Shutdown))
            {
                return ValueTask.FromResult(Error(request, ErrorCodes.InvalidRequest, $"The server is shutting down: {method} is refused; send exit.", "ShuttingDown"));
            }

            return base.DispatchRequestAsync(request, targetMethod, cancellationToken);
        }

        private static JsonRpcMessage Error(JsonRpcRequest request, int code, string message, string kind) => new JsonRpcError
        {
            RequestId = request.RequestId,
            Error = new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)code, Message = message, Data = new System.Text.Json.Nodes.JsonObject { ["kind"] = kind } },
        };
    }
}
