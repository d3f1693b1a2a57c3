using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Snapshots;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Revert;

/// <summary>
/// Undo and redo of an AI's turns, files and conversation (reference §5.2), done so people can trust it:
/// <list type="bullet">
/// <item>Only files that the AI's recorded steps (<c>patch</c> parts) touched are restored, each to its state
/// before the first reverted step that touched it; files that did not exist then are deleted.</item>
/// <item>A file whose current content is not what the AI left (the user edited it) is never overwritten:
/// <see cref="RevertConflictException"/> lists them, unless <c>force</c>.</item>
/// <item>A missing snapshot fails loudly (<see cref="SnapshotUnavailableException"/>) before anything changes.</item>
/// <item>A path outside the worktree is never read or written.</item>
/// <item>A journal in <c>&lt;data&gt;/opencode-rpc/revert/</c> makes a revert killed midway roll back at the next start.</item>
/// </list>
/// The session lock is held for the whole operation and the shadow repo's lock inside it (always in that
/// order, so two sidecars take turns and never deadlock).
/// </summary>
public sealed class RevertService : ISessionWriteHook
{
    private readonly SessionStore store;
    private readonly Func<ProjectInfo> currentProject;
    private readonly ConfigLocations configLocations;
    private readonly SnapshotOptions snapshotOptions;
    private readonly Action<string> log;
    private readonly SemaphoreSlim recoverGate = new(1, 1);
    private bool recovered;

    public RevertService(SessionStore store, Func<ProjectInfo> currentProject, ConfigLocations configLocations, SnapshotOptions? snapshotOptions = null, Action<string>? log = null)
    {
        this.store = store;
        this.currentProject = currentProject;
        this.configLocations = configLocations;
        this.snapshotOptions = snapshotOptions ?? new SnapshotOptions();
        this.log = log ?? (_ => { });
    }

    private StoreLayout Layout => store.Layout;

    private string RevertDir => Path.Combine(Layout.SideDir, "revert");

    // ------------------------------------------------------------------ public operations

    public async Task<RevertOutcome> RevertAsync(RevertRequest r, CancellationToken ct)
    {
        SessionStore.CheckId(r.MessageId, Identifier.Message, "messageID");
        if (r.PartId is not null)
        {
            SessionStore.CheckId(r.PartId, Identifier.Part, "partID");
        }

        await RecoverAsync(ct).ConfigureAwait(false);
        using (await store.LockSessionAsync(r.SessionId, ct).ConfigureAwait(false))
        {
            var view = Load(r.SessionId);
            var point = ResolvePoint(view, r.MessageId, r.PartId);
            return await TransitionAsync(view, point, r.Scope, r.DryRun, r.Force, ct).ConfigureAwait(false);
        }
    }

    public async Task<RevertOutcome> UnrevertAsync(string sessionId, bool force, bool dryRun, CancellationToken ct)
    {
        await RecoverAsync(ct).ConfigureAwait(false);
        using (await store.LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            var view = Load(sessionId);
            if (LatestFilesRevert(view) is { } files)
            {
                return await UnrevertFilesAsync(view, files, force, dryRun, ct).ConfigureAwait(false);
            }

            if (view.Session["revert"] is not JsonObject)
            {
                return new RevertOutcome(view.Session, [], false, "The session has no revert to undo.", dryRun, []);
            }

            return await TransitionAsync(view, null, RevertScope.Both, dryRun, force, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The TUI's /undo: reverts to the last user message before the current revert point (or the last one).</summary>
    public async Task<RevertOutcome> UndoAsync(string sessionId, bool force, bool dryRun, CancellationToken ct)
    {
        await RecoverAsync(ct).ConfigureAwait(false);
        using (await store.LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            var view = Load(sessionId);
            string? current = RevertOf(view.Session)?.MessageId;
            var target = view.Messages.LastOrDefault(m => Role(m) == "user" && (current is null || string.CompareOrdinal(Id(m.Info), current) < 0))
                ?? throw new OpenCodeException(ErrorKind.Conflict, $"Nothing to undo in session {sessionId}: no earlier user message.");
            var outcome = await TransitionAsync(view, new Point(view.Messages.IndexOf(target), 0, Id(target.Info), null), RevertScope.Both, dryRun, force, ct).ConfigureAwait(false);
            return outcome with { Prompt = Prefill(target) };
        }
    }

    /// <summary>The TUI's /redo: moves the revert point forward one user turn, or unreverts when none is left.</summary>
    public async Task<RevertOutcome> RedoAsync(string sessionId, bool force, bool dryRun, CancellationToken ct)
    {
        await RecoverAsync(ct).ConfigureAwait(false);
        using (await store.LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            var view = Load(sessionId);
            if (RevertOf(view.Session) is null && LatestFilesRevert(view) is { } files)
            {
                return await UnrevertFilesAsync(view, files, force, dryRun, ct).ConfigureAwait(false);
            }

            string current = RevertOf(view.Session)?.MessageId
                ?? throw new OpenCodeException(ErrorKind.Conflict, $"Nothing to redo in session {sessionId}: it is not reverted.");
            var next = view.Messages.FirstOrDefault(m => Role(m) == "user" && string.CompareOrdinal(Id(m.Info), current) > 0);
            if (next is null)
            {
                return await TransitionAsync(view, null, RevertScope.Both, dryRun, force, ct).ConfigureAwait(false);
            }

            var outcome = await TransitionAsync(view, new Point(view.Messages.IndexOf(next), 0, Id(next.Info), null), RevertScope.Both, dryRun, force, ct).ConfigureAwait(false);
            return outcome with { Prompt = Prefill(next) };
        }
    }

    /// <summary>A git tree hash of the session's worktree now.</summary>
    public async Task<string> TrackAsync(string sessionId, CancellationToken ct)
    {
        await RecoverAsync(ct).ConfigureAwait(false);
        var (session, _) = store.ReadSession(sessionId);
        var (snap, reason, _) = SnapshotsFor(session);
        if (snap is null)
        {
            throw new SnapshotUnavailableException(reason!);
        }

        return await snap.TrackAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Writes a <c>step-start</c> part with a fresh snapshot, as OpenCode's processor does at each step.</summary>
    public async Task<JsonObject> StepStartAsync(string sessionId, string messageId, CancellationToken ct)
    {
        await RecoverAsync(ct).ConfigureAwait(false);
        var msg = store.GetMessage(sessionId, messageId);
        var snap = SnapshotsForStep(store.GetSession(sessionId));
        string? hash = snap is null ? null : await snap.TrackAsync(ct).ConfigureAwait(false);

        // Key order as OpenCode 1.1.65 writes it: id, sessionID, messageID, type, snapshot.
        var part = new JsonObject
        {
            ["id"] = Identifier.Ascending(Identifier.Part),
            ["sessionID"] = sessionId,
            ["messageID"] = Id(msg.Info),
            ["type"] = "step-start",
        };
        if (hash is not null)
        {
            part["snapshot"] = hash;
        }

        return await store.UpdatePartAsync(part, null, ct).ConfigureAwait(false);
    }

    /// <summary>Writes a <c>step-finish</c> part with a fresh snapshot and, when files changed since the step's start,
    /// a <c>patch</c> part <c>{hash, files}</c> with absolute paths, as OpenCode does.</summary>
    public async Task<IReadOnlyList<JsonObject>> StepFinishAsync(string sessionId, string messageId, string reason, double? cost, JsonObject? tokens, CancellationToken ct)
    {
        await RecoverAsync(ct).ConfigureAwait(false);
        var msg = store.GetMessage(sessionId, messageId);
        var snap = SnapshotsForStep(store.GetSession(sessionId));
        string? start = msg.Parts.LastOrDefault(p => Str(p, "type") == "step-start" && Str(p, "snapshot") is not null) is { } s ? Str(s, "snapshot") : null;
        string? now = null;
        IReadOnlyList<string> files = [];
        if (snap is not null)
        {
            if (start is not null)
            {
                (now, files) = await snap.PatchAsync(start, ct).ConfigureAwait(false);
            }
            else
            {
                now = await snap.TrackAsync(ct).ConfigureAwait(false);
            }
        }

        var finish = new JsonObject
        {
            ["id"] = Identifier.Ascending(Identifier.Part),
            ["sessionID"] = sessionId,
            ["messageID"] = messageId,
            ["type"] = "step-finish",
            ["reason"] = reason,
        };
        if (now is not null)
        {
            finish["snapshot"] = now;
        }

        finish["cost"] = cost ?? 0;
        finish["tokens"] = tokens?.DeepClone() ?? new JsonObject
        {
            ["input"] = 0,
            ["output"] = 0,
            ["reasoning"] = 0,
            ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 },
        };
        var written = new List<JsonObject> { await store.UpdatePartAsync(finish, null, ct).ConfigureAwait(false) };
        if (files.Count > 0)
        {
            var patch = new JsonObject
            {
                ["id"] = Identifier.Ascending(Identifier.Part),
                ["sessionID"] = sessionId,
                ["messageID"] = messageId,
                ["type"] = "patch",
                ["hash"] = start,
                ["files"] = new JsonArray(files.Select(f => (JsonNode?)f).ToArray()),
            };
            written.Add(await store.UpdatePartAsync(patch, null, ct).ConfigureAwait(false));
        }

        return written;
    }

    /// <summary>The files the session's AI steps changed, from the first step's start to the last step's finish
    /// (messages from <paramref name="messageId"/> on, or all). Stored in <c>session_diff/&lt;id&gt;.json</c> and
    /// announced as <c>session.diff</c>.</summary>
    public async Task<JsonArray> DiffAsync(string sessionId, string? messageId, CancellationToken ct)
    {
        if (messageId is not null)
        {
            SessionStore.CheckId(messageId, Identifier.Message, "messageID");
        }

        await RecoverAsync(ct).ConfigureAwait(false);
        var view = Load(sessionId);
        int from = 0;
        if (messageId is not null)
        {
            from = view.Messages.FindIndex(m => Id(m.Info) == messageId);
            if (from < 0)
            {
                throw NotFoundException.ForMessage(messageId);
            }
        }

        var (snap, _, _) = SnapshotsFor(view.Session);
        JsonArray diffs = [];
        if (snap is not null)
        {
            using var lease = await snap.AcquireAsync(ct).ConfigureAwait(false);
            diffs = await ComputeDiffAsync(view, from, lease, ct).ConfigureAwait(false);
        }

        using (await store.LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            AtomicFile.Write(Layout.SessionDiffFile(sessionId), JsJson.ToBytes(diffs));
        }

        store.Publish("session.diff", new JsonObject { ["sessionID"] = sessionId, ["diff"] = diffs.DeepClone() });
        return diffs;
    }

    /// <summary>Cleanup before the next message of a reverted session (OpenCode's <c>SessionRevert.cleanup</c>): the
    /// reverted messages and their part files are deleted, and <c>revert</c> is cleared.</summary>
    public bool NeedsBeforeNewMessage(JsonObject session) => !recovered || session["revert"] is JsonObject;

    public async Task BeforeNewMessageAsync(string sessionId, string messageId, CancellationToken ct)
    {
        await RecoverAsync(ct).ConfigureAwait(false);
        if (!store.SessionExists(sessionId) || store.GetSession(sessionId)["revert"] is not JsonObject)
        {
            return;
        }

        var events = new List<(string, JsonObject)>();
        JsonObject info;
        using (await store.LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            string projectId;
            (info, projectId) = store.ReadSession(sessionId);
            if (RevertOf(info) is not { } rv)
            {
                return;
            }

            store.BeforeRemoval();
            foreach (var m in store.ReadMessageInfos(sessionId))
            {
                string id = Id(m);
                if (string.CompareOrdinal(id, rv.MessageId) < 0)
                {
                    continue;
                }

                if (rv.PartId is not null && id == rv.MessageId)
                {
                    foreach (var p in store.ReadParts(id))
                    {
                        string pid = Id(p);
                        if (string.CompareOrdinal(pid, rv.PartId) >= 0)
                        {
                            AtomicFile.Delete(Layout.PartFile(id, pid));
                            events.Add(("message.part.removed", new JsonObject { ["sessionID"] = sessionId, ["messageID"] = id, ["partID"] = pid }));
                        }
                    }

                    continue;
                }

                // Message first, then its parts (OpenCode 1.1.65 leaves the part files orphaned; we do not).
                AtomicFile.Delete(Layout.MessageFile(sessionId, id));
                string partDir = Layout.PartDir(id);
                if (Directory.Exists(partDir))
                {
                    Directory.Delete(partDir, recursive: true);
                }

                events.Add(("message.removed", new JsonObject { ["sessionID"] = sessionId, ["messageID"] = id }));
            }

            info.Remove("revert");
            store.WriteSessionFile(projectId, info);
            AtomicFile.Delete(SideRecordFile(sessionId));
        }

        foreach (var (type, props) in events)
        {
            store.Publish(type, props);
        }

        store.Publish("session.updated", new JsonObject { ["info"] = info.DeepClone() });
    }

    /// <summary>Finishes or rolls back reverts that a killed process left half done: every journal in
    /// <c>&lt;data&gt;/opencode-rpc/revert/</c>, whatever its project (a journal names its own shadow repo and worktree).
    /// The server starts it when it starts (<see cref="RecoverAtStartAsync"/>); every revert operation awaits it.</summary>
    public async Task<int> RecoverAsync(CancellationToken ct)
    {
        if (recovered)
        {
            return 0;
        }

        await recoverGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (recovered)
            {
                return 0;
            }

            int n = 0;
            if (Directory.Exists(RevertDir))
            {
                foreach (var file in Directory.EnumerateFiles(RevertDir, "*.journal.json"))
                {
                    if (await RecoverOneAsync(file, ct).ConfigureAwait(false))
                    {
                        n++;
                    }
                }
            }

            recovered = true;
            return n;
        }
        finally
        {
            recoverGate.Release();
        }
    }

    /// <summary>Recovery at server start: never throws. A journal that cannot be handled now (its snapshot is
    /// unreadable, say) stays, is logged, and is tried again by the next revert operation, which then fails loudly.</summary>
    public async Task RecoverAtStartAsync()
    {
        try
        {
            int n = await RecoverAsync(CancellationToken.None).ConfigureAwait(false);
            if (n > 0)
            {
                log($"recovered {n} interrupted revert(s) at start");
            }
        }
        catch (Exception ex) when (ex is OpenCodeException or IOException or UnauthorizedAccessException or LibGit2Sharp.LibGit2SharpException)
        {
            log($"warning: an interrupted revert could not be recovered at start: {ex.Message}");
        }
    }

    // ------------------------------------------------------------------ the transition

    /// <summary>A revert point: messages from <see cref="Msg"/> on (from part <see cref="Part"/> in it) are reverted.</summary>
    private sealed record Point(int Msg, int Part, string MessageId, string? PartId)
    {
        public bool Covers(int msg, int part) => msg > Msg || (msg == Msg && part >= Part);
    }

    private sealed record View(JsonObject Session, string ProjectId, List<MessageWithParts> Messages);

    private sealed record PatchRef(int Msg, int Part, string Hash, IReadOnlyList<string> Files, string? After);

    private sealed record RevertState(string MessageId, string? PartId, string? Snapshot);

    private async Task<RevertOutcome> TransitionAsync(View view, Point? target, RevertScope scope, bool dryRun, bool force, CancellationToken ct)
    {
        string sessionId = Id(view.Session);
        var active = RevertOf(view.Session);
        Point? old = active is null ? null : PointOf(view, active);
        var (snap, offReason, unavailable) = SnapshotsFor(view.Session);
        bool doFiles = snap is not null && scope != RevertScope.Conversation && (target is not null || active?.Snapshot is not null);
        string? reason = snap is null ? offReason : scope == RevertScope.Conversation ? "Only the conversation was reverted (scope: conversation)." : null;

        var patches = Patches(view);
        List<PatchRef> newSet = target is null ? [] : patches.Where(p => target.Covers(p.Msg, p.Part)).ToList();

        // Files were reverted by the active revert only if it recorded a snapshot (we record one only then).
        bool oldApplied = active?.Snapshot is not null;
        List<PatchRef> oldSet = old is null || !oldApplied ? [] : patches.Where(p => old.Covers(p.Msg, p.Part)).ToList();

        var files = new List<RevertFile>();
        var skipped = new List<string>();
        string? snapshot = active?.Snapshot;
        string? diffText = null;
        JsonArray? sessionDiff = null;
        if (unavailable && scope != RevertScope.Conversation && (newSet.Count > 0 || oldSet.Count > 0))
        {
            throw new SnapshotUnavailableException(offReason + " Nothing was changed; scope \"conversation\" reverts the conversation alone.");
        }

        if (doFiles && (newSet.Count > 0 || oldSet.Count > 0))
        {
            using var lease = await snap!.AcquireAsync(ct).ConfigureAwait(false);
            var worktree = new WorktreeFiles(snap.WorkTree);
            var side = ReadSideRecord(sessionId, active);

            // Loud and early: every tree we may read must exist before anything changes.
            var needed = newSet.Concat(oldSet).Select(p => p.Hash).ToList();
            if (active?.Snapshot is { } s0)
            {
                needed.Add(s0);
            }

            if (side is not null)
            {
                needed.Add(side);
            }

            lease.RequireTrees(needed);

            var changedCache = new Dictionary<(string, string), IReadOnlyList<string>>();
            var (newFiles, outside1) = await FileMapAsync(newSet, worktree, lease, changedCache, false, ct).ConfigureAwait(false);
            var (oldFiles, outside2) = await FileMapAsync(oldSet, worktree, lease, changedCache, false, ct).ConfigureAwait(false);
            skipped.AddRange(outside1.Concat(outside2).Distinct(StringComparer.Ordinal));
            if (skipped.Count > 0 && !force)
            {
                throw new PathOutsideProjectException(skipped);
            }

            string before = await lease.TrackAsync(ct).ConfigureAwait(false);
            string baseline = active?.Snapshot ?? before;
            var all = newFiles.Keys.Union(oldFiles.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            var (allPatches, _) = await FileMapAsync(patches, worktree, lease, changedCache, true, ct).ConfigureAwait(false);

            var plan = new List<(string Rel, EntryState? Target, string Tree, string Status)>();
            var conflicts = new List<string>();
            foreach (var rel in all)
            {
                var current = CurrentState(lease, worktree, before, rel);
                string wantTree = newFiles.TryGetValue(rel, out var first) ? first.Hash : baseline;
                EntryState? want = lease.Entry(wantTree, rel);
                if (Same(current, want))
                {
                    continue;
                }

                EntryState? expected;
                bool known = true;
                if (side is not null)
                {
                    expected = lease.Entry(side, rel);
                }
                else if (oldFiles.TryGetValue(rel, out var oldFirst))
                {
                    expected = lease.Entry(oldFirst.Hash, rel);
                }
                else if (allPatches.TryGetValue(rel, out var last) && last.After is { } after && lease.TreeExists(after))
                {
                    expected = lease.Entry(after, rel);
                }
                else
                {
                    expected = null;
                    known = false;
                }

                if (!force && (!known || !Same(current, expected)))
                {
                    conflicts.Add(worktree.Absolute(rel));
                    continue;
                }

                if (current is { Mode: "dir" } || want is { IsBlob: false } || (want is not null && worktree.Kind(rel) == DiskKind.Directory))
                {
                    conflicts.Add(worktree.Absolute(rel)); // a folder is never replaced or deleted, even with force
                    continue;
                }

                plan.Add((rel, want, wantTree, want is null ? "deleted" : current is null ? "added" : "modified"));
            }

            if (conflicts.Count > 0)
            {
                throw new RevertConflictException(conflicts);
            }

            files.AddRange(plan.Select(p => new RevertFile(worktree.Absolute(p.Rel), p.Status)));
            if (dryRun)
            {
                return new RevertOutcome(view.Session, files, true, reason, true, skipped);
            }

            bool filesOnly = scope == RevertScope.Files && target is not null;
            RevertState? intended = target is null || scope == RevertScope.Files ? null : new RevertState(target.MessageId, target.PartId, baseline);
            string expect = filesOnly ? "files" : target is null ? "clear" : "revert";
            string entryId = Guid.NewGuid().ToString("N");
            string journal = WriteJournal(sessionId, snap, before, plan.Select(p => p.Rel), intended, expect, filesOnly ? entryId : null);
            foreach (var (rel, want, tree, _) in plan)
            {
                ct.ThrowIfCancellationRequested();
                Apply(lease, worktree, rel, want, tree);
            }

            string applied = await lease.TrackAsync(ct).ConfigureAwait(false);
            if (filesOnly)
            {
                // The conversation is left as it is (OpenCode would hide every message from the revert point on if
                // session.revert were set), so the revert is kept apart, in our side data: its last step, which
                // marks it done for the journal, and what session/unrevert needs to put the files back.
                var entries = ReadFilesReverts(sessionId);
                entries.Add(new FilesRevert(entryId, target!.MessageId, target.PartId, before, applied, plan.Select(p => p.Rel).ToList(), active?.MessageId, active?.Snapshot));
                WriteFilesReverts(sessionId, entries);
                AtomicFile.Delete(journal);
                return new RevertOutcome(view.Session, files, true, null, false, skipped);
            }

            diffText = await lease.DiffTextAsync(baseline, applied, ct).ConfigureAwait(false);
            snapshot = baseline;
            if (target is not null && scope != RevertScope.Files)
            {
                sessionDiff = await ComputeDiffAsync(view, target.Msg, lease, ct).ConfigureAwait(false);
                WriteSideRecord(sessionId, new RevertState(target.MessageId, target.PartId, baseline), applied);
            }

            FinishSession(view, target, scope, snapshot, diffText, sessionDiff);
            AtomicFile.Delete(journal);
        }
        else
        {
            if (dryRun)
            {
                return new RevertOutcome(view.Session, [], doFiles, doFiles ? null : reason, true, []);
            }

            // No file changes: a snapshot is kept only when an earlier revert changed files (so redo can put them
            // back). Without one, OpenCode's own unrevert of our revert restores nothing, which is the safe side.
            snapshot = target is null ? null : active?.Snapshot;
            string? keptDiff = snapshot is null ? null : Str((JsonObject)view.Session["revert"]!, "diff") ?? string.Empty;
            FinishSession(view, target, scope, snapshot, keptDiff, null);
        }

        return new RevertOutcome(view.Session, files, doFiles, doFiles ? null : reason, false, skipped);
    }

    private void FinishSession(View view, Point? target, RevertScope scope, string? snapshot, string? diff, JsonArray? sessionDiff)
    {
        var info = view.Session;
        if (scope == RevertScope.Files)
        {
            return; // files only: the conversation (and its revert state) is left as it was
        }

        string sessionId = Id(info);
        if (target is null)
        {
            info.Remove("revert");
            AtomicFile.Delete(SideRecordFile(sessionId));
        }
        else
        {
            var rv = new JsonObject { ["messageID"] = target.MessageId };
            if (target.PartId is not null)
            {
                rv["partID"] = target.PartId;
            }

            if (snapshot is not null)
            {
                rv["snapshot"] = snapshot;
            }

            if (diff is not null)
            {
                rv["diff"] = diff;
            }

            info["revert"] = rv;
            if (sessionDiff is not null)
            {
                info["summary"] = new JsonObject
                {
                    ["additions"] = sessionDiff.Sum(d => d!["additions"]!.GetValue<int>()),
                    ["deletions"] = sessionDiff.Sum(d => d!["deletions"]!.GetValue<int>()),
                    ["files"] = sessionDiff.Count,
                };
                AtomicFile.Write(Layout.SessionDiffFile(sessionId), JsJson.ToBytes(sessionDiff));
            }

            if (snapshot is null)
            {
                AtomicFile.Delete(SideRecordFile(sessionId));
            }
        }

        store.WriteSessionFile(view.ProjectId, info);
        if (sessionDiff is not null)
        {
            store.Publish("session.diff", new JsonObject { ["sessionID"] = sessionId, ["diff"] = sessionDiff.DeepClone() });
        }

        store.Publish("session.updated", new JsonObject { ["info"] = info.DeepClone() });
    }

    /// <summary>Puts one file in its wanted state; a deletion also removes the folders it empties that did not exist
    /// in <paramref name="tree"/>, the state being restored.</summary>
    private static void Apply(SnapshotLease lease, WorktreeFiles worktree, string rel, EntryState? want, string tree)
    {
        if (want is null)
        {
            worktree.Delete(rel, dir => lease.IsTree(tree, dir));
        }
        else
        {
            worktree.Write(rel, lease.ReadBlob(want.Oid), want.Mode);
        }
    }

    /// <summary>The state of a path now: from the fresh snapshot, or a marker when something untracked (ignored, too
    /// big) or a folder is there, which never equals any snapshot state.</summary>
    private static EntryState? CurrentState(SnapshotLease lease, WorktreeFiles worktree, string before, string rel)
    {
        var e = lease.Entry(before, rel);
        if (e is { IsBlob: true })
        {
            return e;
        }

        return worktree.Kind(rel) switch
        {
            DiskKind.Missing => null,
            DiskKind.Directory => new EntryState("dir", string.Empty),
            _ => new EntryState("untracked", string.Empty),
        };
    }

    private static bool Same(EntryState? a, EntryState? b) =>
        (a is null && b is null) || (a is not null && b is not null && a.IsBlob && b.IsBlob && a.Mode == b.Mode && a.Oid == b.Oid);

    /// <summary>Maps each file the patches touched (relative path) to the first patch touching it, or the last one
    /// with <paramref name="lastWins"/>. Paths outside the worktree are returned apart, never mapped.</summary>
    private static async Task<(Dictionary<string, PatchRef> Map, List<string> Outside)> FileMapAsync(
        IReadOnlyList<PatchRef> patches, WorktreeFiles worktree, SnapshotLease lease, Dictionary<(string, string), IReadOnlyList<string>> changedCache, bool lastWins, CancellationToken ct)
    {
        var map = new Dictionary<string, PatchRef>(StringComparer.Ordinal);
        var outside = new List<string>();
        foreach (var p in patches)
        {
            var rels = new List<string>();
            foreach (var f in p.Files)
            {
                if (worktree.Relative(f) is { } rel)
                {
                    rels.Add(rel);
                }
                else
                {
                    outside.Add(f);
                }
            }

            // A rename recorded by OpenCode lists only the new name (git diff detects renames); the step's own
            // before/after snapshots name both sides.
            if (rels.Count > 0 && p.After is { } after && lease.TreeExists(after) && lease.TreeExists(p.Hash))
            {
                if (!changedCache.TryGetValue((p.Hash, after), out var changed))
                {
                    changed = await lease.ChangedAsync(p.Hash, after, ct).ConfigureAwait(false);
                    changedCache[(p.Hash, after)] = changed;
                }

                foreach (var rel in changed)
                {
                    if (worktree.Relative(rel) is { } ok)
                    {
                        rels.Add(ok);
                    }
                }
            }

            foreach (var rel in rels)
            {
                if (lastWins || !map.ContainsKey(rel))
                {
                    map[rel] = p;
                }
            }
        }

        return (map, outside);
    }

    private List<PatchRef> Patches(View view)
    {
        var list = new List<PatchRef>();
        for (int mi = 0; mi < view.Messages.Count; mi++)
        {
            var parts = view.Messages[mi].Parts;
            for (int pi = 0; pi < parts.Count; pi++)
            {
                var p = parts[pi];
                if (Str(p, "type") != "patch" || Str(p, "hash") is not { } hash || p["files"] is not JsonArray arr)
                {
                    continue;
                }

                var files = arr.Select(x => x is JsonValue v && v.TryGetValue(out string? s) ? s : null).OfType<string>().ToList();
                list.Add(new PatchRef(mi, pi, hash, files, AfterSnapshot(view, mi, pi)));
            }
        }

        return list;
    }

    /// <summary>The snapshot taken right after a patch's step: the step-finish before it in its message, else the
    /// next snapshot recorded anywhere after it.</summary>
    private static string? AfterSnapshot(View view, int mi, int pi)
    {
        var parts = view.Messages[mi].Parts;
        for (int i = pi - 1; i >= 0; i--)
        {
            if (Str(parts[i], "type") == "step-finish" && Str(parts[i], "snapshot") is { } s)
            {
                return s;
            }

            if (Str(parts[i], "type") == "step-start")
            {
                break;
            }
        }

        for (int m = mi; m < view.Messages.Count; m++)
        {
            var ps = view.Messages[m].Parts;
            for (int i = m == mi ? pi + 1 : 0; i < ps.Count; i++)
            {
                if (Str(ps[i], "type") is "step-start" or "step-finish" && Str(ps[i], "snapshot") is { } s)
                {
                    return s;
                }
            }
        }

        return null;
    }

    /// <summary>OpenCode's revert-point rule (§5.2): the message (or part); a message-level point, or a part with no
    /// text/tool part before it, becomes the whole turn from its user message.</summary>
    private static Point ResolvePoint(View view, string messageId, string? partId)
    {
        int lastUser = -1;
        for (int mi = 0; mi < view.Messages.Count; mi++)
        {
            var m = view.Messages[mi];
            if (Role(m) == "user")
            {
                lastUser = mi;
            }

            if (Id(m.Info) != messageId)
            {
                continue;
            }

            if (partId is not null)
            {
                int pi = m.Parts.ToList().FindIndex(p => Id(p) == partId);
                if (pi < 0)
                {
                    throw NotFoundException.ForPart(partId);
                }

                if (m.Parts.Take(pi).Any(p => Str(p, "type") is "text" or "tool"))
                {
                    return new Point(mi, pi, messageId, partId);
                }
            }

            int at = lastUser >= 0 ? lastUser : mi;
            return new Point(at, 0, Id(view.Messages[at].Info), null);
        }

        throw NotFoundException.ForMessage(messageId);
    }

    private static Point PointOf(View view, RevertState rv)
    {
        int mi = view.Messages.FindIndex(m => string.CompareOrdinal(Id(m.Info), rv.MessageId) >= 0);
        if (mi < 0)
        {
            return new Point(view.Messages.Count, 0, rv.MessageId, rv.PartId);
        }

        int pi = 0;
        if (rv.PartId is not null && Id(view.Messages[mi].Info) == rv.MessageId)
        {
            pi = view.Messages[mi].Parts.ToList().FindIndex(p => string.CompareOrdinal(Id(p), rv.PartId) >= 0);
            if (pi < 0)
            {
                pi = view.Messages[mi].Parts.Count;
            }
        }

        return new Point(mi, pi, rv.MessageId, rv.PartId);
    }

    private async Task<JsonArray> ComputeDiffAsync(View view, int fromMsg, SnapshotLease lease, CancellationToken ct)
    {
        string? first = null;
        string? last = null;
        for (int mi = Math.Max(0, fromMsg); mi < view.Messages.Count; mi++)
        {
            foreach (var p in view.Messages[mi].Parts)
            {
                if (Str(p, "snapshot") is not { } s)
                {
                    continue;
                }

                if (Str(p, "type") == "step-start")
                {
                    first ??= s;
                }
                else if (Str(p, "type") == "step-finish")
                {
                    last = s;
                }
            }
        }

        var arr = new JsonArray();
        if (first is null || last is null || !lease.TreeExists(first) || !lease.TreeExists(last))
        {
            return arr;
        }

        foreach (var d in await lease.DiffFullAsync(first, last, ct).ConfigureAwait(false))
        {
            arr.Add((JsonNode)new JsonObject
            {
                ["file"] = d.File,
                ["before"] = d.Before,
                ["after"] = d.After,
                ["additions"] = d.Additions,
                ["deletions"] = d.Deletions,
                ["status"] = d.Status,
            });
        }

        return arr;
    }

    // ------------------------------------------------------------------ helpers

    private View Load(string sessionId)
    {
        var (info, projectId) = store.ReadSession(sessionId);
        var infos = store.ReadMessageInfos(sessionId);
        var msgs = infos.Select(m => new MessageWithParts(m, store.ReadParts(Id(m)))).ToList();
        return new View(info, projectId, msgs);
    }

    /// <summary>The snapshot store for a session's worktree, or null (and why) when snapshots are off.</summary>
    /// <summary>The snapshot store for a session's worktree, or null and why: snapshots are off, or (Unavailable) the
    /// session's folder is gone.</summary>
    private (SnapshotStore? Store, string? Reason, bool Unavailable) SnapshotsFor(JsonObject session)
    {
        if (ProjectOf(session) is not { } project)
        {
            return (null, $"The session's directory {Str(session, "directory")} no longer exists, so its files cannot be restored.", true);
        }

        var config = OpenCodeConfig.Load(configLocations, project.Directory, project.IsGit ? project.Worktree : null);
        if (!config.Snapshot)
        {
            return (null, "Snapshots are disabled (\"snapshot\": false in opencode.json), so only the conversation was reverted; files were left as they are.", false);
        }

        return (SnapshotStore.ForProject(Layout, project, snapshotOptions), null, false);
    }

    /// <summary>For step/start and step/finish: null only when snapshots are turned off; a missing folder is an error,
    /// never a step silently recorded without its snapshot.</summary>
    private SnapshotStore? SnapshotsForStep(JsonObject session)
    {
        var (snap, reason, unavailable) = SnapshotsFor(session);
        return unavailable ? throw new SnapshotUnavailableException(reason!) : snap;
    }

    private ProjectInfo? ProjectOf(JsonObject session)
    {
        var current = currentProject();
        string? dir = Str(session, "directory");
        if (dir is null || string.Equals(Path.TrimEndingDirectorySeparator(dir), current.Directory, StringComparison.Ordinal))
        {
            return current;
        }

        if (Path.IsPathRooted(dir) && Directory.Exists(dir))
        {
            return ProjectResolver.Resolve(dir);
        }

        if (current.IsGit && Str(session, "projectID") == current.Id)
        {
            return current;
        }

        return null;
    }

    private static RevertState? RevertOf(JsonObject session) =>
        session["revert"] is JsonObject rv && Str(rv, "messageID") is { } m ? new RevertState(m, Str(rv, "partID"), Str(rv, "snapshot")) : null;

    private static PromptPrefill Prefill(MessageWithParts m)
    {
        var parts = m.Parts
            .Where(p => Str(p, "type") is "text" or "file" && !(p["synthetic"] is JsonValue v && v.GetValueKind() == JsonValueKind.True))
            .Select(p => (JsonObject)p.DeepClone()).ToList();
        string text = string.Join("\n", parts.Where(p => Str(p, "type") == "text").Select(p => Str(p, "text")));
        return new PromptPrefill(Id(m.Info), text, parts);
    }

    private string SideRecordFile(string sessionId) => Path.Combine(RevertDir, Check(sessionId) + ".json");

    private static string Check(string sessionId) =>
        Identifier.IsValid(sessionId, Identifier.Session) ? sessionId : throw new InvalidInputException("sessionID", Identifier.Explain(sessionId, Identifier.Session));

    /// <summary>Our own record of the active revert: the tree the worktree was left at, so the next move can tell
    /// the user's edits from ours. Ignored unless it matches the session's <c>revert</c> exactly.</summary>
    private void WriteSideRecord(string sessionId, RevertState state, string applied)
    {
        var o = new JsonObject { ["messageID"] = state.MessageId, ["partID"] = state.PartId, ["snapshot"] = state.Snapshot, ["applied"] = applied };
        AtomicFile.Write(SideRecordFile(sessionId), JsJson.ToBytes(o));
    }

    private string? ReadSideRecord(string sessionId, RevertState? active)
    {
        if (active?.Snapshot is null)
        {
            return null;
        }

        try
        {
            var o = SessionStore.ReadObject(SideRecordFile(sessionId));
            if (o is null || Str(o, "messageID") != active.MessageId || Str(o, "partID") != active.PartId || Str(o, "snapshot") != active.Snapshot)
            {
                return null;
            }

            return Str(o, "applied");
        }
        catch (StoreCorruptException)
        {
            return null;
        }
    }

    private string WriteJournal(string sessionId, SnapshotStore snap, string before, IEnumerable<string> files, RevertState? state, string expect, string? entry = null)
    {
        var o = new JsonObject
        {
            ["sessionID"] = sessionId,
            ["gitDir"] = snap.GitDir,
            ["workTree"] = snap.WorkTree,
            ["userGitDir"] = snap.UserGitDir,
            ["before"] = before,
            ["files"] = new JsonArray(files.Select(f => (JsonNode?)f).ToArray()),
            ["revert"] = state is null ? null : new JsonObject { ["messageID"] = state.MessageId, ["partID"] = state.PartId, ["snapshot"] = state.Snapshot },
            ["expect"] = expect,
        };
        if (entry is not null)
        {
            o["entry"] = entry;
        }

        string path = Path.Combine(RevertDir, Check(sessionId) + ".journal.json");
        AtomicFile.Write(path, JsJson.ToBytes(o));
        return path;
    }

    private async Task<bool> RecoverOneAsync(string file, CancellationToken ct)
    {
        JsonObject? j;
        try
        {
            j = SessionStore.ReadObject(file);
        }
        catch (StoreCorruptException)
        {
            j = null;
        }

        if (j is null || Str(j, "sessionID") is not { } sessionId || !Identifier.IsValid(sessionId, Identifier.Session)
            || Str(j, "gitDir") is not { } gitDir || Str(j, "workTree") is not { } workTree || Str(j, "before") is not { } before
            || j["files"] is not JsonArray filesArr)
        {
            log($"removing unreadable revert journal {file}");
            AtomicFile.Delete(file);
            return false;
        }

        using (await store.LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            // Another sidecar starting at the same moment may have handled it while we waited for the lock.
            if (!File.Exists(file))
            {
                return false;
            }

            if (!Directory.Exists(workTree))
            {
                log($"dropping the revert journal of session {sessionId}: its folder {workTree} is gone");
                AtomicFile.Delete(file);
                return false;
            }

            // Whichever way it ends, no temp file of an interrupted write stays in the user's folders.
            var files = new WorktreeFiles(workTree);
            int temps = filesArr.Select(x => x?.GetValue<string>()).OfType<string>().Sum(files.RemoveStrayTemps);
            if (temps > 0)
            {
                log($"removed {temps} temp file(s) an interrupted revert left in {workTree}");
            }

            var want = j["revert"] as JsonObject;
            JsonObject? have = store.SessionExists(sessionId) ? store.GetSession(sessionId)["revert"] as JsonObject : null;
            // Finished if the session already says what the revert meant to write (the session is written last).
            bool done = Str(j, "expect") switch
            {
                "revert" => want is not null && have is not null && Str(want, "messageID") == Str(have, "messageID")
                    && Str(want, "partID") == Str(have, "partID") && Str(want, "snapshot") == Str(have, "snapshot"),
                "clear" => have is null,
                "files" => ReadFilesReverts(sessionId).Any(e => e.Id == Str(j, "entry")),
                "files-undo" => Str(j, "entry") is { } gone && ReadFilesReverts(sessionId).All(e => e.Id != gone),
                _ => false,
            };
            if (!done)
            {
                var snap = new SnapshotStore(gitDir, workTree, Layout.LockDir, Str(j, "userGitDir"), snapshotOptions);
                var worktree = new WorktreeFiles(snap.WorkTree);
                using var lease = await snap.AcquireAsync(ct).ConfigureAwait(false);
                lease.RequireTrees(before);
                foreach (var rel in filesArr.Select(x => x?.GetValue<string>()).OfType<string>())
                {
                    if (worktree.Relative(rel) is not { } ok)
                    {
                        continue;
                    }

                    var e = lease.Entry(before, ok);
                    Apply(lease, worktree, ok, e is { IsBlob: true } ? e : null, before);
                }

                log($"rolled back an interrupted revert of session {sessionId} ({filesArr.Count} file(s))");
            }

            AtomicFile.Delete(file);
        }

        return true;
    }

    // ------------------------------------------------------------------ files-only reverts

    /// <summary>A <c>scope: "files"</c> revert: the worktree before and after it, and the files it changed. Kept in
    /// <c>&lt;data&gt;/opencode-rpc/revert/&lt;sessionID&gt;.files.json</c>, newest last; <see cref="OverMessageId"/> and
    /// <see cref="OverSnapshot"/> are the conversation revert that was active when it was made, if any.</summary>
    private sealed record FilesRevert(string Id, string MessageId, string? PartId, string Before, string Applied, IReadOnlyList<string> Files, string? OverMessageId, string? OverSnapshot);

    private string FilesRevertFile(string sessionId) => Path.Combine(RevertDir, Check(sessionId) + ".files.json");

    private List<FilesRevert> ReadFilesReverts(string sessionId)
    {
        JsonObject? o;
        try
        {
            o = SessionStore.ReadObject(FilesRevertFile(sessionId));
        }
        catch (StoreCorruptException ex)
        {
            log($"ignoring unreadable files-revert record: {ex.Message}");
            return [];
        }

        var list = new List<FilesRevert>();
        foreach (var e in (o?["entries"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (Str(e, "id") is { } id && Str(e, "messageID") is { } m && Str(e, "before") is { } before && Str(e, "applied") is { } applied && e["files"] is JsonArray files)
            {
                list.Add(new FilesRevert(id, m, Str(e, "partID"), before, applied, files.OfType<JsonValue>().Select(v => v.GetValue<string>()).ToList(), Str(e, "overMessageID"), Str(e, "overSnapshot")));
            }
        }

        return list;
    }

    private void WriteFilesReverts(string sessionId, List<FilesRevert> entries)
    {
        if (entries.Count == 0)
        {
            AtomicFile.Delete(FilesRevertFile(sessionId));
            return;
        }

        var arr = new JsonArray();
        foreach (var e in entries)
        {
            arr.Add((JsonNode)new JsonObject
            {
                ["id"] = e.Id,
                ["messageID"] = e.MessageId,
                ["partID"] = e.PartId,
                ["before"] = e.Before,
                ["applied"] = e.Applied,
                ["files"] = new JsonArray(e.Files.Select(f => (JsonNode?)f).ToArray()),
                ["overMessageID"] = e.OverMessageId,
                ["overSnapshot"] = e.OverSnapshot,
            });
        }

        Directory.CreateDirectory(RevertDir);
        AtomicFile.Write(FilesRevertFile(sessionId), JsJson.ToBytes(new JsonObject { ["entries"] = arr }));
    }

    /// <summary>The files-only revert that unrevert undoes next: the newest one, unless a conversation revert was made
    /// after it (that one goes first, last in, first out).</summary>
    private FilesRevert? LatestFilesRevert(View view)
    {
        var last = ReadFilesReverts(Id(view.Session)).LastOrDefault();
        var active = RevertOf(view.Session);
        if (last is null || (active is not null && (last.OverMessageId != active.MessageId || last.OverSnapshot != active.Snapshot)))
        {
            return null;
        }

        return last;
    }

    /// <summary>Undoes a files-only revert: every file it changed goes back to its state just before it. A file changed
    /// since (by the user or a later AI step) is a RevertConflict unless <paramref name="force"/>.</summary>
    private async Task<RevertOutcome> UnrevertFilesAsync(View view, FilesRevert entry, bool force, bool dryRun, CancellationToken ct)
    {
        string sessionId = Id(view.Session);
        var (snap, reason, _) = SnapshotsFor(view.Session);
        if (snap is null)
        {
            throw new SnapshotUnavailableException(reason + " The files-only revert cannot be undone now; nothing was changed.");
        }

        using var lease = await snap.AcquireAsync(ct).ConfigureAwait(false);
        lease.RequireTrees(entry.Before, entry.Applied);
        var worktree = new WorktreeFiles(snap.WorkTree);
        string now = await lease.TrackAsync(ct).ConfigureAwait(false);
        var plan = new List<(string Rel, EntryState? Want, string Status)>();
        var conflicts = new List<string>();
        foreach (var rel in entry.Files)
        {
            if (worktree.Relative(rel) is not { } ok)
            {
                continue;
            }

            var current = CurrentState(lease, worktree, now, ok);
            var want = lease.Entry(entry.Before, ok);
            if (Same(current, want))
            {
                continue;
            }

            if ((!force && !Same(current, lease.Entry(entry.Applied, ok))) || current is { Mode: "dir" } || (want is not null && worktree.Kind(ok) == DiskKind.Directory))
            {
                conflicts.Add(worktree.Absolute(ok));
                continue;
            }

            plan.Add((ok, want, want is null ? "deleted" : current is null ? "added" : "modified"));
        }

        if (conflicts.Count > 0)
        {
            throw new RevertConflictException(conflicts);
        }

        var files = plan.Select(p => new RevertFile(worktree.Absolute(p.Rel), p.Status)).ToList();
        if (dryRun)
        {
            return new RevertOutcome(view.Session, files, true, null, true, []);
        }

        string journal = WriteJournal(sessionId, snap, now, plan.Select(p => p.Rel), null, "files-undo", entry.Id);
        foreach (var (rel, want, _) in plan)
        {
            ct.ThrowIfCancellationRequested();
            Apply(lease, worktree, rel, want, entry.Before);
        }

        var entries = ReadFilesReverts(sessionId);
        entries.RemoveAll(e => e.Id == entry.Id);
        WriteFilesReverts(sessionId, entries);
        AtomicFile.Delete(journal);
        return new RevertOutcome(view.Session, files, true, null, false, []);
    }

    private static string Id(JsonObject o) => Str(o, "id") ?? string.Empty;

    private static string? Role(MessageWithParts m) => Str(m.Info, "role");

    private static string? Str(JsonObject o, string key) =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
