using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Server;
using StreamJsonRpc;

namespace OpenCode.Rpc.Fuzz;

/// <summary>Fuzz targets: each takes arbitrary bytes and must not throw anything but the documented refusals.
/// A new target (e.g. the import parser, on its branch) is one more entry in <see cref="All"/>.</summary>
public static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["frame"] = Frame,
        ["store"] = Store,
    };

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

    /// <summary>The store's file reader: JsJson (duplicate keys refused) + OpenCode's schema. A refusal is a
    /// <see cref="JsonException"/>, <see cref="StoreCorruptException"/> or <see cref="InvalidInputException"/>.</summary>
    public static void Store(byte[] input)
    {
        JsonNode? node;
        try
        {
            node = JsJson.Parse(input);
        }
        catch (JsonException)
        {
            return;
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
