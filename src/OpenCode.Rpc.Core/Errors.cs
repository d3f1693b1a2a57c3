namespace OpenCode.Rpc.Core;

/// <summary>What went wrong, independent of any wire protocol. The RPC layer maps each kind to one error
/// code in one place; the CLI maps it to an exit code.</summary>
public enum ErrorKind
{
    InvalidInput,
    SessionNotFound,
    MessageNotFound,
    PartNotFound,
    StoreCorrupt,
    Conflict,
    LimitExceeded,
    SnapshotUnavailable,
    RevertConflict,
    PathOutsideProject,
    Unsupported,
    ShareNotFound,
    FetchFailed,
    CompactionNoProgress,
    SummarizerFailed,
    ShareDisabled,
}

/// <summary>Base of every error the core throws on purpose. <see cref="Exception.Message"/> is a sentence a
/// person understands; it never carries a stack trace or an internal type name.</summary>
public class OpenCodeException(ErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public ErrorKind Kind { get; } = kind;

    /// <summary>Structured details that go to the client as error data (field, reason, path, files …).</summary>
    public virtual IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?>();
}

/// <summary>Bad input from the caller. <see cref="Field"/> names it as a dotted path (<c>info.time.created</c>).</summary>
public sealed class InvalidInputException(string field, string reason, string? message = null)
    : OpenCodeException(ErrorKind.InvalidInput, message ?? $"Invalid {field}: {reason}.")
{
    public string Field { get; } = field;

    public string Reason { get; } = reason;

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["field"] = Field, ["reason"] = Reason };
}

public sealed class NotFoundException : OpenCodeException
{
    private NotFoundException(ErrorKind kind, string what, string id)
        : base(kind, $"{what} not found: {id}")
    {
        Id = id;
    }

    public string Id { get; }

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["id"] = Id };

    // The session text matches OpenCode's own ("Session not found: <id>") so scripts that grep for it keep working.
    public static NotFoundException ForSession(string id) => new(ErrorKind.SessionNotFound, "Session", id);

    public static NotFoundException ForMessage(string id) => new(ErrorKind.MessageNotFound, "Message", id);

    public static NotFoundException ForPart(string id) => new(ErrorKind.PartNotFound, "Part", id);
}

/// <summary>A store file exists but cannot be read as what it should be. Names the file.</summary>
public sealed class StoreCorruptException(string path, string reason, Exception? inner = null)
    : OpenCodeException(ErrorKind.StoreCorrupt, $"The store file {path} is unreadable: {reason}.", inner)
{
    public string Path { get; } = path;

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["path"] = Path };
}
