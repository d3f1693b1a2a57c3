using System.Text.Json;
using System.Text.Json.Nodes;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Sharing: <c>session/share</c> and <c>session/unshare</c> over OpenCode's ShareNext API.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class ShareTarget(ServerContext ctx)
{
    [JsonRpcMethod(Methods.SessionShare, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> ShareAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionShareParams);
        _ = ctx.Project;
        var info = await ctx.Share.ShareAsync(q.SessionID, q.Sanitize ?? false, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return info;
    }

    [JsonRpcMethod(Methods.SessionUnshare, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> UnshareAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionUnshareParams);
        _ = ctx.Project;
        var info = await ctx.Share.UnshareAsync(q.SessionID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return info;
    }
}
