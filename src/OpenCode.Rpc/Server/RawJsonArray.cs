using System.Text.Json;
using System.Text.Json.Serialization;

namespace OpenCode.Rpc.Server;

/// <summary>
/// A JSON array whose items are already encoded. <c>session/list</c> answers with the store's cached encoding of
/// each session, so a warm list of 10,000 sessions is a copy, not 10,000 object-graph serializations.
/// </summary>
[JsonConverter(typeof(RawJsonArrayConverter))]
public sealed class RawJsonArray(IReadOnlyList<ReadOnlyMemory<byte>> items)
{
    public IReadOnlyList<ReadOnlyMemory<byte>> Items { get; } = items;
}

public sealed class RawJsonArrayConverter : JsonConverter<RawJsonArray>
{
    public override RawJsonArray Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("RawJsonArray is only ever written.");

    public override void Write(Utf8JsonWriter writer, RawJsonArray value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var item in value.Items)
        {
            // The items come from our own Utf8JsonWriter, so re-validating 10,000 of them would only cost time.
            writer.WriteRawValue(item.Span, skipInputValidation: true);
        }

        writer.WriteEndArray();
    }
}
