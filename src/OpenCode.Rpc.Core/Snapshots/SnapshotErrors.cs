namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>A snapshot that an operation needs is missing or unreadable, or the snapshot store cannot work.
/// Undo never reports success in that case.</summary>
public sealed class SnapshotUnavailableException(string message, Exception? inner = null, IReadOnlyList<string>? missing = null)
    : OpenCodeException(ErrorKind.SnapshotUnavailable, message, inner)
{
    public IReadOnlyList<string> Missing { get; } = missing ?? [];

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["missing"] = Missing };
}

/// <summary>Files that would be overwritten or deleted although they changed after the AI's step (the user's own
/// edits). Nothing was changed. <c>force: true</c> overrides.</summary>
public sealed class RevertConflictException(IReadOnlyList<string> files)
    : OpenCodeException(ErrorKind.RevertConflict,
        $"Nothing was reverted: {files.Count} file(s) changed after the AI's step and would be overwritten: {string.Join(", ", files.Take(10))}{(files.Count > 10 ? ", …" : string.Empty)}. Pass force: true to revert them anyway.")
{
    public IReadOnlyList<string> Files { get; } = files;

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["files"] = Files };
}

/// <summary>A path outside the project worktree (through <c>..</c>, an absolute path elsewhere, or a symlinked
/// folder). Such a path is never read or written.</summary>
public sealed class PathOutsideProjectException(IReadOnlyList<string> paths)
    : OpenCodeException(ErrorKind.PathOutsideProject,
        $"Nothing was reverted: {paths.Count} path(s) lie outside the project and are never touched: {string.Join(", ", paths.Take(10))}. Pass force: true to revert the other files and skip these.")
{
    public IReadOnlyList<string> Paths { get; } = paths;

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["files"] = Paths };
}

/// <summary>A non-git project too large to snapshot (a home directory, say).</summary>
public sealed class SnapshotTooLargeException(string message)
    : OpenCodeException(ErrorKind.LimitExceeded, message);
