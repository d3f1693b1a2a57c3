using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Server;
using StreamJsonRpc;

namespace OpenCode.Rpc.Fuzz;

/// <summary>Fuzz targets: each takes arbitrary bytes and must not throw anything but the documented refusals.
/// A new target is one more entry in <see cref="All"/>.</summary>
public static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["frame"] = Frame,
        ["store"] = Store,
        ["import"] = Import,
    };

    /// <summary>The import parser and validator: <c>SessionImporter.ParseJson</c>, then <c>FromJson</c> for an export
    /// document, or <c>ShareClient.Group</c> for a share's flat array (both validate every message and part).
    /// A refusal is an <see cref="OpenCodeException"/> (invalid input, limit exceeded, share empty); anything else
    /// escaping is a crash. What passes must survive the writer: the store writes it with <c>JsJson</c>.</summary>
    public static void Import(byte[] input)
    {
        // Caps small enough that a mutated count or depth reaches them, so the limit paths are fuzzed too. Built
        // per call, not in a static field: under AFL, instrumented code (the core) must not run before SharpFuzz
        // has set up its shared memory, and this class's static constructor runs before that.
        var caps = new ImportLimits(MaxBytes: 1 << 20, MaxDepth: 64, MaxMessages: 200, MaxParts: 1000);
        ImportData data;
        try
        {
            var root = SessionImporter.ParseJson(input, "fuzz", caps);
            data = root is JsonArray ? ShareClient.Group(root, "fuzz", caps) : SessionImporter.FromJson(root, caps);
        }
        catch (OpenCodeException)
        {
            return;
        }

        // Accepted data is what the importer writes to disk: every id must be a valid storage name, every object
        // must serialize, and what is written must read back.
        if (!OpenCode.Rpc.Core.Ids.Identifier.IsValid(data.SessionId, OpenCode.Rpc.Core.Ids.Identifier.Session))
        {
            throw new InvalidOperationException($"import accepted a session id that is not a safe file name: {data.SessionId}");
        }

        foreach (var m in data.Messages)
        {
            string mid = m.Info["id"]!.GetValue<string>();
            if (!OpenCode.Rpc.Core.Ids.Identifier.IsValid(mid, OpenCode.Rpc.Core.Ids.Identifier.Message))
            {
                throw new InvalidOperationException($"import accepted a message id that is not a safe file name: {mid}");
            }

            _ = JsJson.Parse(JsJson.ToBytes(m.Info));
            foreach (var p in m.Parts)
            {
                string pid = p["id"]!.GetValue<string>();
                if (!OpenCode.Rpc.Core.Ids.Identifier.IsValid(pid, OpenCode.Rpc.Core.Ids.Identifier.Part) || (string?)p["messageID"] != mid)
                {
                    throw new InvalidOperationException($"import accepted a part that is not a safe file name or not under its message: {pid}");
                }

                _ = JsJson.Parse(JsJson.ToBytes(p));
            }
        }

        _ = JsJson.Parse(JsJson.ToBytes(data.Info));
    }

    /// <summary>The frame reader over a byte stream: every frame either becomes a message or an error answer;
    /// reading never throws and always reaches the end.</summary>
    public static void Frame(byte[] input)
    {
        using var handler = new LspMessageHandler(Stream.Null, new MemoryStream(input, writable: false), RpcServer.CreateFormatter(), 1 << 20, _ => { });
        int guard = 0;
        while (handler.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is not null)
        {
            if (++guard > input.Length + 1)
            {
                throw new InvalidOperationException("the frame reader returned more messages than there are bytes");
            }
        }
    }

    /// <summary>A copy of a parsed tree whose strings are .NET strings, not views of the parsed bytes.</summary>
    private static JsonNode? Rebuild(JsonNode? n) => n switch
    {
        JsonObject o => new JsonObject(o.Select(kv => KeyValuePair.Create(kv.Key, Rebuild(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(Rebuild).ToArray()),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => JsonValue.Create(v.GetValue<string>()),
        _ => n?.DeepClone(),
    };

    /// <summary>The store's file reader: JsJson (duplicate keys refused) + OpenCode's schema. A refusal is a
    /// <see cref="JsonException"/>, <see cref="StoreCorruptException"/> or <see cref="InvalidInputException"/>.</summary>
    public static void Store(byte[] input)
    {
        JsonNode? node;
        try
        {
            node = JsJson.ParseOwned(input.ToArray()); // as the store reads a file
        }
        catch (JsonException)
        {
            return;
        }

        // Differential: strings are written straight from the parsed bytes; the same tree rebuilt from .NET strings
        // (the other writer path) must give the same bytes.
        if (!JsJson.ToBytes(node).AsSpan().SequenceEqual(JsJson.ToBytes(Rebuild(node))))
        {
            throw new InvalidOperationException("writing from parsed bytes and from decoded strings differ");
        }

        if (node is not JsonObject o)
        {
            return;
        }

        foreach (var validate in new Action<JsonObject, string>[] { OpenCodeSchema.ValidateSession, OpenCodeSchema.ValidateMessage, OpenCodeSchema.ValidatePart })
        {
            try
            {
                validate(o, "file");
            }
            catch (OpenCodeException)
            {
            }
        }

        // Round trip: what we read, we can write back byte-exact-ish (no throw).
        _ = JsJson.Parse(JsJson.ToBytes(o));
    }
}
