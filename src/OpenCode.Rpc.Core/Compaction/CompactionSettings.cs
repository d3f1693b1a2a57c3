using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Config;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>Which summarizer writes the summary.</summary>
public enum SummarizerKind
{
    /// <summary>Built-in, offline, deterministic extractive summary (the default).</summary>
    Offline,

    /// <summary>An OpenAI-compatible chat endpoint from opencode.json's provider config.</summary>
    Model,

    /// <summary>The client's own model, asked with the server-to-client request <c>compaction/summarize</c>.</summary>
    Client,
}

/// <summary>
/// OpenCode's <c>compaction</c> config (reference §11, §6) plus the environment overrides, read strictly:
/// <c>auto: false</c> or <c>OPENCODE_DISABLE_AUTOCOMPACT</c> means nothing compacts by itself, ever.
/// </summary>
/// <param name="Auto">Automatic compaction on overflow (default true).</param>
/// <param name="Prune">Automatic pruning of old tool outputs. Default false, as OpenCode since 1.14.19.</param>
/// <param name="Reserved">Tokens kept free for the next answer (<c>compaction.reserved</c>).</param>
/// <param name="TailTurns">User turns kept verbatim after a compaction (<c>compaction.tail_turns</c>, default 2).</param>
/// <param name="PreserveRecentTokens">Token budget of that tail (<c>compaction.preserve_recent_tokens</c>).</param>
/// <param name="Summarizer">The summarizer chosen by config.</param>
/// <param name="CompactionModel"><c>agent.compaction.model</c> as <c>provider/model</c>, if set.</param>
public sealed record CompactionSettings(
    bool Auto,
    bool Prune,
    int? Reserved,
    int TailTurns,
    int? PreserveRecentTokens,
    SummarizerKind Summarizer,
    string? CompactionModel)
{
    public const string DisableAutocompactEnv = "OPENCODE_DISABLE_AUTOCOMPACT";
    public const string DisablePruneEnv = "OPENCODE_DISABLE_PRUNE";

    /// <summary>Our own switch (OpenCode's config schema is strict, so our keys cannot live in opencode.json):
    /// <c>offline</c>, <c>model</c> or <c>client</c>.</summary>
    public const string SummarizerEnv = "OPENCODE_RPC_SUMMARIZER";

    public static CompactionSettings Default { get; } = new(true, false, null, 2, null, SummarizerKind.Offline, null);

    public static CompactionSettings From(OpenCodeConfig config, Func<string, string?> env)
    {
        var c = config.Raw["compaction"] as JsonObject;
        bool auto = Bool(c?["auto"]) ?? true;
        bool prune = Bool(c?["prune"]) ?? false;
        if (Truthy(env(DisableAutocompactEnv)))
        {
            auto = false;
        }

        if (Truthy(env(DisablePruneEnv)))
        {
            prune = false;
        }

        string? compactionModel = config.Raw["agent"]?["compaction"]?["model"] is JsonValue mv && mv.TryGetValue(out string? ms) && !string.IsNullOrWhiteSpace(ms) ? ms : null;
        var kind = ParseKind(env(SummarizerEnv), SummarizerEnv)
            ?? (compactionModel is not null && ModelEndpoint.HasBaseUrl(config, compactionModel.Split('/', 2)[0]) ? SummarizerKind.Model : SummarizerKind.Offline);
        return new CompactionSettings(
            auto,
            prune,
            Int(c?["reserved"], "compaction.reserved", 0),
            Int(c?["tail_turns"], "compaction.tail_turns", 0) ?? 2,
            Int(c?["preserve_recent_tokens"], "compaction.preserve_recent_tokens", 0),
            kind,
            compactionModel);
    }

    /// <summary>Parses a summarizer name; null for null. <paramref name="field"/> names where it came from.</summary>
    public static SummarizerKind? ParseKind(string? value, string field) => value switch
    {
        null or "" => null,
        "offline" => SummarizerKind.Offline,
        "model" => SummarizerKind.Model,
        "client" => SummarizerKind.Client,
        _ => throw new InvalidInputException(field, "must be \"offline\", \"model\" or \"client\""),
    };

    /// <summary>The retained tail's budget: the configured one, else OpenCode's min(8000, max(2000, usable/4)).</summary>
    public int TailBudget(long usable) => PreserveRecentTokens ?? (int)Math.Min(8000, Math.Max(2000, usable / 4));

    // OpenCode's Flag.truthy: "true" or "1".
    private static bool Truthy(string? v) => v is not null && (v.Equals("true", StringComparison.OrdinalIgnoreCase) || v == "1");

    private static bool? Bool(JsonNode? n) => n is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValueKind() == JsonValueKind.True : null;

    private static int? Int(JsonNode? n, string field, int min)
    {
        if (n is null)
        {
            return null;
        }

        if (ContextBuilder.Number(n) is double d && d == Math.Floor(d) && d >= min && d <= int.MaxValue)
        {
            return (int)d;
        }

        throw new InvalidInputException("config." + field, $"must be a whole number >= {min}");
    }
}

/// <summary>A model's token limits (models.dev / opencode.json <c>limit</c>).</summary>
public sealed record ModelLimits(long Context, long? Input, long Output)
{
    /// <summary>OpenCode's OUTPUT_TOKEN_MAX.</summary>
    public const long OutputTokenMax = 32_000;

    /// <summary>OpenCode's COMPACTION_BUFFER.</summary>
    public const long CompactionBuffer = 20_000;

    public long MaxOutputTokens => Output > 0 ? Math.Min(Output, OutputTokenMax) : OutputTokenMax;

    /// <summary>Tokens the conversation may use before it overflows (reference §6.1), clamped at 0.</summary>
    public long Usable(CompactionSettings s)
    {
        long reserved = s.Reserved ?? Math.Min(CompactionBuffer, MaxOutputTokens);
        long usable = Input is > 0 ? Input.Value - reserved : Context - MaxOutputTokens;
        return Math.Max(0, usable);
    }

    // A fallback for when opencode.json says nothing: common models, from models.dev (context, output).
    private static readonly Dictionary<string, ModelLimits> BuiltIn = new(StringComparer.OrdinalIgnoreCase)
    {
        ["claude-sonnet-4-5"] = new(200_000, null, 64_000),
        ["claude-sonnet-4"] = new(200_000, null, 64_000),
        ["claude-opus-4-1"] = new(200_000, null, 32_000),
        ["claude-opus-4"] = new(200_000, null, 32_000),
        ["claude-haiku-4-5"] = new(200_000, null, 64_000),
        ["claude-3-7-sonnet"] = new(200_000, null, 64_000),
        ["claude-3-5-sonnet"] = new(200_000, null, 8_192),
        ["claude-3-5-haiku"] = new(200_000, null, 8_192),
        ["gpt-5"] = new(400_000, 272_000, 128_000),
        ["gpt-5-mini"] = new(400_000, 272_000, 128_000),
        ["gpt-5-codex"] = new(400_000, 272_000, 128_000),
        ["gpt-4.1"] = new(1_047_576, null, 32_768),
        ["gpt-4.1-mini"] = new(1_047_576, null, 32_768),
        ["gpt-4o"] = new(128_000, null, 16_384),
        ["gpt-4o-mini"] = new(128_000, null, 16_384),
        ["o3"] = new(200_000, null, 100_000),
        ["o4-mini"] = new(200_000, null, 100_000),
        ["gemini-2.5-pro"] = new(1_048_576, null, 65_536),
        ["gemini-2.5-flash"] = new(1_048_576, null, 65_536),
        ["deepseek-chat"] = new(128_000, null, 8_192),
        ["deepseek-reasoner"] = new(128_000, null, 64_000),
        ["kimi-k2"] = new(131_072, null, 16_384),
        ["qwen3-coder"] = new(262_144, null, 65_536),
        ["grok-4"] = new(256_000, null, 64_000),
        ["grok-code-fast-1"] = new(256_000, null, 10_000),
    };

    /// <summary>The limits of <paramref name="providerId"/>/<paramref name="modelId"/>: opencode.json's
    /// <c>provider.&lt;id&gt;.models.&lt;id&gt;.limit</c>, else the built-in table (by model id, then by its last
    /// path segment and date-stripped name). Null when unknown: no overflow can be detected.</summary>
    public static ModelLimits? Resolve(OpenCodeConfig config, string? providerId, string? modelId)
    {
        if (modelId is null)
        {
            return null;
        }

        if (providerId is not null && config.Raw["provider"]?[providerId]?["models"]?[modelId]?["limit"] is JsonObject limit)
        {
            long context = Long(limit["context"]) ?? 0;
            long output = Long(limit["output"]) ?? 0;
            return new ModelLimits(context, Long(limit["input"]), output);
        }

        string name = modelId.Contains('/', StringComparison.Ordinal) ? modelId[(modelId.LastIndexOf('/') + 1)..] : modelId;
        if (BuiltIn.TryGetValue(name, out var known))
        {
            return known;
        }

        // "claude-sonnet-4-5-20250929" → "claude-sonnet-4-5"
        int dash = name.LastIndexOf('-');
        return dash > 0 && name[(dash + 1)..].All(char.IsAsciiDigit) && BuiltIn.TryGetValue(name[..dash], out known) ? known : null;
    }

    private static long? Long(JsonNode? n) => ContextBuilder.Number(n) is double d ? (long)d : null;
}
