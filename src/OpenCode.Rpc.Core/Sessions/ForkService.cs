using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>Where a fork came from. Kept in <c>&lt;data&gt;/opencode-rpc/forks/&lt;sessionID&gt;.json</c>, a side file:
/// OpenCode rewrites session files with its own schema and would drop a field it does not know, and 1.1.65 must read
/// the fork's session file unchanged.</summary>
public sealed record ForkOrigin(string SessionID, string FromSessionID, string? MessageID, bool Inclusive, long Time);

/// <summary>
/// Forks a session, per OpenCode's <c>Session.fork</c> (reference §4): the messages before <c>messageID</c> (or all),
/// each with a new ascending id, assistant <c>parentID</c> and compaction <c>tail_start_id</c> remapped, part contents
/// copied verbatim (snapshot and patch hashes stay valid: same project, same shadow repo), a root session titled by
/// <see cref="ForkedTitle"/>. Beyond OpenCode: <c>inclusive</c> keeps the chosen message too; an unknown messageID is
/// an error (OpenCode silently copies everything); reverted messages are never copied; and the fork is atomic.
/// </summary>
public sealed partial class ForkService(SessionStore store)
{
    public string ForksDir => store.Layout.ForksDir;

    /// <summary>OpenCode's getForkedTitle: <c>X</c> → <c>X (fork #1)</c>, <c>X (fork #n)</c> → <c>X (fork #n+1)</c>.</summary>
    public static string ForkedTitle(string title)
    {
        var m = ForkTitleRegex().Match(title);
        return m.Success && int.TryParse(m.Groups[2].Value, out int n) && n < int.MaxValue
            ? $"{m.Groups[1].Value} (fork #{n + 1})"
            : $"{title} (fork #1)";
    }

    public async Task<JsonObject> ForkAsync(string sessionId, string? messageId, bool inclusive, CancellationToken ct)
    {
        var (source, projectId) = store.ReadSession(sessionId);
        if (messageId is not null)
        {
            SessionStore.CheckId(messageId, Identifier.Message, "messageID");
        }

        // Shared with the read cache: every object below is cloned before it is changed.
        var messages = VisibleMessages(source, store.ReadMessagesShared(sessionId));
        int end = messages.Count;
        if (messageId is not null)
        {
            int at = messages.FindIndex(m => (string?)m.Info["id"] == messageId);
            if (at < 0)
            {
                throw NotFoundException.ForMessage(messageId);
            }

            end = inclusive ? at + 1 : at;
        }

        long now = store.Now;
        string newId = Identifier.Create(Identifier.Session, descending: true, now);
        var info = new JsonObject
        {
            ["id"] = newId,
            ["slug"] = SessionStore.NewSlug(),
            ["version"] = SessionStore.FormatVersion,
            ["projectID"] = projectId,
            ["directory"] = source["directory"]?.DeepClone() ?? string.Empty,
        };
        foreach (var key in new[] { "workspaceID", "metadata" })
        {
            if (source[key] is { } v)
            {
                info[key] = v.DeepClone();
            }
        }

        info["title"] = ForkedTitle(source["title"] is JsonValue t && t.TryGetValue(out string? title) ? title : string.Empty);
        info["time"] = new JsonObject { ["created"] = now, ["updated"] = now };

        // Ids first, in order (they must ascend as the messages do); parentID is remapped only to a message copied
        // before it, as OpenCode's incremental map does. tail_start_id may point forward, so it uses the whole map.
        var idMap = new Dictionary<string, string>(StringComparer.Ordinal);
        var plan = new (string NewId, string? Parent, string[] PartIds)[end];
        for (int i = 0; i < end; i++)
        {
            ct.ThrowIfCancellationRequested();
            var (oldInfo, oldParts) = messages[i];
            string newMsgId = Identifier.Ascending(Identifier.Message);
            idMap[(string)oldInfo["id"]!] = newMsgId;
            string? parent = oldInfo["parentID"] is JsonValue pv && pv.TryGetValue(out string? p) && idMap.TryGetValue(p, out var mapped) ? mapped : null;
            var partIds = new string[oldParts.Count];
            for (int j = 0; j < partIds.Length; j++)
            {
                partIds[j] = Identifier.Ascending(Identifier.Part);
            }

            plan[i] = (newMsgId, parent, partIds);
        }

        var origin = new JsonObject
        {
            ["sessionID"] = newId,
            ["forkedFrom"] = new JsonObject { ["sessionID"] = sessionId, ["messageID"] = messageId, ["inclusive"] = inclusive },
            ["time"] = now,
        };

        var bulk = store.NewBulkWriter();
        using (await store.LockSessionAsync(newId, ct).ConfigureAwait(false))
        {
            try
            {
                // Encoding and writing are independent per message: they run in parallel.
                bulk.WriteEach(Enumerable.Range(0, end).ToArray(), (i, w) =>
                {
                    var (oldInfo, oldParts) = messages[i];
                    var (mid, parent, partIds) = plan[i];
                    // Written as the source with its ids replaced (what DeepClone-then-assign gave, byte for byte),
                    // never changing the source objects: they are shared with the store's read cache.
                    w.Write(store.Layout.MessageFile(newId, mid), parent is not null
                        ? JsJson.ToBytesWith(oldInfo, ("id", mid), ("sessionID", newId), ("parentID", parent))
                        : JsJson.ToBytesWith(oldInfo, ("id", mid), ("sessionID", newId)));
                    for (int j = 0; j < oldParts.Count; j++)
                    {
                        var op = oldParts[j];
                        w.Write(store.Layout.PartFile(mid, partIds[j]), (string?)op["type"] == "compaction" && op["tail_start_id"] is JsonValue tv && tv.TryGetValue(out string? tail) && idMap.TryGetValue(tail, out var mappedTail)
                            ? JsJson.ToBytesWith(op, ("id", partIds[j]), ("sessionID", newId), ("messageID", mid), ("tail_start_id", mappedTail))
                            : JsJson.ToBytesWith(op, ("id", partIds[j]), ("sessionID", newId), ("messageID", mid)));
                    }

                    w.Seal(store.Layout.PartDir(mid)); // complete: into storage/ while the others are written
                }, ct);

                bulk.Write(store.Layout.ForkOriginFile(newId), JsJson.ToBytes(origin));
                store.CommitBulk(bulk, projectId, info); // the session file is the gate: published last
            }
            catch
            {
                bulk.Rollback();
                throw;
            }
        }

        store.Publish("session.created", new JsonObject { ["info"] = info.DeepClone() });
        return info;
    }

    /// <summary>The fork origin of a session, or null when it was not forked by us.</summary>
    public ForkOrigin? OriginOf(string sessionId)
    {
        if (!Identifier.IsValid(sessionId, Identifier.Session))
        {
            return null;
        }

        JsonObject? o;
        try
        {
            o = SessionStore.ReadObject(Path.Combine(ForksDir, sessionId + ".json"));
        }
        catch (StoreCorruptException)
        {
            return null;
        }

        return o is null ? null : Parse(o);
    }

    /// <summary>Every fork origin recorded in this data dir.</summary>
    public IReadOnlyList<ForkOrigin> AllOrigins()
    {
        var list = new List<ForkOrigin>();
        if (!Directory.Exists(ForksDir))
        {
            return list;
        }

        foreach (var f in Directory.EnumerateFiles(ForksDir, "*.json"))
        {
            try
            {
                if (SessionStore.ReadObject(f) is { } o && Parse(o) is { } origin)
                {
                    list.Add(origin);
                }
            }
            catch (StoreCorruptException)
            {
                // a torn side file only loses the tree link, never a session
            }
        }

        return list;
    }

    private static ForkOrigin? Parse(JsonObject o)
    {
        if (o["sessionID"] is not JsonValue s || o["forkedFrom"] is not JsonObject from || from["sessionID"] is not JsonValue fs)
        {
            return null;
        }

        return new ForkOrigin(
            s.GetValue<string>(),
            fs.GetValue<string>(),
            from["messageID"] is JsonValue mv && mv.TryGetValue(out string? mid) ? mid : null,
            from["inclusive"] is JsonValue iv && iv.TryGetValue(out bool inc) && inc,
            o["time"] is JsonValue tv && tv.TryGetValue(out long t) ? t : 0);
    }

    /// <summary>Messages a fork may copy: those before a pending revert point (the UI hides the rest; they are deleted at
    /// the next prompt). With a revert partID, that message keeps only its parts before the part.</summary>
    public static List<MessageWithParts> VisibleMessages(JsonObject session, IReadOnlyList<MessageWithParts> all)
    {
        string? revertMsg = session["revert"]?["messageID"] is JsonValue rv && rv.TryGetValue(out string? r) ? r : null;
        string? revertPart = session["revert"]?["partID"] is JsonValue pv && pv.TryGetValue(out string? rp) ? rp : null;
        var list = new List<MessageWithParts>(all.Count);
        foreach (var m in all)
        {
            string id = (string)m.Info["id"]!;
            if (revertMsg is not null && string.CompareOrdinal(id, revertMsg) >= 0)
            {
                if (revertPart is not null && id == revertMsg)
                {
                    var kept = m.Parts.Where(p => string.CompareOrdinal((string?)p["id"], revertPart) < 0).ToList();
                    list.Add(new MessageWithParts(m.Info, kept));
                }

                continue;
            }

            list.Add(m);
        }

        return list;
    }

    [GeneratedRegex(@"^(.+) \(fork #(\d+)\)$", RegexOptions.Singleline)]
    private static partial Regex ForkTitleRegex();
}
