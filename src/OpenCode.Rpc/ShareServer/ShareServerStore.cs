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
}

/// <summary>
/// The share server's store: plain files under its data dir. <c>shares/&lt;id&gt;/share.json</c> holds
/// <c>{id, secret, sessionID}</c>; every item is one file <c>shares/&lt;id&gt;/items/&lt;key&gt;.json</c> holding the
/// <c>{type, data}</c> object as received (the key's <c>/</c> becomes <c>~</c>). Writes are atomic (temp + rename,
/// <see cref="AtomicFile"/>); fsync per write is optional (<c>--durable</c>). Shares are cached in memory after
/// their first read.
/// </summary>
internal sealed partial class ShareServerStore(string dataDir, bool durable)
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
            AtomicFile.CreateDirectoryDurably(Path.Combine(ShareDir(id), "items"));
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

            foreach (var (key, bytes) in staged)
            {
                AtomicFile.Write(ItemFile(share.Id, key), bytes, durable);
                share.Items[key] = bytes;
            }
        }

        return null;
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

    private string ItemFile(string id, string key) => Path.Combine(ShareDir(id), "items", key.Replace('/', '~') + ".json");

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
        string items = Path.Combine(ShareDir(id), "items");
        if (Directory.Exists(items))
        {
            foreach (var file in Directory.EnumerateFiles(items, "*.json"))
            {
                string key = Path.GetFileNameWithoutExtension(file).Replace('~', '/');
                try
                {
                    byte[] bytes = File.ReadAllBytes(file);
                    if (JsJson.Parse(bytes) is JsonObject)
                    {
                        share.Items[key] = bytes;
                    }
                }
                catch (Exception ex) when (ex is IOException or JsonException or InvalidOperationException)
                {
                    // An unreadable item is skipped; the next sync of that key rewrites it.
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
