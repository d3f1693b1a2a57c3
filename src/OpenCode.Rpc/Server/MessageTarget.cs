using System.Text.Json;
using System.Text.Json.Nodes;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Messages and parts: list, get, create-or-replace, remove.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class MessageTarget(ServerContext ctx)
{
    [JsonRpcMethod(Methods.MessageList, UseSingleObjectParameterDeserialization = true)]
    public Task<IReadOnlyList<MessageResult>> ListAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.MessageListParams);
        if (q.Limit is < 1)
        {
            throw new Core.InvalidInputException("limit", "must be at least 1");
        }

        IReadOnlyList<MessageResult> list = ctx.Store.ListMessages(q.SessionID, q.Limit, q.Before)
            .Select(m => new MessageResult(m.Info, m.Parts)).ToList();
        return Task.FromResult(list);
    }

    [JsonRpcMethod(Methods.MessageGet, UseSingleObjectParameterDeserialization = true)]
    public Task<MessageResult> GetAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.MessageIdParams);
        var m = ctx.Store.GetMessage(q.SessionID, q.MessageID);
        return Task.FromResult(new MessageResult(m.Info, m.Parts));
    }

    [JsonRpcMethod(Methods.MessageUpdate, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> UpdateAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.MessageUpdateParams);
        var info = await ctx.Store.UpdateMessageAsync(q.Info, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return info;
    }

    [JsonRpcMethod(Methods.PartUpdate, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> UpdatePartAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.PartUpdateParams);
        var part = await ctx.Store.UpdatePartAsync(q.Part, q.Delta, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return part;
    }

    [JsonRpcMethod(Methods.MessageRemove, UseSingleObjectParameterDeserialization = true)]
    public async Task<bool> RemoveAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.MessageIdParams);
        await ctx.Store.RemoveMessageAsync(q.SessionID, q.MessageID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return true;
    }

    [JsonRpcMethod(Methods.PartRemove, UseSingleObjectParameterDeserialization = true)]
    public async Task<bool> RemovePartAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.PartIdParams);
        await ctx.Store.RemovePartAsync(q.SessionID, q.MessageID, q.PartID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return true;
    }
}
