using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using StreamJsonRpc.Protocol;

namespace OpenCode.Rpc.Server;

// Params use OpenCode's casing (sessionID, messageID, partID): the camelCase policy turns SessionID into
// "sessionID". Results that are OpenCode objects (Session, Message, Part) travel as JsonObject so that every
// field, known or not, reaches the client in the order it has on disk.

/// <summary><c>initialize</c> params, as in LSP.</summary>
public sealed record InitializeParams
{
    public int? ProcessId { get; init; }

    public ClientInfo? ClientInfo { get; init; }

    /// <summary>The project directory. Defaults to the server's <c>--directory</c> or working directory.</summary>
    public string? Directory { get; init; }

    public JsonElement? InitializationOptions { get; init; }

    /// <summary>LSP clients send this; accepted and ignored.</summary>
    public JsonElement? Capabilities { get; init; }

    public JsonElement? Trace { get; init; }

    public string? RootUri { get; init; }

    public string? RootPath { get; init; }

    public JsonElement? WorkspaceFolders { get; init; }

    public string? Locale { get; init; }
}

public sealed record ClientInfo
{
    public string? Name { get; init; }

    public string? Version { get; init; }
}

public sealed record ServerInfo(string Name, string Version);

public sealed record InitializeResult(ServerInfo ServerInfo, ServerCapabilities Capabilities);

/// <summary>What this server offers: its methods and notifications, the project it resolved, and its limits.</summary>
public sealed record ServerCapabilities(
    IReadOnlyList<string> Methods,
    IReadOnlyList<string> Notifications,
    ProjectSummary Project,
    ServerLimits Limits);

public sealed record ProjectSummary(string Id, string Worktree, string Directory, string? Vcs, string DataDir);

public sealed record ServerLimits(long MaxFrameBytes, int MaxTitleLength, int MaxListLimit);

public sealed record SessionCreateParams
{
    public string? Title { get; init; }

    public string? ParentID { get; init; }
}

public sealed record SessionIdParams
{
    public required string SessionID { get; init; }
}

public sealed record SessionListParams
{
    public string? Search { get; init; }

    public int? Limit { get; init; }

    public bool? Roots { get; init; }

    public long? Start { get; init; }

    public bool? Archived { get; init; }
}

public sealed record SessionUpdateParams
{
    public required string SessionID { get; init; }

    public string? Title { get; init; }

    public bool? Archived { get; init; }
}

public sealed record MessageListParams
{
    public required string SessionID { get; init; }

    public int? Limit { get; init; }

    public string? Before { get; init; }
}

public sealed record MessageIdParams
{
    public required string SessionID { get; init; }

    public required string MessageID { get; init; }
}

public sealed record PartIdParams
{
    public required string SessionID { get; init; }

    public required string MessageID { get; init; }

    public required string PartID { get; init; }
}

public sealed record MessageUpdateParams
{
    public required JsonObject Info { get; init; }
}

public sealed record PartUpdateParams
{
    public required JsonObject Part { get; init; }

    /// <summary>Streamed text appended since the last update; forwarded in <c>message.part.updated</c>.</summary>
    public string? Delta { get; init; }
}

/// <summary>A message with its parts: OpenCode's <c>{info, parts}</c>.</summary>
public sealed record MessageResult(JsonObject Info, IReadOnlyList<JsonObject> Parts);

/// <summary>Params are bound strictly: an unknown field is an error, not silently dropped.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(InitializeParams))]
[JsonSerializable(typeof(InitializeResult))]
[JsonSerializable(typeof(SessionCreateParams))]
[JsonSerializable(typeof(SessionIdParams))]
[JsonSerializable(typeof(SessionListParams))]
[JsonSerializable(typeof(SessionUpdateParams))]
[JsonSerializable(typeof(MessageListParams))]
[JsonSerializable(typeof(MessageIdParams))]
[JsonSerializable(typeof(PartIdParams))]
[JsonSerializable(typeof(MessageUpdateParams))]
[JsonSerializable(typeof(PartUpdateParams))]
[JsonSerializable(typeof(MessageResult))]
[JsonSerializable(typeof(SessionForkParams))]
[JsonSerializable(typeof(SessionSearchParams))]
[JsonSerializable(typeof(IReadOnlyList<SearchHitResult>))]
[JsonSerializable(typeof(SessionTreeResult))]
[JsonSerializable(typeof(IReadOnlyList<MessageResult>))]
[JsonSerializable(typeof(SessionExportParams))]
[JsonSerializable(typeof(SessionExportResult))]
[JsonSerializable(typeof(SessionImportParams))]
[JsonSerializable(typeof(SessionImportResult))]
[JsonSerializable(typeof(SessionImportDatabaseParams))]
[JsonSerializable(typeof(SessionImportDatabaseResult))]
[JsonSerializable(typeof(SessionShareParams))]
[JsonSerializable(typeof(SessionUnshareParams))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(JsonNode))]
[JsonSerializable(typeof(JsonArray))]
[JsonSerializable(typeof(JsonValue))]
[JsonSerializable(typeof(IReadOnlyList<JsonObject>))]
[JsonSerializable(typeof(RawJsonArray))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
// Revert (RevertProtocol.cs). The STJ source generator does not merge [JsonSerializable] lists spread over
// several partial declarations (CS8785: duplicate hint name for a shared type such as bool), so they live here.
[JsonSerializable(typeof(RevertParams))]
[JsonSerializable(typeof(RevertSessionParams))]
[JsonSerializable(typeof(SessionDiffParams))]
[JsonSerializable(typeof(StepStartParams))]
[JsonSerializable(typeof(StepFinishParams))]
[JsonSerializable(typeof(RevertResult))]
[JsonSerializable(typeof(TrackResult))]
[JsonSerializable(typeof(StepFinishResult))]
[JsonSerializable(typeof(CommonErrorData))] // required: error.data of every exception reply (STACK.md pitfall 5)
[JsonSerializable(typeof(StreamJsonRpc.RequestId))] // required: $/cancelRequest params
// Compaction (Server/CompactionProtocol.cs)
[JsonSerializable(typeof(SessionCompactParams))]
[JsonSerializable(typeof(SessionUncompactParams))]
[JsonSerializable(typeof(SessionContextResult))]
[JsonSerializable(typeof(CompactResult))]
[JsonSerializable(typeof(UncompactResult))]
[JsonSerializable(typeof(PruneResult))]
[JsonSerializable(typeof(ClientSummarizeParams))]
[JsonSerializable(typeof(ClientSummarizeResult))]
public sealed partial class ProtocolJsonContext : JsonSerializerContext;
