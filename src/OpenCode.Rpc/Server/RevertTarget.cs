using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Revert;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Undo/redo: session/revert, unrevert, undo, redo, diff; snapshot/track; step/start, step/finish.
/// The revert service is also the store's write hook, so a reverted session is cleaned up before its next
/// message whichever method writes it.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class RevertTarget
{
    private readonly ServerContext ctx;
    private readonly RevertService service;

    public RevertTarget(ServerContext ctx)
    {
        this.ctx = ctx;
        var locations = ConfigLocations.For(ctx.Options.ConfigDir);
        service = new RevertService(ctx.Store, () => ctx.Project, locations, log: ctx.Log);
        ctx.Store.WriteHook = service;

        // A revert killed midway is finished or rolled back now, not at the next revert call: its journal names
        // its own shadow repo and worktree, so no project is needed.
        ctx.StartupRecovery = Task.Run(service.RecoverAtStartAsync);
    }

    [JsonRpcMethod(Methods.SessionRevert, UseSingleObjectParameterDeserialization = true)]
    public async Task<RevertResult> RevertAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.RevertParams);
        var scope = q.Scope switch
        {
            null or "both" => RevertScope.Both,
            "conversation" => RevertScope.Conversation,
            "files" => RevertScope.Files,
            _ => throw new InvalidInputException("scope", "must be \"both\", \"conversation\" or \"files\""),
        };
        var outcome = await service.RevertAsync(new RevertRequest(q.SessionID, q.MessageID, q.PartID, scope, q.DryRun ?? false, q.Force ?? false), ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return ToResult(outcome);
    }

    [JsonRpcMethod(Methods.SessionUnrevert, UseSingleObjectParameterDeserialization = true)]
    public async Task<RevertResult> UnrevertAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.RevertSessionParams);
        var outcome = await service.UnrevertAsync(q.SessionID, q.Force ?? false, q.DryRun ?? false, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return ToResult(outcome);
    }

    [JsonRpcMethod(Methods.SessionUndo, UseSingleObjectParameterDeserialization = true)]
    public async Task<RevertResult> UndoAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.RevertSessionParams);
        var outcome = await service.UndoAsync(q.SessionID, q.Force ?? false, q.DryRun ?? false, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return ToResult(outcome);
    }

    [JsonRpcMethod(Methods.SessionRedo, UseSingleObjectParameterDeserialization = true)]
    public async Task<RevertResult> RedoAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.RevertSessionParams);
        var outcome = await service.RedoAsync(q.SessionID, q.Force ?? false, q.DryRun ?? false, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return ToResult(outcome);
    }

    [JsonRpcMethod(Methods.SessionDiff, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonArray> DiffAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionDiffParams);
        var diffs = await service.DiffAsync(q.SessionID, q.MessageID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return diffs;
    }

    [JsonRpcMethod(Methods.SnapshotTrack, UseSingleObjectParameterDeserialization = true)]
    public async Task<TrackResult> TrackAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionIdParams);
        return new TrackResult(await service.TrackAsync(q.SessionID, ct).ConfigureAwait(false));
    }

    [JsonRpcMethod(Methods.StepStart, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> StepStartAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.StepStartParams);
        var part = await service.StepStartAsync(q.SessionID, q.MessageID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return part;
    }

    [JsonRpcMethod(Methods.StepFinish, UseSingleObjectParameterDeserialization = true)]
    public async Task<StepFinishResult> StepFinishAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.StepFinishParams);
        var parts = await service.StepFinishAsync(q.SessionID, q.MessageID, q.Reason, q.Cost, q.Tokens, ct).ConfigureAwait(false);

        // A finished step is where OpenCode checks for overflow; compaction decides (and obeys auto:false) itself.
        if (ctx.Compaction is { } compaction)
        {
            await compaction.AfterStepFinishAsync(q.SessionID, q.MessageID, ct).ConfigureAwait(false);
        }

        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return new StepFinishResult(parts[0], parts.Count > 1 ? parts[1] : null);
    }

    private static RevertResult ToResult(RevertOutcome o) => new(
        o.Session,
        o.Files.Select(f => new RevertFileResult(f.Path, f.Status)).ToList(),
        o.FilesReverted,
        o.Reason,
        o.DryRun,
        o.Skipped,
        o.Prompt is { } pr ? new PromptResult(pr.MessageId, pr.Text, pr.Parts) : null);
}
