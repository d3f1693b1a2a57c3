using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Compaction;
using OpenCode.Rpc.Core.Config;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Compaction: the model-visible context, compact / uncompact, prune. The service is also the store's
/// message-written hook, so an assistant <c>message/update</c> that overflows compacts automatically.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class CompactionTarget
{
    private readonly ServerContext ctx;
    private readonly CompactionService service;

    public CompactionTarget(ServerContext ctx)
    {
        this.ctx = ctx;
        var locations = ConfigLocations.For(ctx.Options.ConfigDir);
        service = new CompactionService(ctx.Store, () => ctx.Project, locations, clientSummarizer: () => ctx.Rpc is null ? null : new ClientSummarizer(ctx), log: ctx.Log);
        ctx.Compaction = service;
        ctx.Store.MessageWrittenHook = service;
        // Load the tokenizer's vocabulary off the request path, after start-up has had the CPU it needs.
        _ = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            TokenCounter.Warm();
        });
    }

    [JsonRpcMethod(Methods.SessionContext, UseSingleObjectParameterDeserialization = true)]
    public Task<SessionContextResult> ContextAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionIdParams);
        var c = service.Context(q.SessionID);
        var config = service.LoadConfig();
        var settings = service.Settings(config);
        var limits = ModelLimits.Resolve(config, c.ProviderID, c.ModelID);
        long? usable = limits?.Usable(settings);
        return Task.FromResult(new SessionContextResult(
            c.SessionID,
            c.Messages.Select(ToResult).ToList(),
            c.Total,
            c.CompactionMessageID,
            c.ProviderID,
            c.ModelID,
            limits is null ? null : new ModelLimitsResult(limits.Context, limits.Input, limits.Output),
            usable,
            usable is long u && limits!.Context > 0 && c.Total >= u));
    }

    [JsonRpcMethod(Methods.SessionCompact, UseSingleObjectParameterDeserialization = true)]
    public async Task<CompactResult> CompactAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionCompactParams);
        var kind = CompactionSettings.ParseKind(q.Summarizer, "summarizer");
        var progress = q.WorkDoneToken is { } token ? new WorkDoneProgress(ctx, JsonNode.Parse(token.GetRawText())!) : null;
        progress?.Begin("Compacting session");
        try
        {
            var o = await service.CompactAsync(q.SessionID, new CompactOptions(q.Auto ?? false, false, kind, progress), ct).ConfigureAwait(false);
            return new CompactResult(o.SessionID, o.CompactionMessageID, o.SummaryMessageID, o.TailStartID, o.TokensBefore, o.TokensAfter,
                o.Summarizer.ToString().ToLowerInvariant(), o.Summary, o.Auto);
        }
        finally
        {
            progress?.End();
            await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        }
    }

    [JsonRpcMethod(Methods.SessionUncompact, UseSingleObjectParameterDeserialization = true)]
    public async Task<UncompactResult> UncompactAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionUncompactParams);
        var removed = await service.UncompactAsync(q.SessionID, q.MessageID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return new UncompactResult(removed, service.Context(q.SessionID).Total);
    }

    [JsonRpcMethod(Methods.SessionPrune, UseSingleObjectParameterDeserialization = true)]
    public async Task<PruneResult> PruneAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionIdParams);
        var o = await service.PruneAsync(q.SessionID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return new PruneResult(o.PartIDs, o.PrunedTokens, o.ScannedTokens, o.Applied);
    }

    // Input is shared, not cloned: it is the conversion's own copy (ContextBuilder clones it from the part), which
    // nothing mutates, and results are only serialized. Cloning every tool input of a long session on every call was
    // a good part of session/context's garbage.
    internal static ContextMessageResult ToResult(ContextMessage m) => new(
        m.Role,
        m.MessageID,
        m.Source,
        m.Content.Select(c => new ContextContentResult(c.Type, c.PartID, c.Text, c.Tool, c.CallID, c.Input, c.Output, c.Pruned ? true : null, c.Tokens)).ToList(),
        m.Tokens);
}

/// <summary>Asks the client's own model for the summary: the server-to-client request <c>compaction/summarize</c>.</summary>
internal sealed class ClientSummarizer(ServerContext ctx) : ISummarizer
{
    public SummarizerKind Kind => SummarizerKind.Client;

    public (string ProviderID, string ModelID)? Model => null;

    public async Task<string> SummarizeAsync(SummaryRequest request, CancellationToken ct)
    {
        var rpc = ctx.Rpc ?? throw new SummarizerFailedException("The client summarizer needs a connected client.");
        var args = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["sessionID"] = request.SessionID,
            ["messages"] = request.Head.Select(CompactionTarget.ToResult).ToList(),
            ["prompt"] = request.Prompt,
            // The compaction agent's instructions, as the model summarizer sends them in its system message.
            ["system"] = CompactionPrompt.System,
        };
        var types = new Dictionary<string, Type>(StringComparer.Ordinal)
        {
            ["sessionID"] = typeof(string),
            ["messages"] = typeof(IReadOnlyList<ContextMessageResult>),
            ["prompt"] = typeof(string),
            ["system"] = typeof(string),
        };
        request.Progress?.Report("Asking the client's model for the summary");
        ClientSummarizeResult result;
        try
        {
            result = await rpc.InvokeWithParameterObjectAsync<ClientSummarizeResult>(Methods.CompactionSummarize, args, types, ct).ConfigureAwait(false);
        }
        catch (RemoteInvocationException ex)
        {
            throw new SummarizerFailedException($"The client could not summarize: {ex.Message}", ex);
        }
        catch (RemoteMethodNotFoundException ex)
        {
            throw new SummarizerFailedException("The client does not answer compaction/summarize.", ex);
        }

        return string.IsNullOrWhiteSpace(result?.Text) ? throw new SummarizerFailedException("The client returned an empty summary.") : result.Text;
    }
}
