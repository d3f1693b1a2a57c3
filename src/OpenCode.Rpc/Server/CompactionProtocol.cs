using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Server;

// Compaction wire types. Their [JsonSerializable] lines are in Protocol.cs (one generated context).

/// <summary><c>session/compact</c> params.</summary>
public sealed record SessionCompactParams
{
    public required string SessionID { get; init; }

    /// <summary>Recorded in the compaction part as OpenCode's <c>auto</c>. Default false (a manual /compact).</summary>
    public bool? Auto { get; init; }

    /// <summary><c>offline</c>, <c>model</c> or <c>client</c>; default from config.</summary>
    public string? Summarizer { get; init; }

    /// <summary>When given, <c>$/progress</c> notifications with this token report the work.</summary>
    public JsonElement? WorkDoneToken { get; init; }
}

/// <summary><c>session/uncompact</c> params: the compaction request (or its summary) to remove.</summary>
public sealed record SessionUncompactParams
{
    public required string SessionID { get; init; }

    public required string MessageID { get; init; }
}

/// <summary>A piece of a model message with its token count.</summary>
public sealed record ContextContentResult(string Type, string? PartID, string? Text, string? Tool, string? CallID, JsonNode? Input, string? Output, bool? Pruned, int Tokens);

/// <summary>A model message: role, the stored message it comes from, how it got there, its content and tokens.</summary>
public sealed record ContextMessageResult(string Role, string MessageID, string Source, IReadOnlyList<ContextContentResult> Content, int Tokens);

public sealed record ModelLimitsResult(long Context, long? Input, long Output);

/// <summary><c>session/context</c> result.</summary>
public sealed record SessionContextResult(
    string SessionID,
    IReadOnlyList<ContextMessageResult> Messages,
    long Total,
    string? CompactionMessageID,
    string? ProviderID,
    string? ModelID,
    ModelLimitsResult? Limit,
    long? Usable,
    bool Overflow);

/// <summary><c>session/compact</c> result.</summary>
public sealed record CompactResult(
    string SessionID,
    string CompactionMessageID,
    string SummaryMessageID,
    string? TailStartID,
    long TokensBefore,
    long TokensAfter,
    string Summarizer,
    string Summary,
    bool Auto);

/// <summary><c>session/uncompact</c> result: the removed message ids and the context size now.</summary>
public sealed record UncompactResult(IReadOnlyList<string> Removed, long Total);

/// <summary><c>session/prune</c> result.</summary>
public sealed record PruneResult(IReadOnlyList<string> PartIDs, long PrunedTokens, long ScannedTokens, bool Applied);

/// <summary>Server → client <c>compaction/summarize</c> params. <paramref name="System"/>: the compaction agent's
/// system prompt.</summary>
public sealed record ClientSummarizeParams(string SessionID, IReadOnlyList<ContextMessageResult> Messages, string Prompt, string? System = null);

/// <summary>The client's answer to <c>compaction/summarize</c>.</summary>
public sealed record ClientSummarizeResult
{
    public string? Text { get; init; }
}
