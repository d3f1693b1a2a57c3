using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using static OpenCode.Rpc.Core.Compaction.ContextBuilder;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>How to compact.</summary>
/// <param name="Auto">Recorded in the compaction part, as OpenCode does (<c>auto</c>).</param>
/// <param name="Overflow">The compaction answers a provider overflow error (recorded as <c>overflow: true</c>).</param>
/// <param name="Summarizer">Overrides the configured summarizer for this call.</param>
public sealed record CompactOptions(bool Auto = false, bool Overflow = false, SummarizerKind? Summarizer = null, IProgress<string>? Progress = null);

/// <summary>What a compaction wrote.</summary>
public sealed record CompactionOutcome(
    string SessionID,
    string CompactionMessageID,
    string SummaryMessageID,
    string? TailStartID,
    long TokensBefore,
    long TokensAfter,
    SummarizerKind Summarizer,
    string Summary,
    bool Auto);

/// <summary>What a prune marked. <see cref="Applied"/> is false when the prunable total stayed under
/// PRUNE_MINIMUM, so nothing was written.</summary>
public sealed record PruneOutcome(IReadOnlyList<string> PartIDs, long PrunedTokens, long ScannedTokens, bool Applied);

/// <summary>Summary plus tail would not be smaller than what they replace. Nothing was written.</summary>
public sealed class CompactionNoProgressException(long before, long after, string reason)
    : OpenCodeException(ErrorKind.CompactionNoProgress, $"Compaction would not shrink the context: {reason} ({before} tokens now, {after} after). Nothing was changed.")
{
    public long TokensBefore { get; } = before;

    public long TokensAfter { get; } = after;

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["tokensBefore"] = TokensBefore, ["tokensAfter"] = TokensAfter };
}

/// <summary>
/// Compaction as OpenCode does it (reference §6), but without losing anything: the compaction request and the
/// summary are two new messages; every earlier message and part stays in the store, <c>message/list</c> still
/// returns them, and <see cref="UncompactAsync"/> removes the pair so the full context comes back. A compaction
/// that would not shrink the context fails (<see cref="CompactionNoProgressException"/>) instead of looping, and
/// automatic compaction happens only when config allows it, at most once per assistant message.
/// </summary>
public sealed class CompactionService : IMessageWrittenHook
{
    public const long PruneMinimum = 20_000;
    public const long PruneProtect = 40_000;
    public static readonly IReadOnlySet<string> PruneProtectedTools = new HashSet<string>(StringComparer.Ordinal) { "skill" };

    private readonly SessionStore store;
    private readonly Func<ProjectInfo> project;
    private readonly ConfigLocations locations;
    private readonly Func<string, string?> env;
    private readonly Func<ISummarizer?> clientSummarizer;
    private readonly Action<string> log;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> gates = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> autoAttempted = new(StringComparer.Ordinal);
    private readonly MessageReadCache cache = new();

    public CompactionService(
        SessionStore store,
        Func<ProjectInfo> project,
        ConfigLocations locations,
        Func<string, string?>? env = null,
        Func<ISummarizer?>? clientSummarizer = null,
        Action<string>? log = null)
    {
        this.store = store;
        this.project = project;
        this.locations = locations;
        this.env = env ?? Environment.GetEnvironmentVariable;
        this.clientSummarizer = clientSummarizer ?? (() => null);
        this.log = log ?? (_ => { });
    }

    /// <summary>The store event (OpenCode's bus event) sent when an automatic compaction fails.</summary>
    public const string SessionErrorEvent = "session.error";

    /// <summary>Raised after an automatic compaction, or when one was skipped or failed (with the reason).</summary>
    public event Action<string, CompactionOutcome?, string?>? AutoCompaction;

    public OpenCodeConfig LoadConfig() => LoadConfig(project());

    private OpenCodeConfig LoadConfig(ProjectInfo p)
    {
        var config = OpenCodeConfig.Load(locations, p.Directory, p.IsGit ? p.Worktree : null);
        recentConfig = new RecentRead(config, p.Directory, Environment.TickCount64);
        return config;
    }

    /// <summary>How long the check after each assistant message write reuses the config it last read.</summary>
    public static readonly TimeSpan ConfigReuse = TimeSpan.FromSeconds(1);

    private volatile RecentRead? recentConfig; // one reference: threads never see half of it

    private sealed record RecentRead(OpenCodeConfig Config, string Directory, long At);

    /// <summary>The config for the check that follows every assistant message write (an agent writes several per
    /// turn): read again at most once a <see cref="ConfigReuse"/>, since reading it is a dozen file probes and a parse,
    /// on the write's path. Explicit requests (compact, prune, context) read it afresh.</summary>
    private OpenCodeConfig RecentConfig()
    {
        var p = project();
        return recentConfig is { } r && r.Directory == p.Directory && Environment.TickCount64 - r.At < ConfigReuse.TotalMilliseconds
            ? r.Config
            : LoadConfig(p);
    }

    public CompactionSettings Settings(OpenCodeConfig config) => CompactionSettings.From(config, env);

    /// <summary>OpenCode's isOverflow (reference §6.1). Always false when automatic compaction is off or the
    /// model's context size is unknown or 0.</summary>
    public static bool IsOverflow(JsonObject? tokens, ModelLimits? limits, CompactionSettings settings)
    {
        if (!settings.Auto || limits is null || limits.Context == 0 || tokens is null)
        {
            return false;
        }

        return Count(tokens) >= limits.Usable(settings);
    }

    /// <summary><c>tokens.total</c>, else input + output + cache.read + cache.write.</summary>
    public static long Count(JsonObject tokens)
    {
        long total = Num(tokens["total"]);
        return total > 0 ? total : Num(tokens["input"]) + Num(tokens["output"]) + Num(tokens["cache"]?["read"]) + Num(tokens["cache"]?["write"]);
    }

    /// <summary>The model-visible context now.</summary>
    public ModelContext Context(string sessionId) => ContextBuilder.Build(sessionId, cache.ListMessages(store, sessionId), cache.Convert);

    // ------------------------------------------------------------------ compact

    public async Task<CompactionOutcome> CompactAsync(string sessionId, CompactOptions options, CancellationToken ct)
    {
        var gate = gates.GetOrAdd(sessionId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await CompactLockedAsync(sessionId, options, ct).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<CompactionOutcome> CompactLockedAsync(string sessionId, CompactOptions options, CancellationToken ct)
    {
        var config = LoadConfig();
        var settings = Settings(config);
        var all = cache.ListMessages(store, sessionId);
        var context = ContextBuilder.Build(sessionId, all, cache.Convert);
        var visible = context.Messages;
        var (providerId, modelId) = ModelOf(all);
        var limits = ModelLimits.Resolve(config, providerId, modelId);
        long usable = limits?.Usable(settings) ?? 0;
        int budget = settings.TailBudget(usable);

        // The retained tail: the last tail_turns user turns (of the previous tail and what came after the summary in
        // force), within budget, and never the whole conversation (something must be left to summarize). Compacting
        // again with nothing new keeps the same tail, so it finds nothing to summarize instead of looping.
        var userStarts = Enumerable.Range(0, visible.Count).Where(i => visible[i].Source is "message" or "tail" && visible[i].Role == "user").ToList();
        int start = visible.Count;
        for (int k = Math.Min(settings.TailTurns, userStarts.Count); k >= 1; k--)
        {
            int s = userStarts[^k];
            if (s > 0 && visible.Skip(s).Sum(m => (long)m.Tokens) <= budget)
            {
                start = s;
                break;
            }
        }

        var head = visible.Take(start).ToList();
        var tail = visible.Skip(start).ToList();
        long before = context.Total;
        long tailTokens = tail.Sum(m => (long)m.Tokens);
        if (!head.Any(m => m.Source is "message" or "tail"))
        {
            throw new CompactionNoProgressException(before, before, "there is nothing new to summarize");
        }

        string? tailStartId = tail.Count > 0 ? tail[0].MessageID : null;
        // The offline summarizer reads the whole history, tail included: OpenCode 1.1.65 ignores tail_start_id and
        // shows its model only the summary, so the summary must stand on its own (the next request, every file).
        var history = all.Where(m => !IsCompactionRequest(m) && !IsSummary(m.Info)).ToList();
        string? previous = visible.FirstOrDefault(m => m.Source == "summary") is { } prev ? string.Join("\n", prev.Content.Where(c => c.Type == "text").Select(c => c.Text)) : null;

        var kind = options.Summarizer ?? settings.Summarizer;
        var summarizer = Pick(kind, config, settings, providerId, modelId);
        var request = new SummaryRequest(sessionId, head, history, previous, CompactionPrompt.Build(previous), providerId, modelId, options.Progress);
        options.Progress?.Report($"Compacting {head.Count} message(s), keeping {tail.Count}");
        string summary = (await summarizer.SummarizeAsync(request, ct).ConfigureAwait(false)).Trim();
        ct.ThrowIfCancellationRequested();

        long after = TokenCounter.Count(ModelContext.CompactionQuestion) + TokenCounter.Count(summary) + tailTokens;
        if (after >= before)
        {
            throw new CompactionNoProgressException(before, after, "the summary and the retained tail are not smaller than what they replace");
        }

        var written = await WritePairAsync(sessionId, all, summary, summarizer.Model, options, tailStartId, ct).ConfigureAwait(false);
        store.Publish("session.compacted", new JsonObject { ["sessionID"] = sessionId });
        options.Progress?.Report("Compaction written");
        return new CompactionOutcome(sessionId, written.Request, written.Summary, tailStartId, before, after, summarizer.Kind, summary, options.Auto);
    }

    private ISummarizer Pick(SummarizerKind kind, OpenCodeConfig config, CompactionSettings settings, string? providerId, string? modelId)
    {
        switch (kind)
        {
            case SummarizerKind.Model:
                string? spec = settings.CompactionModel ?? (providerId is not null && modelId is not null ? providerId + "/" + modelId : null);
                if (spec is null || spec.Split('/', 2) is not [var p, var m])
                {
                    throw new SummarizerFailedException("The model summarizer needs agent.compaction.model (\"provider/model\") in opencode.json, or a session with a model.");
                }

                return new ModelSummarizer(ModelEndpoint.Resolve(config, p, m, env));
            case SummarizerKind.Client:
                return clientSummarizer() ?? throw new SummarizerFailedException("The client summarizer needs a connected client.");
            default:
                return new OfflineSummarizer();
        }
    }

    /// <summary>Writes the compaction request and its summary in OpenCode's shapes (reference §6.2–6.3). The summary
    /// gets <c>finish</c> last: until then filterCompacted ignores the pair, so a crash midway changes nothing the
    /// model sees.</summary>
    private async Task<(string Request, string Summary)> WritePairAsync(
        string sessionId, IReadOnlyList<MessageWithParts> all, string summary, (string ProviderID, string ModelID)? summaryModel,
        CompactOptions options, string? tailStartId, CancellationToken ct)
    {
        var p = project();
        var lastUser = all.LastOrDefault(m => Role(m.Info) == "user" && !IsCompactionRequest(m))?.Info;
        var (providerId, modelId) = ModelOf(all);
        providerId ??= "opencode-rpc";
        modelId ??= "offline";
        var userModel = lastUser?["model"] is JsonObject um ? (JsonObject)um.DeepClone() : new JsonObject { ["providerID"] = providerId, ["modelID"] = modelId };
        string agent = Str(lastUser?["agent"]) ?? "build";

        string requestId = Identifier.Ascending(Identifier.Message);
        var request = new JsonObject
        {
            ["id"] = requestId,
            ["role"] = "user",
            ["model"] = userModel,
            ["sessionID"] = sessionId,
            ["agent"] = agent,
            ["time"] = new JsonObject { ["created"] = store.Now },
        };
        await store.UpdateMessageAsync(request, ct).ConfigureAwait(false);
        var part = new JsonObject
        {
            ["id"] = Identifier.Ascending(Identifier.Part),
            ["messageID"] = requestId,
            ["sessionID"] = sessionId,
            ["type"] = "compaction",
            ["auto"] = options.Auto,
        };
        if (options.Overflow)
        {
            part["overflow"] = true;
        }

        if (tailStartId is not null)
        {
            part["tail_start_id"] = tailStartId;
        }

        await store.UpdatePartAsync(part, null, CancellationToken.None).ConfigureAwait(false);

        string summaryId = Identifier.Ascending(Identifier.Message);
        long created = store.Now;
        var assistant = new JsonObject
        {
            ["id"] = summaryId,
            ["role"] = "assistant",
            ["parentID"] = requestId,
            ["sessionID"] = sessionId,
            ["mode"] = "compaction",
            ["agent"] = "compaction",
            ["summary"] = true,
            ["path"] = new JsonObject { ["cwd"] = p.Directory, ["root"] = p.Worktree },
            ["cost"] = 0,
            ["tokens"] = new JsonObject { ["output"] = 0, ["input"] = 0, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 } },
            ["modelID"] = summaryModel?.ModelID ?? modelId,
            ["providerID"] = summaryModel?.ProviderID ?? providerId,
            ["time"] = new JsonObject { ["created"] = created },
        };
        // From here on the pair is written whatever happens to the caller: a half-written pair is harmless, but
        // a finished summary without its finish would need a second compaction to be seen.
        await store.UpdateMessageAsync(assistant, CancellationToken.None).ConfigureAwait(false);
        long now = store.Now;
        await store.UpdatePartAsync(new JsonObject
        {
            ["id"] = Identifier.Ascending(Identifier.Part),
            ["sessionID"] = sessionId,
            ["messageID"] = summaryId,
            ["type"] = "text",
            ["text"] = summary,
            ["time"] = new JsonObject { ["start"] = now, ["end"] = now },
        }, null, CancellationToken.None).ConfigureAwait(false);
        assistant["time"] = new JsonObject { ["created"] = created, ["completed"] = now };
        assistant["tokens"]!["output"] = TokenCounter.Count(summary);
        assistant["finish"] = "stop";
        await store.UpdateMessageAsync(assistant, CancellationToken.None).ConfigureAwait(false);
        return (requestId, summaryId);
    }

    // ------------------------------------------------------------------ uncompact

    /// <summary>Removes one compaction pair: <paramref name="messageId"/> is the compaction request or its summary.
    /// The messages it summarized were never touched, so the context they made comes back.</summary>
    public async Task<IReadOnlyList<string>> UncompactAsync(string sessionId, string messageId, CancellationToken ct)
    {
        SessionStore.CheckId(messageId, Identifier.Message, "messageID");
        var gate = gates.GetOrAdd(sessionId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var all = cache.ListMessages(store, sessionId);
            var target = all.FirstOrDefault(m => Id(m.Info) == messageId) ?? throw NotFoundException.ForMessage(messageId);
            string requestId = IsSummary(target.Info) ? Str(target.Info["parentID"]) ?? "" : messageId;
            var request = all.FirstOrDefault(m => Id(m.Info) == requestId);
            if (request is null || !IsCompactionRequest(request))
            {
                throw new InvalidInputException("messageID", "is not a compaction request or a compaction summary");
            }

            var removed = new List<string>();
            // Summaries first: without them the request is no longer a completed compaction, so the switch back to
            // the full context happens at the first removal and a crash leaves no half-state the model would see.
            foreach (var s in all.Where(m => IsSummary(m.Info) && Str(m.Info["parentID"]) == requestId))
            {
                await store.RemoveMessageAsync(sessionId, Id(s.Info), ct).ConfigureAwait(false);
                removed.Add(Id(s.Info));
            }

            await store.RemoveMessageAsync(sessionId, requestId, CancellationToken.None).ConfigureAwait(false);
            removed.Add(requestId);
            return removed;
        }
        finally
        {
            gate.Release();
        }
    }

    // ------------------------------------------------------------------ prune

    /// <summary>OpenCode's prune (reference §6.5): walking back from the newest message, past the two newest user
    /// turns, stopping at a summary or an output already pruned, completed tool outputs beyond the newest 40k
    /// tokens are marked <c>state.time.compacted</c>, if they add up to more than 20k. Protected tools are skipped.</summary>
    public async Task<PruneOutcome> PruneAsync(string sessionId, CancellationToken ct)
    {
        var gate = gates.GetOrAdd(sessionId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var msgs = cache.ListMessages(store, sessionId);
            long total = 0;
            long pruned = 0;
            var marked = new List<JsonObject>();
            int turns = 0;
            for (int i = msgs.Count - 1; i >= 0; i--)
            {
                var m = msgs[i];
                if (Role(m.Info) == "user")
                {
                    turns++;
                }

                if (turns < 2)
                {
                    continue;
                }

                if (IsSummary(m.Info))
                {
                    break;
                }

                bool stop = false;
                for (int j = m.Parts.Count - 1; j >= 0 && !stop; j--)
                {
                    var part = m.Parts[j];
                    if (Str(part["type"]) != "tool" || part["state"] is not JsonObject state || Str(state["status"]) != "completed")
                    {
                        continue;
                    }

                    if (PruneProtectedTools.Contains(Str(part["tool"]) ?? ""))
                    {
                        continue;
                    }

                    if (state["time"]?["compacted"] is not null)
                    {
                        stop = true;
                        break;
                    }

                    long estimate = TokenCounter.Count(Str(state["output"]));
                    total += estimate;
                    if (total > PruneProtect)
                    {
                        pruned += estimate;
                        marked.Add(part);
                    }
                }

                if (stop)
                {
                    break;
                }
            }

            bool apply = pruned > PruneMinimum;
            if (apply)
            {
                long now = store.Now;
                foreach (var part in marked)
                {
                    var copy = (JsonObject)part.DeepClone();
                    var state = (JsonObject)copy["state"]!;
                    var time = state["time"] as JsonObject ?? new JsonObject();
                    time["compacted"] = now;
                    state["time"] = time;
                    await store.UpdatePartAsync(copy, null, ct).ConfigureAwait(false);
                }
            }

            return new PruneOutcome(marked.Select(p => Str(p["id"]) ?? "").ToList(), pruned, total, apply);
        }
        finally
        {
            gate.Release();
        }
    }

    // ------------------------------------------------------------------ automatic

    /// <summary>The check OpenCode makes after each finished step: call it from <c>step/finish</c> with the
    /// assistant message the step belongs to (after its tokens are written). Compacts when the message overflows
    /// the model's usable context and config allows automatic compaction; prunes when config allows pruning.
    /// Returns the compaction, or null when none happened.</summary>
    public async Task<CompactionOutcome?> AfterStepFinishAsync(string sessionId, string messageId, CancellationToken ct)
    {
        var m = store.GetMessage(sessionId, messageId);
        return await CheckAsync(m.Info, finished: true, ct).ConfigureAwait(false);
    }

    /// <summary>The store hook: an assistant message written with tokens (or with a provider overflow error).</summary>
    public async Task AfterMessageWrittenAsync(JsonObject info, CancellationToken ct)
    {
        bool finished = Str(info["finish"]) is { } f && f != "tool-calls" || info["time"]?["completed"] is not null;
        _ = await CheckAsync(info, finished, ct).ConfigureAwait(false);
    }

    private async Task<CompactionOutcome?> CheckAsync(JsonObject info, bool finished, CancellationToken ct)
    {
        if (Role(info) != "assistant" || IsSummary(info) || Str(info["sessionID"]) is not { } sessionId)
        {
            return null;
        }

        var config = RecentConfig();
        var settings = Settings(config);
        bool overflowError = Str(info["error"]?["name"]) == "ContextOverflowError";
        bool overflow = settings.Auto && (overflowError
            || IsOverflow(info["tokens"] as JsonObject, ModelLimits.Resolve(config, Str(info["providerID"]), Str(info["modelID"])), settings));
        CompactionOutcome? outcome = null;
        if (overflow)
        {
            outcome = await AutoCompactAsync(sessionId, Id(info), overflowError, ct).ConfigureAwait(false);
        }

        if (outcome is null && finished && settings.Prune)
        {
            await PruneAsync(sessionId, ct).ConfigureAwait(false);
        }

        return outcome;
    }

    private async Task<CompactionOutcome?> AutoCompactAsync(string sessionId, string messageId, bool overflowError, CancellationToken ct)
    {
        // Once per assistant message: a message rewritten after its compaction (time.completed, a late part) must
        // not compact again, and a compaction that made no progress must not be retried in a loop.
        if (!autoAttempted.TryAdd(sessionId + "/" + messageId, 0))
        {
            return null;
        }

        var all = cache.ListMessages(store, sessionId);
        int boundary = Boundary(all);
        int index = IndexOf(all, messageId);
        if (index < 0 || index < boundary)
        {
            return null; // already behind the compaction in force
        }

        try
        {
            var outcome = await CompactAsync(sessionId, new CompactOptions(Auto: true, Overflow: overflowError), ct).ConfigureAwait(false);
            AutoCompaction?.Invoke(sessionId, outcome, null);
            return outcome;
        }
        catch (OpenCodeException ex) when (ex.Kind is ErrorKind.CompactionNoProgress or ErrorKind.SummarizerFailed)
        {
            log($"automatic compaction of {sessionId} skipped: {ex.Message}");
            // The write that triggered it succeeded, so its answer cannot carry this: the client hears it as OpenCode's
            // session.error, with OpenCode's error shape, and can show it (the session is still over its context).
            store.Publish(SessionErrorEvent, new JsonObject
            {
                ["sessionID"] = sessionId,
                ["error"] = new JsonObject
                {
                    ["name"] = "UnknownError",
                    ["data"] = new JsonObject { ["message"] = $"Automatic compaction failed: {ex.Message}" },
                },
            });
            AutoCompaction?.Invoke(sessionId, null, ex.Message);
            return null;
        }
    }

    private static int IndexOf(IReadOnlyList<MessageWithParts> all, string messageId)
    {
        for (int i = 0; i < all.Count; i++)
        {
            if (Id(all[i].Info) == messageId)
            {
                return i;
            }
        }

        return -1;
    }

    private static long Num(JsonNode? n) => (long)(Number(n) ?? 0);
}
