using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Server;

/// <summary><c>session/revert</c>: revert the session to just before a message (or a part of it).</summary>
public sealed record RevertParams
{
    public required string SessionID { get; init; }

    public required string MessageID { get; init; }

    public string? PartID { get; init; }

    /// <summary><c>both</c> (default), <c>conversation</c> or <c>files</c>.</summary>
    public string? Scope { get; init; }

    /// <summary>Report what would change, change nothing.</summary>
    public bool? DryRun { get; init; }

    /// <summary>Overwrite files the user changed after the AI's step.</summary>
    public bool? Force { get; init; }
}

/// <summary><c>session/unrevert</c>, <c>session/undo</c>, <c>session/redo</c>.</summary>
public sealed record RevertSessionParams
{
    public required string SessionID { get; init; }

    public bool? DryRun { get; init; }

    public bool? Force { get; init; }
}

/// <summary><c>session/diff</c>.</summary>
public sealed record SessionDiffParams
{
    public required string SessionID { get; init; }

    public string? MessageID { get; init; }
}

/// <summary><c>step/start</c>.</summary>
public sealed record StepStartParams
{
    public required string SessionID { get; init; }

    public required string MessageID { get; init; }
}

/// <summary><c>step/finish</c>.</summary>
public sealed record StepFinishParams
{
    public required string SessionID { get; init; }

    public required string MessageID { get; init; }

    /// <summary>The AI SDK finish reason: <c>stop</c>, <c>tool-calls</c>, <c>length</c>, …</summary>
    public required string Reason { get; init; }

    public double? Cost { get; init; }

    /// <summary><c>{input, output, reasoning, cache:{read, write}, total?}</c>; zeros when absent.</summary>
    public JsonObject? Tokens { get; init; }
}

/// <summary>A file a revert changed (or would change): <c>modified</c>, <c>added</c> or <c>deleted</c>. Absolute path.</summary>
public sealed record RevertFileResult(string Path, string Status);

/// <summary>The user message's text and file parts, to pre-fill the prompt after undo/redo.</summary>
public sealed record PromptResult(string MessageID, string Text, IReadOnlyList<JsonObject> Parts);

/// <summary>The result of session/revert, unrevert, undo and redo.</summary>
/// <param name="Session">The session after the change.</param>
/// <param name="Files">Files changed (or, with dryRun, that would change).</param>
/// <param name="FilesReverted">False when only the conversation was reverted; <paramref name="Reason"/> says why.</param>
/// <param name="Reason">Why files were not reverted, for a person.</param>
/// <param name="DryRun">True when nothing was changed.</param>
/// <param name="Skipped">Paths outside the project named by patches, never touched (only with force).</param>
/// <param name="Prompt">undo/redo: what to pre-fill the prompt with; null after a redo that unreverted.</param>
public sealed record RevertResult(
    JsonObject Session,
    IReadOnlyList<RevertFileResult> Files,
    bool FilesReverted,
    string? Reason,
    bool DryRun,
    IReadOnlyList<string> Skipped,
    PromptResult? Prompt);

public sealed record TrackResult(string Hash);

/// <summary><c>step/finish</c> result: the step-finish part and, when files changed, the patch part.</summary>
public sealed record StepFinishResult(JsonObject Finish, JsonObject? Patch);
