using System.Text.Json;

namespace OpenCode.Rpc.Server;

/// <summary><c>session/export</c> params.</summary>
public sealed record SessionExportParams
{
    public required string SessionID { get; init; }

    /// <summary><c>json</c> (default) or <c>markdown</c>.</summary>
    public string? Format { get; init; }

    /// <summary>JSON only: redact as <c>opencode export --sanitize</c>.</summary>
    public bool? Sanitize { get; init; }

    /// <summary>Markdown only: include reasoning parts.</summary>
    public bool? Thinking { get; init; }

    /// <summary>Markdown only: include tool input, output and error.</summary>
    public bool? ToolDetails { get; init; }

    /// <summary>Markdown only: agent, model and duration in assistant headers.</summary>
    public bool? AssistantMetadata { get; init; }
}

/// <summary>The export text and the file name OpenCode would give it.</summary>
public sealed record SessionExportResult(string Content, string Filename);

/// <summary><c>session/import</c> params: exactly one of a file path, a share URL or the export JSON itself.</summary>
public sealed record SessionImportParams
{
    /// <summary>An export file; relative paths are resolved against the project directory.</summary>
    public string? Path { get; init; }

    /// <summary>A share link, <c>https://host/share/&lt;slug&gt;</c>.</summary>
    public string? Url { get; init; }

    /// <summary>The export JSON text.</summary>
    public string? Content { get; init; }
}

/// <summary>The imported session's id and the counts of what was imported.</summary>
public sealed record SessionImportResult(string SessionID, int Session, int Messages, int Parts);

/// <summary><c>session/importDatabase</c> params.</summary>
public sealed record SessionImportDatabaseParams
{
    /// <summary>The database; default <c>&lt;data&gt;/opencode.db</c> (or <c>$OPENCODE_DB</c>).</summary>
    public string? Path { get; init; }

    /// <summary>LSP work-done token: when given, <c>$/progress</c> notifications report the import.</summary>
    public JsonElement? WorkDoneToken { get; init; }
}

public sealed record SessionImportSkip(string SessionID, string Reason);

public sealed record SessionImportDatabaseResult(int Sessions, int Messages, int Parts, IReadOnlyList<SessionImportSkip> Skipped);

// The [JsonSerializable] entries for these records are in Protocol.cs: the System.Text.Json source generator
// runs per declaration, so attributes on a second partial declaration of the context break the build (CS8785).
