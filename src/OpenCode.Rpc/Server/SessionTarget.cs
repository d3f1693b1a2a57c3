using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Sessions;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Sessions: create, get, list, update (rename/archive), delete, children. Each handler binds its
/// params, makes one call into the core, and lets <see cref="ErrorMapper"/> turn failures into errors.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class SessionTarget(ServerContext ctx)
{
    [JsonRpcMethod(Methods.SessionCreate, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> CreateAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionCreateParams);
        var info = await ctx.Store.CreateSessionAsync(ctx.Project, q.Title, q.ParentID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return info;
    }

    [JsonRpcMethod(Methods.SessionGet, UseSingleObjectParameterDeserialization = true)]
    public Task<JsonObject> GetAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionIdParams);
        return Task.FromResult(ctx.Store.GetSession(q.SessionID));
    }

    [JsonRpcMethod(Methods.SessionList, UseSingleObjectParameterDeserialization = true)]
    public Task<RawJsonArray> ListAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionListParams);
        if (q.Limit is < 1 or > ServerOptions.MaxListLimit)
        {
            throw new InvalidInputException("limit", $"must be between 1 and {ServerOptions.MaxListLimit}");
        }

        var list = ctx.Store.ListSessionsUtf8(ctx.Project.Id, new SessionListQuery(q.Search, q.Limit, q.Roots ?? false, q.Start, q.Archived ?? false));
        return Task.FromResult(new RawJsonArray(list));
    }

    [JsonRpcMethod(Methods.SessionUpdate, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> UpdateAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionUpdateParams);
        var info = await ctx.Store.UpdateSessionInfoAsync(q.SessionID, q.Title, q.Archived, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return info;
    }

    [JsonRpcMethod(Methods.SessionDelete, UseSingleObjectParameterDeserialization = true)]
    public async Task<bool> DeleteAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionIdParams);
        await ctx.Store.DeleteSessionAsync(q.SessionID, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return true;
    }

    [JsonRpcMethod(Methods.SessionChildren, UseSingleObjectParameterDeserialization = true)]
    public Task<IReadOnlyList<JsonObject>> ChildrenAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionIdParams);
        return Task.FromResult(ctx.Store.Children(q.SessionID));
    }
}
