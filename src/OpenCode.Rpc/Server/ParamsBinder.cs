using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core;

namespace OpenCode.Rpc.Server;

/// <summary>
/// Binds a request's <c>params</c> to its record, strictly, and turns every binding failure into an
/// <see cref="InvalidInputException"/> that names the field: a missing required field, a wrong type, a null
/// where none is allowed, or a field the method does not know.
/// </summary>
internal static partial class ParamsBinder
{
    public static T Bind<T>(JsonElement p, JsonTypeInfo<T> info)
        where T : class
    {
        if (p.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            p = EmptyObject;
        }

        if (p.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidInputException("params", "must be an object with named fields", "Invalid params: send an object with named fields, not " + Kind(p.ValueKind) + ".");
        }

        RejectDuplicateKeys(p, string.Empty);
        try
        {
            return p.Deserialize(info) ?? throw new InvalidInputException("params", "must be an object");
        }
        catch (JsonException ex)
        {
            throw Translate(ex, info);
        }
    }

    /// <summary>A key given twice is refused, as the store refuses it in files: the binder would silently keep the
    /// last one for a record and throw a bare ArgumentException for a JsonObject field (an internal error).</summary>
    private static void RejectDuplicateKeys(JsonElement e, string at)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                HashSet<string>? seen = null;
                foreach (var prop in e.EnumerateObject())
                {
                    string field = at.Length == 0 ? prop.Name : at + "." + prop.Name;
                    if (!(seen ??= new HashSet<string>(StringComparer.Ordinal)).Add(prop.Name))
                    {
                        throw new InvalidInputException(field, "is given more than once", $"Invalid {field}: the key appears more than once.");
                    }

                    RejectDuplicateKeys(prop.Value, field);
                }

                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    RejectDuplicateKeys(item, $"{(at.Length == 0 ? "params" : at)}[{i++}]");
                }

                break;
        }
    }

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    private static InvalidInputException Translate(JsonException ex, JsonTypeInfo info)
    {
        string msg = ex.Message;
        var missing = MissingRegex().Match(msg);
        if (missing.Success)
        {
            string field = missing.Groups[1].Value;
            return new InvalidInputException(field, "is required", $"Missing required field {field}.");
        }

        var unmapped = UnmappedRegex().Match(msg);
        if (unmapped.Success)
        {
            string field = unmapped.Groups[1].Value;
            return new InvalidInputException(field, "is not a known field", $"Unknown field {field}: this method does not take it.");
        }

        var nulls = NullRegex().Match(msg);
        if (nulls.Success)
        {
            string field = nulls.Groups[1].Value;
            return new InvalidInputException(field, "must not be null", $"Invalid {field}: it must not be null.");
        }

        string path = FieldOf(ex.Path);
        // The declared type of the top-level field says what was expected; STJ's message names the parent type.
        string top = path.Split('.', '[')[0];
        var prop = info.Properties.FirstOrDefault(x => x.Name == top);
        var conv = ConvertRegex().Match(msg);
        string expected = prop is not null && top == path ? TypeWord(prop.PropertyType.FullName ?? prop.PropertyType.Name)
            : conv.Success ? TypeWord(conv.Groups[1].Value) : "another type";
        return new InvalidInputException(path, $"must be {expected}", $"Invalid {path}: expected {expected}.");
    }

    private static string FieldOf(string? jsonPath)
    {
        if (string.IsNullOrEmpty(jsonPath) || jsonPath == "$")
        {
            return "params";
        }

        return jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath.TrimStart('$');
    }

    private static string TypeWord(string clr) => clr switch
    {
        _ when clr.Contains("String", StringComparison.Ordinal) => "a string",
        _ when clr.Contains("Boolean", StringComparison.Ordinal) => "a boolean",
        _ when clr.Contains("Int", StringComparison.Ordinal) => "an integer",
        _ when clr.Contains("Double", StringComparison.Ordinal) => "a number",
        _ when clr.Contains("JsonObject", StringComparison.Ordinal) => "an object",
        _ when clr.Contains("List", StringComparison.Ordinal) || clr.Contains("[]", StringComparison.Ordinal) => "an array",
        _ => "an object",
    };

    private static string Kind(JsonValueKind k) => k switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        _ => "a " + k.ToString().ToLowerInvariant(),
    };

    [GeneratedRegex("missing required properties including: '([^']+)'")]
    private static partial Regex MissingRegex();

    [GeneratedRegex("The JSON property '([^']+)' could not be mapped")]
    private static partial Regex UnmappedRegex();

    [GeneratedRegex("property or field '([^']+)' .*doesn't allow (setting|getting) null")]
    private static partial Regex NullRegex();

    [GeneratedRegex("could not be converted to ([^ .]+(\\.[^ .]+)*)")]
    private static partial Regex ConvertRegex();
}
