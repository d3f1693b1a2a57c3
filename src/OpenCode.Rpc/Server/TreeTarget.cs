using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Sessions;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Fork, the session tree, and search across sessions.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class TreeTarget(ServerContext ctx)
{
    [JsonRpcMethod(Methods.SessionFork, UseSingleObjectParameterDeserialization = true)]
    public async Task<JsonObject> ForkAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionForkParams);
        if (q.Inclusive == true && q.MessageID is null)
        {
            throw new InvalidInputException("inclusive", "needs messageID: it says whether that message is kept");
        }

        var info = await ctx.Forks.ForkAsync(q.SessionID, q.MessageID, q.Inclusive ?? false, ct).ConfigureAwait(false);
        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return info;
    }

    [JsonRpcMethod(Methods.SessionTree, UseSingleObjectParameterDeserialization = true)]
    public Task<SessionTreeResult> TreeAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionIdParams);
        var t = ctx.Tree.Tree(q.SessionID);
        return Task.FromResult(new SessionTreeResult(t.Session, t.Ancestors.Select(Map).ToList(), t.Descendants.Select(Map).ToList()));
    }

    [JsonRpcMethod(Methods.SessionSearch, UseSingleObjectParameterDeserialization = true)]
    public Task<IReadOnlyList<SearchHitResult>> SearchAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionSearchParams);
        string? project = q.Scope switch
        {
            null or "project" => ctx.Project.Id,
            "all" => null,
            _ => throw new InvalidInputException("scope", "must be \"project\" or \"all\""),
        };
        IReadOnlyList<SearchHitResult> hits = ctx.Search.Search(q.Query, q.Limit ?? SearchService.DefaultLimit, project, ct)
            .Select(h => new SearchHitResult(h.Session, h.MessageID, h.PartID, h.Snippet)).ToList();
        return Task.FromResult(hits);
    }

    private static TreeNodeResult Map(TreeNode n) =>
        new(n.SessionID, n.Session, n.Relation, n.MessageID, n.Inclusive, n.Children.Select(Map).ToList());
}
