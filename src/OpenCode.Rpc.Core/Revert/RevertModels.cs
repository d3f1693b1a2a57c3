using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Core.Revert;

/// <summary>What a revert touches: the conversation, the files, or both (the default, as OpenCode).</summary>
public enum RevertScope
{
    Both,
    Conversation,
    Files,
}

/// <summary>A revert to just before <see cref="MessageId"/> (or <see cref="PartId"/> within it).</summary>
public sealed record RevertRequest(string SessionId, string MessageId, string? PartId = null, RevertScope Scope = RevertScope.Both, bool DryRun = false, bool Force = false);

/// <summary>A file the revert changes (or, in a dry run, would change). <see cref="Status"/> says what happens to it:
/// <c>modified</c>, <c>added</c> (brought back) or <c>deleted</c> (removed).</summary>
public sealed record RevertFile(string Path, string Status);

/// <summary>What to pre-fill the prompt with after undo/redo: the user message's own text and file parts.</summary>
public sealed record PromptPrefill(string MessageId, string Text, IReadOnlyList<JsonObject> Parts);

/// <summary>The result of revert, unrevert, undo and redo.</summary>
/// <param name="Session">The session after the change (unchanged in a dry run).</param>
/// <param name="Files">The files changed, or that would be changed in a dry run.</param>
/// <param name="FilesReverted">False when only the conversation was reverted; <see cref="Reason"/> says why.</param>
/// <param name="Skipped">Paths named by patches that lie outside the project; never touched (only with force).</param>
public sealed record RevertOutcome(
    JsonObject Session,
    IReadOnlyList<RevertFile> Files,
    bool FilesReverted,
    string? Reason,
    bool DryRun,
    IReadOnlyList<string> Skipped,
    PromptPrefill? Prompt = null);
