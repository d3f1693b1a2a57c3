using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Server;

public sealed record SessionForkParams
{
    public required string SessionID { get; init; }

    /// <summary>Fork before this message (OpenCode), or up to and including it with <see cref="Inclusive"/>. Absent: the whole session.</summary>
    public string? MessageID { get; init; }

    public bool? Inclusive { get; init; }
}

public sealed record SessionSearchParams
{
    public required string Query { get; init; }

    public int? Limit { get; init; }

    /// <summary><c>project</c> (default) or <c>all</c>.</summary>
    public string? Scope { get; init; }
}

public sealed record SearchHitResult(JsonObject Session, string? MessageID, string? PartID, string Snippet);

public sealed record TreeNodeResult(string SessionID, JsonObject? Session, string Relation, string? MessageID, bool Inclusive, IReadOnlyList<TreeNodeResult> Children);

public sealed record SessionTreeResult(JsonObject Session, IReadOnlyList<TreeNodeResult> Ancestors, IReadOnlyList<TreeNodeResult> Descendants);
