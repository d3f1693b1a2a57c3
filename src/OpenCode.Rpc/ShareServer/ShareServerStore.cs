using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.ShareServer;

/// <summary>A share as the server keeps it: its secret, the session it came from, and its items by key.</summary>
internal sealed class StoredShare(string id, string secret, string sessionId)
{
    public string Id { get; } = id;

    public string Secret { get; } = secret;

    public string SessionID { get; } = sessionId;

    /// <summary>Items by key, ordinal order: the order <c>GET /data</c> returns (OpenCode's enterprise server
    /// keeps its items sorted by key string).</summary>
    public SortedDictionary<string, byte[]> Items { get; } = new(StringComparer.Ordinal);

    public Lock Gate { get; } = new();

    public bool Deleted { get; set; }

    /// <summary>The open journal (append only), or null until the first write.</summary>
    public FileStream? Journal { get; set; }

    /// <summary>Lines in the journal; compaction rewrites it when this far exceeds the item count.</summary>
    public long JournalLines { get; set; }
}

/// <summary>
/// The share server's store: plain files under its data dir. <c>shares/&lt;id&gt;/share.json</c> holds
/// <c>{id, secret, sessionID}</c> (written atomically, <see cref="AtomicFile"/>); <c>shares/&lt;id&gt;/items.jsonl</c>
/// is a journal with one <c>{type, data}</c> item per line, appended per sync batch in one write, the last line of a
/// key winning. A torn last line (a crash mid-append) is skipped on load, so a batch is either there or not. When the
/// journal holds far more lines than items it is compacted: rewritten atomically with one line per item. fsync per
/// write is optional (<c>--durable</c>). Shares are cached in memory after their first read.
/// </summary>
internal sealed partial class ShareServerStore(string dataDir, bool durable) : IDisposable
{
    private readonly Dictionary<string, StoredShare?> cache = new(StringComparer.Ordinal);
    private readonly Lock cacheGate = new();

    public string DataDir { get; } = Path.GetFullPath(dataDir);

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    public static partial Regex ShareId();

    [GeneratedRegex("^[A-Za-z0-9_]{1,100}$")]
    private static partial Regex ObjectId();

    private string SharesDir => Path.Combine(DataDir, "shares");

    private string ShareDir(string id) => Path.Combine(SharesDir, id);

    /// <summary>Creates a share for a session. The id is the session id's last 8 characters, as OpenCode's server
    /// makes it; when that is taken, 8 random characters.</summary>
    public StoredShare Create(string sessionId)
    {
        lock (cacheGate)
        {
            string id = sessionId.Length >= 8 ? sessionId[^8..] : sessionId;
            while (!ShareId().IsMatch(id) || Get(id) is not null || Directory.Exists(ShareDir(id)))
            {
                id = RandomId();
            }

            var share = new StoredShare(id, Guid.NewGuid().ToString(), sessionId);
            var meta = new JsonObject { ["id"] = id, ["secret"] = share.Secret, ["sessionID"] = sessionId };
            AtomicFile.CreateDirectoryDurably(ShareDir(id));
            AtomicFile.Write(Path.Combine(ShareDir(id), "share.json"), JsJson.ToBytes(meta), durable);
            cache[id] = share;
            return share;
        }
    }

    /// <summary>The share, or null when there is none (or it was deleted).</summary>
    public StoredShare? Get(string id)
    {
        lock (cacheGate)
        {
            if (cache.TryGetValue(id, out var cached))
            {
                return cached;
            }

            var loaded = Load(id);
            cache[id] = loaded;
            return loaded;
        }
    }

    /// <summary>Validates and stores sync items. Every item is checked before any is written, so a bad batch
    /// changes nothing. Returns null, or the reason the batch is refused.</summary>
    public string? Sync(StoredShare share, JsonArray data)
    {
        var staged = new List<(string Key, byte[] Bytes)>(data.Count);
        for (int i = 0; i < data.Count; i++)
        {
            if (data[i] is not JsonObject item)
            {
                return $"data[{i}] is not an object";
            }

            string? key = Key(item, out string? why);
            if (key is null)
            {
                return $"data[{i}]: {why}";
            }

            staged.Add((key, JsJson.ToBytes(item, indented: false)));
        }

        lock (share.Gate)
        {
            if (share.Deleted)
            {
                return null;
            }

            Append(share, staged);
            foreach (var (key, bytes) in staged)
            {
                share.Items[key] = bytes;
            }

            if (share.JournalLines > 1000 && share.JournalLines > 4L * share.Items.Count)
            {
                Compact(share);
            }
        }

        return null;
    }

    public void Dispose()
    {
        lock (cacheGate)
        {
            foreach (var share in cache.Values)
            {
                if (share is not null)
                {
                    lock (share.Gate)
                    {
                        share.Journal?.Dispose();
                        share.Journal = null;
                    }
                }
            }
        }
    }

    private string JournalFile(string id) => Path.Combine(ShareDir(id), "items.jsonl");

    /// <summary>Appends a batch as one write (caller holds the share's gate).</summary>
    private void Append(StoredShare share, List<(string Key, byte[] Bytes)> staged)
    {
        share.Journal ??= new FileStream(JournalFile(share.Id), new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            BufferSize = 0,
        });
        share.Journal.Write(Line(staged.Select(x => x.Bytes)));
        if (durable)
        {
            share.Journal.Flush(flushToDisk: true);
        }

        share.JournalLines += staged.Count;
    }

    /// <summary>One journal line: the items as a JSON array, then a newline. A batch is one line, so a crash
    /// mid-append tears only that line and the batch is either wholly there or not.</summary>
    private static byte[] Line(IEnumerable<byte[]> items)
    {
        var list = items as ICollection<byte[]> ?? items.ToList();
        var buf = new byte[list.Sum(b => b.Length + 1) + 2];
        int at = 0;
        buf[at++] = (byte)'[';
        foreach (var bytes in list)
        {
            if (at > 1)
            {
                buf[at++] = (byte)',';
            }

            bytes.CopyTo(buf, at);
            at += bytes.Length;
        }

        buf[at++] = (byte)']';
        buf[at++] = (byte)'\n';
        return buf.AsSpan(0, at).ToArray();
    }

    /// <summary>Rewrites the journal as one line holding every item (caller holds the share's gate).</summary>
    private void Compact(StoredShare share)
    {
        share.Journal?.Dispose();
        share.Journal = null;
        AtomicFile.Write(JournalFile(share.Id), Line(share.Items.Values), durable);
        share.JournalLines = share.Items.Count;
    }

    /// <summary>Writes the flat array (sorted by key) to a buffer.</summary>
    public byte[] Data(StoredShare share)
    {
        lock (share.Gate)
        {
            int size = 2 + share.Items.Values.Sum(b => b.Length + 1);
            var buf = new byte[size];
            int at = 0;
            buf[at++] = (byte)'[';
            bool first = true;
            foreach (var bytes in share.Items.Values)
            {
                if (!first)
                {
                    buf[at++] = (byte)',';
                }

                first = false;
                bytes.CopyTo(buf, at);
                at += bytes.Length;
            }

            buf[at++] = (byte)']';
            return buf.AsSpan(0, at).ToArray();
        }
    }

    public void Delete(StoredShare share)
    {
        lock (share.Gate)
        {
            share.Deleted = true;
            share.Journal?.Dispose();
            share.Journal = null;
            lock (cacheGate)
            {
                cache[share.Id] = null;
            }

            // The meta file goes first: without it the share no longer exists, whatever is left of its items.
            AtomicFile.Delete(Path.Combine(ShareDir(share.Id), "share.json"), durable);
            try
            {
                Directory.Delete(ShareDir(share.Id), recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The key OpenCode's share server files an item under (reference §7.2, §8).</summary>
    public static string? Key(JsonObject item, out string? why)
    {
        why = null;
        string? type = item["type"] is JsonValue t && t.GetValueKind() == JsonValueKind.String ? t.GetValue<string>() : null;
        var data = item["data"];
        switch (type)
        {
            case "session":
                return data is JsonObject ? "session" : Fail("session data must be an object", out why);
            case "session_diff":
                return data is JsonArray ? "session_diff" : Fail("session_diff data must be an array", out why);
            case "model":
                return data is JsonArray ? "model" : Fail("model data must be an array", out why);
            case "message":
                return data is JsonObject m && Str(m, "id") is { } mid && ObjectId().IsMatch(mid)
                    ? "message/" + mid
                    : Fail("message data needs a valid id", out why);
            case "part":
                return data is JsonObject p && Str(p, "id") is { } pid && ObjectId().IsMatch(pid)
                    && Str(p, "messageID") is { } pm && ObjectId().IsMatch(pm)
                    ? pm + "/" + pid
                    : Fail("part data needs a valid id and messageID", out why);
            default:
                return Fail("type must be session, message, part, session_diff or model", out why);
        }
    }

    private static string? Fail(string reason, out string? why)
    {
        why = reason;
        return null;
    }

    private static string? Str(JsonObject o, string name) =>
        o[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private StoredShare? Load(string id)
    {
        if (!ShareId().IsMatch(id))
        {
            return null;
        }

        string metaFile = Path.Combine(ShareDir(id), "share.json");
        JsonObject meta;
        try
        {
            meta = JsJson.ParseObject(File.ReadAllBytes(metaFile));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException)
        {
            return null;
        }

        if (Str(meta, "secret") is not { } secret)
        {
            return null;
        }

        var share = new StoredShare(id, secret, Str(meta, "sessionID") ?? string.Empty);
        string journal = JournalFile(id);
        if (File.Exists(journal))
        {
            byte[] all;
            try
            {
                all = File.ReadAllBytes(journal);
            }
            catch (IOException)
            {
                return share;
            }

            int start = 0;
            while (start < all.Length)
            {
                int nl = Array.IndexOf(all, (byte)'\n', start);
                if (nl < 0)
                {
                    break;
                }

                var line = all.AsSpan(start, nl - start);
                start = nl + 1;
                try
                {
                    if (JsJson.Parse(line) is JsonArray batch)
                    {
                        foreach (var node in batch)
                        {
                            if (node is JsonObject item && Key(item, out _) is { } key)
                            {
                                share.Items[key] = JsJson.ToBytes(item, indented: false);
                                share.JournalLines++;
                            }
                        }
                    }
                }
                catch (JsonException)
                {
                    // An unreadable line is skipped.
                }
            }

            if (start < all.Length)
            {
                // A torn last line (a crash mid-append): its batch was never acknowledged. Cut it off so the next
                // append starts on a line of its own.
                try
                {
                    using var fs = new FileStream(journal, FileMode.Open, FileAccess.Write, FileShare.Read);
                    fs.SetLength(start);
                }
                catch (IOException)
                {
                }
            }
        }

        return share;
    }

    private static string RandomId()
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        var sb = new StringBuilder(8);
        for (int i = 0; i < 8; i++)
        {
            sb.Append(alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)]);
        }

        return sb.ToString();
    }

    /// <summary>Constant-time secret comparison.</summary>
    public static bool SecretMatches(StoredShare share, string? given) =>
        given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(share.Secret), Encoding.UTF8.GetBytes(given));
}
