using System.Text;
using OpenCode.Rpc.Core.Sessions;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>What a summarizer gets.</summary>
/// <param name="Head">The model-visible messages being replaced (what an LLM summarizer reads).</param>
/// <param name="History">Every stored message, compaction pairs left out, oldest first (what the offline summarizer
/// extracts from, so facts from before an earlier compaction, and the tail's last request, are never lost).</param>
/// <param name="PreviousSummary">The summary in force before this compaction, if any.</param>
/// <param name="Prompt">OpenCode's compaction prompt, ending the conversation for an LLM.</param>
public sealed record SummaryRequest(
    string SessionID,
    IReadOnlyList<ContextMessage> Head,
    IReadOnlyList<MessageWithParts> History,
    string? PreviousSummary,
    string Prompt,
    string? ProviderID,
    string? ModelID,
    IProgress<string>? Progress);

/// <summary>Writes the summary of a conversation. One implementation per <see cref="SummarizerKind"/>.</summary>
public interface ISummarizer
{
    SummarizerKind Kind { get; }

    /// <summary>The model that wrote the summary, as (providerID, modelID); null keeps the session's model.</summary>
    (string ProviderID, string ModelID)? Model { get; }

    Task<string> SummarizeAsync(SummaryRequest request, CancellationToken ct);
}

/// <summary>OpenCode's compaction prompts (reference §6.3, newest <c>buildPrompt</c> and the compaction agent).</summary>
public static class CompactionPrompt
{
    /// <summary>The compaction agent's system prompt.</summary>
    public const string System =
        "You are a helpful AI assistant tasked with summarizing conversations.\n\n" +
        "When asked to summarize, provide a detailed but concise summary of the conversation. Focus on information that would be " +
        "helpful for continuing the conversation, including: what was done, what is currently being worked on, which files are being " +
        "modified, what needs to be done next, key user requests, constraints, or preferences that should persist, and important " +
        "technical decisions and why they were made.\n\n" +
        "Your summary should be comprehensive enough to provide context but concise enough to be quickly understood.\n\n" +
        "Do not respond to any questions in the conversation, only output the summary.";

    public const string Template =
        "## Goal\n- [single-sentence task summary]\n\n" +
        "## Constraints & Preferences\n- [user constraints, preferences, specs, or \"(none)\"]\n\n" +
        "## Progress\n### Done\n- [completed work or \"(none)\"]\n\n### In Progress\n- [current work or \"(none)\"]\n\n### Blocked\n- [blockers or \"(none)\"]\n\n" +
        "## Key Decisions\n- [decision and why, or \"(none)\"]\n\n" +
        "## Next Steps\n- [ordered next actions or \"(none)\"]\n\n" +
        "## Critical Context\n- [important technical facts, errors, open questions, or \"(none)\"]\n\n" +
        "## Relevant Files\n- [file or directory path: why it matters, or \"(none)\"]";

    private const string Rules =
        "Rules:\n- Keep every section, even when empty.\n- Use terse bullets, not prose paragraphs.\n" +
        "- Preserve exact file paths, commands, error strings, and identifiers when known.\n" +
        "- Do not mention the summary process or that context was compacted.";

    /// <summary>The final user message of a compaction request.</summary>
    public static string Build(string? previousSummary)
    {
        var sb = new StringBuilder();
        if (previousSummary is null)
        {
            sb.Append("Create a new anchored summary from the conversation history.\n\n");
        }
        else
        {
            sb.Append("Update the anchored summary below using the conversation history above. Keep what is still true, ")
              .Append("move finished work to Done, and drop what no longer matters.\n\n<previous-summary>\n")
              .Append(previousSummary).Append("\n</previous-summary>\n\n");
        }

        sb.Append("Output exactly this Markdown structure and keep the section order unchanged:\n\n")
          .Append(Template).Append("\n\n").Append(Rules);
        return sb.ToString();
    }
}
