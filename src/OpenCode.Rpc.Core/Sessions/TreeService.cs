using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>A session in a tree. <see cref="Relation"/> and <see cref="MessageID"/> say how the lower node of the
/// link branched: <c>fork</c> (copied up to <see cref="MessageID"/>, <see cref="Inclusive"/> or not) or <c>child</c>
/// (a subagent session with parentID). <see cref="Session"/> is null when the session no longer exists.</summary>
public sealed record TreeNode(string SessionID, JsonObject? Session, string Relation, string? MessageID, bool Inclusive, IReadOnlyList<TreeNode> Children);

/// <summary>The session, the chain it came from (nearest first) and everything that came from it.</summary>
public sealed record SessionTree(JsonObject Session, IReadOnlyList<TreeNode> Ancestors, IReadOnlyList<TreeNode> Descendants);

/// <summary>Builds the fork/child tree around a session from parentID fields and our fork side files.</summary>
public sealed class TreeService(SessionStore store, ForkService forks)
{
    public SessionTree Tree(string sessionId)
    {
        var session = store.GetSession(sessionId);
        var origins = forks.AllOrigins();
        var ancestors = new List<TreeNode>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { sessionId };
        var current = session;
        string currentId = sessionId;
        while (true)
        {
            string? parent = current["parentID"] is JsonValue pv && pv.TryGetValue(out string? p) ? p : null;
            string relation = "child";
            string? messageId = null;
            bool inclusive = false;
            if (parent is null && origins.FirstOrDefault(o => o.SessionID == currentId) is { } origin)
            {
                parent = origin.FromSessionID;
                relation = "fork";
                messageId = origin.MessageID;
                inclusive = origin.Inclusive;
            }

            if (parent is null || !seen.Add(parent))
            {
                break;
            }

            JsonObject? parentInfo = store.SessionExists(parent) ? store.GetSession(parent) : null;
            ancestors.Add(new TreeNode(parent, parentInfo, relation, messageId, inclusive, []));
            if (parentInfo is null)
            {
                break;
            }

            current = parentInfo;
            currentId = parent;
        }

        var visited = new HashSet<string>(StringComparer.Ordinal) { sessionId };
        return new SessionTree(session, ancestors, Descendants(sessionId, origins, visited));
    }

    private List<TreeNode> Descendants(string sessionId, IReadOnlyList<ForkOrigin> origins, HashSet<string> visited)
    {
        var nodes = new List<TreeNode>();
        foreach (var child in store.Children(sessionId))
        {
            string id = (string)child["id"]!;
            if (visited.Add(id))
            {
                nodes.Add(new TreeNode(id, child, "child", null, false, Descendants(id, origins, visited)));
            }
        }

        foreach (var o in origins.Where(o => o.FromSessionID == sessionId).OrderBy(o => o.Time))
        {
            if (visited.Add(o.SessionID) && store.SessionExists(o.SessionID))
            {
                nodes.Add(new TreeNode(o.SessionID, store.GetSession(o.SessionID), "fork", o.MessageID, o.Inclusive, Descendants(o.SessionID, origins, visited)));
            }
        }

        return nodes;
    }
}
