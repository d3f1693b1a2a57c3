using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>A message with its parts, as OpenCode returns and exports it.</summary>
public sealed record MessageWithParts(JsonObject Info, IReadOnlyList<JsonObject> Parts);

/// <summary>Called by <see cref="SessionStore"/> before it creates a new message in a session.</summary>
public interface ISessionWriteHook
{
    /// <summary>Whether a new message in this session (read under its lock) needs <see cref="BeforeNewMessageAsync"/>
    /// first. Cheap: it is asked on every new message, with the session the store has just read anyway.</summary>
    bool NeedsBeforeNewMessage(JsonObject session);

    /// <summary>Runs outside the session lock, which it may take itself (locks are not reentrant).</summary>
    Task BeforeNewMessageAsync(string sessionId, string messageId, CancellationToken ct);
}

/// <summary>Called by <see cref="SessionStore"/> after a message is written (created or replaced), outside the
/// session lock. Compaction uses it to compact automatically when an assistant message reports an overflow.</summary>
public interface IMessageWrittenHook
{
    Task AfterMessageWrittenAsync(JsonObject info, CancellationToken ct);
}

/// <summary>A change in the store, named and shaped like OpenCode's bus events (reference §9).</summary>
public sealed record StoreEvent(string Type, JsonObject Properties);

/// <summary>Filters for <see cref="SessionStore.ListSessions"/>; the same meaning as OpenCode's
/// <c>GET /session</c>, plus <see cref="IncludeArchived"/>.</summary>
public sealed record SessionListQuery(string? Search = null, int? Limit = null, bool Roots = false, long? Start = null, bool IncludeArchived = false);

/// <summary>
/// Sessions, messages and parts in OpenCode 1.1.65's JSON layout. Objects are kept as ordered
/// <see cref="JsonObject"/>s so every field we do not model survives a read and a write, in its place.
/// Writes of one session are serialized across threads and processes (<see cref="StoreLock"/>); reads
/// take no lock because every file is replaced atomically.
/// </summary>
public sealed class SessionStore
{
    /// <summary>The OpenCode release whose on-disk format we write; stored as each new session's <c>version</c>.</summary>
    public const string FormatVersion = "1.1.65";

    public const int MaxTitleLength = 1024;

    private static readonly string[] Adjectives =
    [
        "brave", "calm", "clever", "cosmic", "crisp", "curious", "eager", "gentle", "glowing", "happy", "hidden", "jolly", "kind", "lucky",
        "mighty", "misty", "neon", "nimble", "playful", "proud", "quick", "quiet", "shiny", "silent", "stellar", "sunny", "swift", "tidy", "witty",
    ];

    private static readonly string[] Nouns =
    [
        "cabin", "cactus", "canyon", "circuit", "comet", "eagle", "engine", "falcon", "forest", "garden", "harbor", "island", "knight", "lagoon",
        "meadow", "moon", "mountain", "nebula", "orchid", "otter", "panda", "pixel", "planet", "river", "rocket", "sailor", "squid", "star", "tiger",
        "wizard", "wolf",
    ];

    private readonly TimeProvider time;
    private readonly Action<string> warn;
    private readonly SessionIndex index;
    private readonly StoreLock locks;
    private readonly WriteJournal journal;
    private readonly StoreReadCache readCache;

    /// <param name="readCacheBytes">How many bytes of parsed message and part files to keep between reads (see
    /// <see cref="StoreReadCache"/>); 0 keeps none, which suits a one-shot CLI verb that reads each file once.</param>
    public SessionStore(StoreLayout layout, TimeProvider? time = null, Action<string>? warn = null, long readCacheBytes = StoreReadCache.DefaultCapBytes)
    {
        Layout = layout;
        this.time = time ?? TimeProvider.System;
        this.warn = warn ?? (_ => { });
        index = new SessionIndex(this.warn);
        locks = new StoreLock(layout.LockDir);
        journal = WriteJournal.For(layout, this.warn);
        readCache = new StoreReadCache(readCacheBytes, StoreReadCache.DefaultMaxFileBytes, this.warn);
    }

    internal StoreReadCache ReadCache => readCache;

    /// <summary>Raised after each change is durable, in the order changes happened for one session.</summary>
    public event Action<StoreEvent>? Changed;

    /// <summary>Optional hook run before a message is created (not replaced); the revert service uses it to clean
    /// up a reverted session before its next message, as OpenCode's <c>SessionRevert.cleanup</c>.</summary>
    public ISessionWriteHook? WriteHook { get; set; }

    /// <summary>Optional hook run after each message write (see <see cref="IMessageWrittenHook"/>).</summary>
    public IMessageWrittenHook? MessageWrittenHook { get; set; }

    public StoreLayout Layout { get; }

    public long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>How often <see cref="SweepStaleTemps"/> walks the store at most, by default.</summary>
    public static readonly TimeSpan TempSweepInterval = TimeSpan.FromHours(24);

    /// <summary>Creates <c>storage/</c> and its migration marker (so OpenCode 1.1.65 runs no migration over
    /// our layout), brings back what a crash of the machine lost, and removes staging folders a crashed bulk write
    /// left. Costs the same on a store of any size: temp files beside their targets are swept separately
    /// (<see cref="SweepStaleTemps"/>), since finding them is a walk of every folder.</summary>
    public void Initialize()
    {
        AtomicFile.CreateDirectoryDurably(Layout.Storage);
        if (!File.Exists(Layout.MigrationFile))
        {
            AtomicFile.Write(Layout.MigrationFile, "2"u8);
        }

        // Before anything reads the store: writes a crash of the machine lost come back from their journal.
        WriteJournal.Recover(Layout, out int abandoned, warn);
        AbandonedJournalsAtStart = abandoned;
        ReportRemoved(BulkWriter.CleanStale(Layout));
    }

    /// <summary>How many journals of processes that died without closing them <see cref="Initialize"/> found: a sign
    /// that temp files were left mid-write, worth a sweep now rather than at the next daily one.</summary>
    public int AbandonedJournalsAtStart { get; private set; }

    /// <summary>
    /// Removes the temp files crashed writers left beside their targets, walking every folder of <c>storage/</c>: at
    /// most once per <paramref name="minInterval"/> per data dir (the walk's time is kept in a marker file), because a
    /// store of 10,000 sessions is 200,000 folders. A server runs it in the background after <c>initialize</c>; readers
    /// never see temp files meanwhile, so a stray one costs only its bytes. Returns how many went.
    /// </summary>
    public int SweepStaleTemps(TimeSpan minInterval, CancellationToken ct = default)
    {
        string marker = Path.Combine(Layout.SideDir, "temp-sweep");
        if (minInterval > TimeSpan.Zero && File.Exists(marker) && DateTime.UtcNow - File.GetLastWriteTimeUtc(marker) < minInterval)
        {
            return 0;
        }

        int removed = AtomicFile.CleanStaleTemps(Layout.Storage, ct);
        Directory.CreateDirectory(Layout.SideDir);
        File.WriteAllBytes(marker, []); // not durable: at worst the next start sweeps again
        ReportRemoved(removed);
        return removed;
    }

    private void ReportRemoved(int removed)
    {
        if (removed > 0)
        {
            warn($"removed {removed} stale temp file(s) left by an interrupted write");
        }
    }

    /// <summary>Takes the write lock of one session. Everything that changes a session's files holds it.</summary>
    public Task<IDisposable> LockSessionAsync(string sessionId, CancellationToken ct) => locks.AcquireAsync(sessionId, ct);

    // ---------------------------------------------------------------- sessions

    public async Task<JsonObject> CreateSessionAsync(ProjectInfo project, string? title, string? parentId, CancellationToken ct)
    {
        if (title is not null)
        {
            CheckTitle(title);
        }

        if (parentId is not null)
        {
            CheckId(parentId, Identifier.Session, "parentID");
            var (_, parentProject) = ReadSession(parentId);
            if (parentProject != project.Id)
            {
                // Children are found (session/children, the recursive delete) among their parent's project's sessions,
                // as OpenCode finds them; a child filed elsewhere would be invisible to both.
                throw new InvalidInputException("parentID", $"belongs to project {parentProject}, not to this project ({project.Id}); a child session must be in its parent's project");
            }
        }

        ProjectResolver.EnsureProjectFile(Layout, project, Now);
        long now = Now;
        string id = Identifier.Create(Identifier.Session, descending: true, now);

        // Key order of OpenCode's createNext: id, slug, version, projectID, directory, parentID?, title, time.
        var info = new JsonObject
        {
            ["id"] = id,
            ["slug"] = NewSlug(),
            ["version"] = FormatVersion,
            ["projectID"] = project.Id,
            ["directory"] = project.Directory,
        };
        if (parentId is not null)
        {
            info["parentID"] = parentId;
        }

        info["title"] = title ?? $"{(parentId is null ? "New session" : "Child session")} - {OpenCodeSchema.Iso(now)}";
        info["time"] = new JsonObject { ["created"] = now, ["updated"] = now };

        using (await LockSessionAsync(id, ct).ConfigureAwait(false))
        {
            WriteSessionFile(project.Id, info);
        }

        Publish("session.created", new JsonObject { ["info"] = info.DeepClone() });
        return info;
    }

    /// <summary>OpenCode's random <c>adjective-noun</c> slug.</summary>
    public static string NewSlug() => $"{Adjectives[Random.Shared.Next(Adjectives.Length)]}-{Nouns[Random.Shared.Next(Nouns.Length)]}";

    /// <summary>Writes a complete session object as it is (import and fork build their own). The caller holds the lock.</summary>
    public void WriteSessionFile(string projectId, JsonObject info)
    {
        string id = info["id"]!.GetValue<string>();
        string file = Layout.SessionFile(projectId, id);
        AtomicFile.Write(file, JsJson.ToBytes(info));
        index.Put(projectId, file, info);
    }

    /// <summary>For a one-shot CLI verb: at exit, the journal goes to the helper <paramref name="handOff"/> starts instead
    /// of being flushed in place (see <see cref="WriteJournal.ExitHandOff"/>).</summary>
    public void HandOffJournalAtExit(Func<string, int, bool> handOff) => journal.ExitHandOff = handOff;

    /// <summary>A writer for a fork's or an import's files, made durable through this store's write journal.</summary>
    public BulkWriter NewBulkWriter() => new(Layout, journal);

    /// <summary>Publishes <paramref name="bulk"/>'s files, then the session file that makes them visible, durably
    /// (see <see cref="BulkWriter.Commit"/>).</summary>
    public void CommitBulk(BulkWriter bulk, string projectId, JsonObject info)
    {
        string file = Layout.SessionFile(projectId, info["id"]!.GetValue<string>());
        bulk.Commit(file, JsJson.ToBytes(info));
        index.Put(projectId, file, info);
    }

    public JsonObject GetSession(string sessionId) => ReadSession(sessionId).Info;

    /// <summary>The session and the project folder it is filed under.</summary>
    public (JsonObject Info, string ProjectId) ReadSession(string sessionId)
    {
        CheckId(sessionId, Identifier.Session, "sessionID");
        string? projectId = LocateSession(sessionId) ?? throw NotFoundException.ForSession(sessionId);
        string file = Layout.SessionFile(projectId, sessionId);
        return (ReadObject(file) ?? throw NotFoundException.ForSession(sessionId), projectId);
    }

    /// <summary>Throws unless the session exists; cheaper than <see cref="ReadSession"/> (its file is not read).</summary>
    private void RequireSession(string sessionId)
    {
        CheckId(sessionId, Identifier.Session, "sessionID");
        _ = LocateSession(sessionId) ?? throw NotFoundException.ForSession(sessionId);
    }

    public bool SessionExists(string sessionId) => Identifier.IsValid(sessionId, Identifier.Session) && LocateSession(sessionId) is not null;

    /// <summary>Sessions of one project, newest <c>time.updated</c> first (ties: newest created first).</summary>
    public IReadOnlyList<JsonObject> ListSessions(string projectId, SessionListQuery q) =>
        SelectSessions(projectId, q).Select(e => e.Info).ToList();

    /// <summary>
    /// The same list as <see cref="ListSessions"/>, each session as compact UTF-8 JSON (System.Text.Json's
    /// default escaping), cached per file version so a server can answer a warm list without serializing.
    /// </summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> ListSessionsUtf8(string projectId, SessionListQuery q) =>
        SelectSessions(projectId, q).Select(e => (ReadOnlyMemory<byte>)e.Utf8).ToList();

    // The index keeps its snapshot in list order, so filters keep it and no call sorts.
    private IEnumerable<SessionIndex.Entry> SelectSessions(string projectId, SessionListQuery q)
    {
        IEnumerable<SessionIndex.Entry> all = index.Get(projectId, Layout.SessionDir(projectId));
        if (q.Roots)
        {
            all = all.Where(e => e.Info["parentID"] is null);
        }

        if (!q.IncludeArchived)
        {
            all = all.Where(e => e.Info["time"]?["archived"] is null);
        }

        if (q.Start is long start)
        {
            all = all.Where(e => e.Updated >= start);
        }

        if (!string.IsNullOrEmpty(q.Search))
        {
            all = all.Where(e => e.Info["title"] is JsonValue t && t.GetValueKind() == JsonValueKind.String
                && t.GetValue<string>().Contains(q.Search, StringComparison.OrdinalIgnoreCase));
        }

        return q.Limit is int limit ? all.Take(limit) : all;
    }

    public IReadOnlyList<JsonObject> Children(string sessionId)
    {
        var (_, projectId) = ReadSession(sessionId);
        return index.Get(projectId, Layout.SessionDir(projectId))
            .Select(e => e.Info)
            .Where(s => s["parentID"] is JsonValue p && p.GetValueKind() == JsonValueKind.String && p.GetValue<string>() == sessionId)
            .OrderBy(s => (string?)s["id"], StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Read-modify-write of a session under its lock, from the file on disk (never a cached copy, which
    /// another process may have outdated). Publishes <c>session.updated</c>.</summary>
    public async Task<JsonObject> UpdateSessionAsync(string sessionId, Action<JsonObject> mutate, CancellationToken ct)
    {
        CheckId(sessionId, Identifier.Session, "sessionID");
        JsonObject info;
        using (await LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            (info, string projectId) = ReadSession(sessionId);
            mutate(info);
            WriteSessionFile(projectId, info);
        }

        Publish("session.updated", new JsonObject { ["info"] = info.DeepClone() });
        return info;
    }

    /// <summary>Renames and/or archives. Like OpenCode's PATCH, this does not move <c>time.updated</c>.</summary>
    public Task<JsonObject> UpdateSessionInfoAsync(string sessionId, string? title, bool? archived, CancellationToken ct)
    {
        if (title is not null)
        {
            CheckTitle(title);
        }

        return UpdateSessionAsync(sessionId, info =>
        {
            if (title is not null)
            {
                info["title"] = title;
            }

            if (archived is bool a)
            {
                var t = info["time"] as JsonObject ?? new JsonObject();
                if (a)
                {
                    t["archived"] = Now;
                }
                else
                {
                    t.Remove("archived");
                }

                info["time"] = t;
            }
        }, ct);
    }

    /// <summary>Deletes a session and, first, its children (recursively), with their messages, parts, diffs,
    /// share records and todos. The session file goes first so a crash midway never shows a half-deleted
    /// session; what remains is unreachable debris. Nothing in the user's worktree is touched. A share record is
    /// not dropped but moved to <see cref="StoreLayout.ShareDeleteDir"/>: its secret is what deletes the share on
    /// its server (OpenCode unshares on delete), which may be down right now.</summary>
    public async Task<IReadOnlyList<JsonObject>> DeleteSessionAsync(string sessionId, CancellationToken ct)
    {
        var (root, _) = ReadSession(sessionId);
        var order = new List<string>();
        CollectSubtree(sessionId, order, new HashSet<string>(StringComparer.Ordinal));
        var deleted = new List<JsonObject>();
        foreach (var id in order)
        {
            ct.ThrowIfCancellationRequested();
            JsonObject info;
            using (await LockSessionAsync(id, ct).ConfigureAwait(false))
            {
                string? projectId = LocateSession(id);
                if (projectId is null)
                {
                    continue; // removed meanwhile by another process
                }

                info = ReadObject(Layout.SessionFile(projectId, id)) ?? root;
                BeforeRemoval();
                AtomicFile.Delete(Layout.SessionFile(projectId, id));
                index.Remove(projectId, id);
                DeleteMessagesOf(id);
                AtomicFile.Delete(Layout.SessionDiffFile(id));
                RetireShareRecord(id);
                AtomicFile.Delete(Layout.TodoFile(id));
                AtomicFile.Delete(Layout.ForkOriginFile(id));
            }

            deleted.Add(info);
            Publish("session.deleted", new JsonObject { ["info"] = info.DeepClone() });
        }

        return deleted;
    }

    /// <summary>Moves a deleted session's share record into the share-delete queue (durably, before the record is
    /// removed), so the remote share is deleted even if no one can reach its server now.</summary>
    private void RetireShareRecord(string sessionId)
    {
        string record = Layout.SessionShareFile(sessionId);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(record);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return; // not shared
        }

        AtomicFile.Write(Layout.ShareDeleteFile(sessionId), bytes);
        AtomicFile.Delete(record);
    }

    private void CollectSubtree(string id, List<string> order, HashSet<string> seen)
    {
        if (!seen.Add(id))
        {
            return; // a parentID cycle in a hand-edited store must not loop forever
        }

        foreach (var child in Children(id))
        {
            CollectSubtree(child["id"]!.GetValue<string>(), order, seen);
        }

        order.Add(id);
    }

    private void DeleteMessagesOf(string sessionId)
    {
        string dir = Layout.MessageDir(sessionId);
        if (!Directory.Exists(dir))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(dir, "*.json"))
        {
            string messageId = Path.GetFileNameWithoutExtension(file);
            if (Identifier.IsValid(messageId, Identifier.Message))
            {
                DeleteDirectory(Layout.PartDir(messageId));
            }
        }

        DeleteDirectory(dir);
    }

    // ---------------------------------------------------------------- messages

    /// <summary>A session's messages with their parts, oldest first, optionally only the last <paramref name="limit"/>
    /// before the message <paramref name="before"/>. The objects are shared with the read cache (see
    /// <see cref="StoreReadCache"/>): read them, serialize them, never change them (DeepClone first).</summary>
    public IReadOnlyList<MessageWithParts> ListMessages(string sessionId, int? limit = null, string? before = null)
    {
        _ = ReadSession(sessionId);
        if (before is not null)
        {
            CheckId(before, Identifier.Message, "before");
        }

        using var root = FileStamps.OpenRoot(Layout.Storage);
        var infos = SortedMessageEntries(root, sessionId);
        if (before is not null)
        {
            int cut = infos.FindIndex(m => m.Id == before);
            if (cut < 0)
            {
                throw NotFoundException.ForMessage(before);
            }

            infos = infos[..cut];
        }

        if (limit is int n && infos.Count > n)
        {
            infos = infos[^n..];
        }

        return WithParts(root, infos);
    }

    /// <summary><see cref="ListMessages"/> without the session check, for callers that read the session already.
    /// Shared objects: never change them.</summary>
    public List<MessageWithParts> ReadMessagesShared(string sessionId)
    {
        using var root = FileStamps.OpenRoot(Layout.Storage);
        return WithParts(root, SortedMessageEntries(root, sessionId));
    }

    /// <summary><see cref="ReadMessageInfos"/> from the read cache. Shared objects: never change them.</summary>
    public List<JsonObject> ReadMessageInfosShared(string sessionId)
    {
        using var root = FileStamps.OpenRoot(Layout.Storage);
        return SortedMessageEntries(root, sessionId).ConvertAll(e => e.Value);
    }

    /// <summary><see cref="ReadParts"/> from the read cache. Shared objects: never change them.</summary>
    public IReadOnlyList<JsonObject> ReadPartsShared(string messageId) => ReadPartsShared(messageId, out _);

    /// <summary>The same, with the parts' file sizes added up (what a reader ahead of a writer holds in memory).</summary>
    public IReadOnlyList<JsonObject> ReadPartsShared(string messageId, out long bytes)
    {
        using var root = FileStamps.OpenRoot(Layout.Storage);
        return SortedParts(root, Layout.PartDir(messageId), out bytes);
    }

    /// <summary>Whether parsed files are kept between reads (a server); a one-shot CLI verb keeps none.</summary>
    public bool CachesReads => readCache.CapBytes > 0;

    /// <summary>A store file parsed into a document (see <see cref="ReadPartDocuments"/>), with its sort keys.</summary>
    public readonly record struct StoredDocument(JsonDocument Document, string? Id, long Created, int Length);

    /// <summary>
    /// The parts of a message as parsed documents in id order, past the read cache, with their file sizes added up:
    /// for a one-pass writer (the CLI's export), where building nodes only to write them out again cost as much as
    /// the reads. The caller disposes them. An unreadable file is skipped with a warning, as on every other read.
    /// </summary>
    public List<JsonDocument> ReadPartDocuments(string messageId, out long bytes)
    {
        var read = ReadDocuments(Layout.PartDir(messageId), parallel: false);
        read.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        bytes = read.Sum(d => (long)d.Length);
        return read.ConvertAll(r => r.Document);
    }

    /// <summary>The messages of a session as parsed documents, in <see cref="CompareMessages"/>'s order, past the read
    /// cache (as <see cref="ReadPartDocuments"/>). The caller disposes them.</summary>
    public List<StoredDocument> ReadMessageDocuments(string sessionId)
    {
        var read = ReadDocuments(Layout.MessageDir(sessionId), parallel: true);
        read.Sort(static (a, b) =>
        {
            int c = a.Created.CompareTo(b.Created);
            return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
        });
        return read;
    }

    private List<StoredDocument> ReadDocuments(string dir, bool parallel)
    {
        if (ListJsonFiles(dir) is not { } paths)
        {
            return [];
        }

        var read = new StoredDocument?[paths.Count];
        IoParallel.For(paths.Count, i => read[i] = ReadDocument(paths[i]), sequentialBelow: parallel ? StoreReadCache.ParallelThreshold : int.MaxValue);
        var list = new List<StoredDocument>(read.Length);
        foreach (var d in read)
        {
            if (d is { } doc)
            {
                list.Add(doc);
            }
        }

        return list;
    }

    private StoredDocument? ReadDocument(string path)
    {
        if (ReadBytes(path) is not { } file)
        {
            return null; // removed since the listing
        }

        JsonDocument doc;
        try
        {
            doc = JsJson.ParseDocument(file);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw new JsonException(NotAnObject);
            }
        }
        catch (JsonException ex)
        {
            warn($"skipping {Corrupt(path, file, ex).Message}");
            return null;
        }

        var root = doc.RootElement;
        string? id = root.TryGetProperty("id"u8, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        // Created(JsonObject)'s reading: a number, truncated; anything else is 0.
        long created = root.TryGetProperty("time"u8, out var t) && t.ValueKind == JsonValueKind.Object
            && t.TryGetProperty("created"u8, out var c) && c.ValueKind == JsonValueKind.Number && c.TryGetDouble(out double ms) ? (long)ms : 0;
        return new StoredDocument(doc, id, created, file.Length);
    }

    /// <summary>The <c>*.json</c> files of a folder, as paths; null when it does not exist.</summary>
    internal static IReadOnlyList<string>? ListJsonFiles(string dir)
    {
        if (Native.IsLinux)
        {
            return Native.ListFiles(dir, ".json"u8) is { } names ? names.ConvertAll(n => Path.Join(dir, n)) : null;
        }

        try
        {
            return Directory.GetFiles(dir, "*.json");
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>A store file's bytes; null when it is gone.</summary>
    private static byte[]? ReadBytes(string path)
    {
        try
        {
            return Native.IsLinux ? Native.ReadFile(path) : File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    // CompareMessages's order (created, then id), with the keys the cache read once per file.
    private List<StoreReadCache.Entry> SortedMessageEntries(StampRoot root, string sessionId)
    {
        var list = readCache.ReadDir(root, Layout.MessageDir(sessionId));
        list.Sort(static (a, b) =>
        {
            int c = a.Created.CompareTo(b.Created);
            return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
        });
        return list;
    }

    private JsonObject[] SortedParts(StampRoot root, string partDir) => SortedParts(root, partDir, out _);

    private JsonObject[] SortedParts(StampRoot root, string partDir, out long bytes)
    {
        var parts = readCache.ReadDir(root, partDir);
        if (parts.Count > 1)
        {
            parts.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        }

        var values = new JsonObject[parts.Count];
        bytes = 0;
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = parts[i].Value;
            bytes += parts[i].Length;
        }

        return values;
    }

    private List<MessageWithParts> WithParts(StampRoot root, List<StoreReadCache.Entry> infos)
    {
        var result = new MessageWithParts[infos.Count];
        void One(int i)
        {
            var info = infos[i];
            info.PartDir ??= Layout.PartDir(info.Id ?? string.Empty);
            result[i] = new MessageWithParts(info.Value, SortedParts(root, info.PartDir));
        }

        // Thousands of part folders (a fork, a long session's first list) are most of the reading: on every core.
        IoParallel.For(infos.Count, One, sequentialBelow: StoreReadCache.ParallelThreshold);
        return [.. result];
    }

    public MessageWithParts GetMessage(string sessionId, string messageId)
    {
        _ = ReadSession(sessionId);
        CheckId(messageId, Identifier.Message, "messageID");
        var info = ReadObject(Layout.MessageFile(sessionId, messageId)) ?? throw NotFoundException.ForMessage(messageId);
        return new MessageWithParts(info, ReadParts(messageId));
    }

    /// <summary>Message infos of a session ordered by (time.created, id), as OpenCode orders them.
    /// Unreadable files are reported and skipped.</summary>
    public List<JsonObject> ReadMessageInfos(string sessionId)
    {
        var list = ReadObjectsIn(Layout.MessageDir(sessionId));
        list.Sort(CompareMessages);
        return list;
    }

    /// <summary>Parts of a message ordered by id.</summary>
    public IReadOnlyList<JsonObject> ReadParts(string messageId)
    {
        var list = ReadObjectsIn(Layout.PartDir(messageId));
        list.Sort((a, b) => string.CompareOrdinal((string?)a["id"], (string?)b["id"]));
        return list;
    }

    /// <summary>Every readable <c>.json</c> object in a folder (none when it does not exist); unreadable files are
    /// reported and skipped.</summary>
    private List<JsonObject> ReadObjectsIn(string dir)
    {
        var list = new List<JsonObject>();
        if (!Directory.Exists(dir))
        {
            return list;
        }

        var files = Directory.GetFiles(dir, "*.json");
        // A long session's message folder: parsing dominates, so read on every core (callers sort afterwards).
        var read = new JsonObject?[files.Length];
        IoParallel.For(files.Length, i => read[i] = TryReadData(files[i]), sequentialBelow: StoreReadCache.ParallelThreshold);
        foreach (var o in read)
        {
            if (o is not null)
            {
                list.Add(o);
            }
        }

        return list;
    }

    /// <summary>The session that the existing parts of <paramref name="messageId"/> name, if any (the part folder is
    /// keyed by the message id alone). Costs one stat when the message has no part folder, which is the case for
    /// every new message.</summary>
    public string? PartOwner(string messageId)
    {
        string dir = Layout.PartDir(messageId);
        if (!Directory.Exists(dir))
        {
            return null;
        }

        foreach (var file in Directory.EnumerateFiles(dir, "*.json"))
        {
            if (TryReadData(file)?["sessionID"] is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            {
                return v.GetValue<string>();
            }
        }

        return null;
    }

    public static int CompareMessages(JsonObject a, JsonObject b)
    {
        int c = Created(a).CompareTo(Created(b));
        return c != 0 ? c : string.CompareOrdinal((string?)a["id"], (string?)b["id"]);
    }

    /// <summary>Creates or replaces a message. A missing id is assigned (ascending). A new message moves the
    /// session's <c>time.updated</c>, as a new prompt does in OpenCode.</summary>
    public async Task<JsonObject> UpdateMessageAsync(JsonObject info, CancellationToken ct)
    {
        if (!info.ContainsKey("id")) // an explicit null is left for validation to refuse (Insert would throw on the existing key)
        {
            info.Insert(0, "id", Identifier.Ascending(Identifier.Message));
        }

        OpenCodeSchema.ValidateMessage(info, "info");
        string sessionId = info["sessionID"]!.GetValue<string>();
        string messageId = info["id"]!.GetValue<string>();
        JsonObject? touched = null;
        for (bool hookRan = false; ; hookRan = true)
        {
            using (await LockSessionAsync(sessionId, ct).ConfigureAwait(false))
            {
                string file = Layout.MessageFile(sessionId, messageId);
                if (File.Exists(file))
                {
                    // A rewrite (an assistant message's tokens, its finish): the session only has to exist, as for a part.
                    RequireSession(sessionId);
                    journal.Write([(file, JsJson.ToBytes(info))]);
                    break;
                }

                var (session, projectId) = ReadSession(sessionId);
                // Rare (a reverted session's next message): the hook runs outside the lock, then the write starts over.
                if (hookRan || WriteHook is not { } hook || !hook.NeedsBeforeNewMessage(session))
                {
                    touched = WriteNewMessage(info, file, session, projectId);
                    break;
                }
            }

            await WriteHook!.BeforeNewMessageAsync(sessionId, messageId, ct).ConfigureAwait(false);
        }

        Publish("message.updated", new JsonObject { ["info"] = info.DeepClone() });
        if (touched is not null)
        {
            Publish("session.updated", new JsonObject { ["info"] = touched.DeepClone() });
        }

        if (MessageWrittenHook is { } written)
        {
            await written.AfterMessageWrittenAsync(info, ct).ConfigureAwait(false);
        }

        return info;
    }

    /// <summary>Writes a new message under its session's lock and moves the session's <c>time.updated</c>, as a new
    /// prompt does in OpenCode; returns the session so touched.</summary>
    private JsonObject WriteNewMessage(JsonObject info, string file, JsonObject session, string projectId)
    {
        string sessionId = info["sessionID"]!.GetValue<string>();
        string messageId = info["id"]!.GetValue<string>();
        if (PartOwner(messageId) is { } owner && owner != sessionId)
        {
            // storage/part/<messageID>/ is keyed by the message id alone: a second session reusing the id would
            // see (and on delete, remove) the first session's parts.
            throw new OpenCodeException(ErrorKind.Conflict, $"Message {messageId} already belongs to session {owner}: message ids must be unique across sessions.");
        }

        var t = session["time"] as JsonObject ?? new JsonObject();
        t["updated"] = Math.Max(Now, Updated(session));
        session["time"] = t;
        // One journalled batch for both files: an acknowledged new message costs one flush of the journal.
        // The message is renamed first, so a crash in between leaves it with an older time.updated.
        string sessionFile = Layout.SessionFile(projectId, sessionId);
        byte[] sessionBytes = JsJson.ToBytes(session);
        long[] stamps = journal.Write([(file, JsJson.ToBytes(info)), (sessionFile, sessionBytes)]);
        index.Put(projectId, sessionFile, session, new DateTime(stamps[1], DateTimeKind.Utc), sessionBytes.Length);
        return session;
    }

    /// <summary>Creates or replaces a part of any type. Its message must exist in the session the part names,
    /// so a part cannot be slipped under another session's message.</summary>
    public async Task<JsonObject> UpdatePartAsync(JsonObject part, string? delta, CancellationToken ct)
    {
        if (!part.ContainsKey("id")) // likewise: an explicit null is refused, not replaced
        {
            part.Insert(0, "id", Identifier.Ascending(Identifier.Part));
        }

        OpenCodeSchema.ValidatePart(part, "part");
        string sessionId = part["sessionID"]!.GetValue<string>();
        string messageId = part["messageID"]!.GetValue<string>();
        string partId = part["id"]!.GetValue<string>();
        using (await LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            // The hot path of a streaming agent: the session only has to exist (no read and parse of its file).
            RequireSession(sessionId);
            if (!File.Exists(Layout.MessageFile(sessionId, messageId)))
            {
                throw NotFoundException.ForMessage(messageId);
            }

            journal.Write([(Layout.PartFile(messageId, partId), JsJson.ToBytes(part))]);
        }

        var props = new JsonObject { ["part"] = part.DeepClone() };
        if (delta is not null)
        {
            props["delta"] = delta;
        }

        Publish("message.part.updated", props);
        return part;
    }

    public async Task RemoveMessageAsync(string sessionId, string messageId, CancellationToken ct)
    {
        CheckId(messageId, Identifier.Message, "messageID");
        using (await LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            _ = ReadSession(sessionId);
            string file = Layout.MessageFile(sessionId, messageId);
            if (!File.Exists(file))
            {
                throw NotFoundException.ForMessage(messageId);
            }

            // Message first: a crash after it leaves orphan parts nobody lists, never a message missing parts.
            BeforeRemoval();
            AtomicFile.Delete(file);
            DeleteDirectory(Layout.PartDir(messageId));
        }

        Publish("message.removed", new JsonObject { ["sessionID"] = sessionId, ["messageID"] = messageId });
    }

    public async Task RemovePartAsync(string sessionId, string messageId, string partId, CancellationToken ct)
    {
        CheckId(messageId, Identifier.Message, "messageID");
        CheckId(partId, Identifier.Part, "partID");
        using (await LockSessionAsync(sessionId, ct).ConfigureAwait(false))
        {
            _ = ReadSession(sessionId);
            if (!File.Exists(Layout.MessageFile(sessionId, messageId)))
            {
                throw NotFoundException.ForMessage(messageId);
            }

            BeforeRemoval();
            if (!AtomicFile.Delete(Layout.PartFile(messageId, partId)))
            {
                throw NotFoundException.ForPart(partId);
            }
        }

        Publish("message.part.removed", new JsonObject { ["sessionID"] = sessionId, ["messageID"] = messageId, ["partID"] = partId });
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Call before removing any message, part or session file: journalled writes become durable in their
    /// files first, so replaying the journal after a crash of the machine cannot bring back what was removed.</summary>
    public void BeforeRemoval() => journal.Checkpoint();

    public void Publish(string type, JsonObject properties) => Changed?.Invoke(new StoreEvent(type, properties));

    // JsJson.Long reads parsed and CLR-built numbers alike (TryGetValue<long> fails on a node built from an int).
    public static long Updated(JsonObject s) => JsJson.Long(s["time"]?["updated"]) ?? 0;

    public static long Created(JsonObject m) => JsJson.Long(m["time"]?["created"]) ?? 0;

    public static void CheckId(string? id, string prefix, string field)
    {
        if (!Identifier.IsValid(id, prefix))
        {
            throw new InvalidInputException(field, Identifier.Explain(id, prefix));
        }
    }

    private static void CheckTitle(string title)
    {
        if (title.Length > MaxTitleLength)
        {
            throw new InvalidInputException("title", $"must be at most {MaxTitleLength} characters");
        }
    }

    private string? LocateSession(string sessionId)
    {
        if (index.ProjectOf(sessionId) is { } known && File.Exists(Layout.SessionFile(known, sessionId)))
        {
            return known;
        }

        if (!Directory.Exists(Layout.SessionRoot))
        {
            return null;
        }

        foreach (var dir in Directory.EnumerateDirectories(Layout.SessionRoot))
        {
            string projectId = Path.GetFileName(dir);
            if (StoreLayout.IsValidProjectId(projectId) && File.Exists(Path.Combine(dir, sessionId + ".json")))
            {
                return projectId;
            }
        }

        return null;
    }

    /// <summary>Reads a store object; null when the file does not exist. A file that exists but does not parse is
    /// a <see cref="StoreCorruptException"/> naming it.</summary>
    public static JsonObject? ReadObject(string path) => ReadObject(path, out _);

    /// <summary><see cref="ReadObject(string)"/>, with the file's length in bytes.</summary>
    public static JsonObject? ReadObject(string path, out int length)
    {
        length = 0;
        if (ReadBytes(path) is not { } bytes)
        {
            return null;
        }

        length = bytes.Length;
        try
        {
            return JsJson.ParseOwned(bytes) as JsonObject ?? throw new JsonException(NotAnObject);
        }
        catch (JsonException ex)
        {
            throw Corrupt(path, bytes, ex);
        }
    }

    private const string NotAnObject = "the file does not hold a JSON object";

    /// <summary>What a store file that does not parse (as nodes or as a document) is reported as.</summary>
    private static StoreCorruptException Corrupt(string path, byte[] bytes, JsonException ex) =>
        new(path, bytes.Length == 0 ? "it is empty" : ex.Message, ex);

    private JsonObject? TryReadData(string file)
    {
        try
        {
            return ReadObject(file);
        }
        catch (StoreCorruptException ex)
        {
            warn($"skipping {ex.Message}");
            return null;
        }
    }

    private static void DeleteDirectory(string dir)
    {
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
            Native.FsyncDirectory(Path.GetDirectoryName(dir)!);
        }
    }
}
