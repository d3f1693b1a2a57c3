using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Compaction;
using OpenCode.Rpc.Core.Json;

namespace OpenCode.Rpc.Core.Config;

/// <summary>
/// A model as OpenCode describes it to a share (the <c>model</c> sync item carries <c>Provider.Model</c> records):
/// models.dev's entry (from OpenCode's own cache of it, <c>~/.cache/opencode/models.json</c>) with opencode.json's
/// <c>provider.&lt;id&gt;.models.&lt;id&gt;</c> merged over it, shaped and defaulted as OpenCode shapes it, in its key
/// order. A model neither knows still gets the full shape (its name is its id), so a share page can show it.
/// </summary>
public static class ModelCatalog
{
    private static readonly Lock CacheGate = new();
    private static (string Path, DateTime Mtime, long Length, JsonObject? Doc)? cache;

    /// <summary>Where OpenCode keeps models.dev's catalogue: <c>$XDG_CACHE_HOME/opencode/models.json</c>, else
    /// <c>~/.cache/opencode/models.json</c>.</summary>
    public static string DefaultModelsDevCache()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "opencode", "models.json");
    }

    public static JsonObject Describe(OpenCodeConfig config, string? modelsDevCache, string providerId, string modelId)
    {
        var dev = ModelsDev(modelsDevCache)?[providerId] as JsonObject;
        var provider = Merge(dev, config.Raw["provider"]?[providerId] as JsonObject);
        var m = Merge(dev?["models"]?[modelId] as JsonObject, config.Raw["provider"]?[providerId]?["models"]?[modelId] as JsonObject);
        var limits = m["limit"] is null ? ModelLimits.Resolve(config, providerId, modelId) : null;
        var input = m["modalities"]?["input"] as JsonArray;
        var output = m["modalities"]?["output"] as JsonArray;
        var cost = m["cost"] as JsonObject;

        // Key order and defaults of OpenCode's model record (see the share fixture's "model" item).
        return new JsonObject
        {
            ["id"] = modelId,
            ["api"] = new JsonObject
            {
                ["id"] = Str(m, "id") ?? modelId,
                ["npm"] = Str(m["provider"] as JsonObject, "npm") ?? Str(provider, "npm") ?? string.Empty,
                ["url"] = Str(provider, "api") ?? string.Empty,
            },
            ["status"] = Str(m, "status") ?? "active",
            ["name"] = Str(m, "name") ?? modelId,
            ["providerID"] = providerId,
            ["capabilities"] = new JsonObject
            {
                ["temperature"] = Bool(m, "temperature", false),
                ["reasoning"] = Bool(m, "reasoning", false),
                ["attachment"] = Bool(m, "attachment", false),
                ["toolcall"] = Bool(m, "tool_call", true),
                ["input"] = Modalities(input),
                ["output"] = Modalities(output),
                ["interleaved"] = m["interleaved"]?.DeepClone() ?? false,
            },
            ["cost"] = new JsonObject
            {
                ["input"] = Num(cost?["input"]),
                ["output"] = Num(cost?["output"]),
                ["cache"] = new JsonObject { ["read"] = Num(cost?["cache_read"]), ["write"] = Num(cost?["cache_write"]) },
            },
            ["options"] = m["options"]?.DeepClone() ?? new JsonObject(),
            ["limit"] = m["limit"] is JsonObject l
                ? Limit(Num(l["context"]), l["input"] is null ? null : Num(l["input"]), Num(l["output"]))
                : Limit(limits?.Context ?? 0, limits?.Input, limits?.Output ?? 0),
            ["headers"] = m["headers"]?.DeepClone() ?? new JsonObject(),
            ["family"] = Str(m, "family") ?? string.Empty,
            ["release_date"] = Str(m, "release_date") ?? string.Empty,
            ["variants"] = m["variants"]?.DeepClone() ?? new JsonObject(),
        };
    }

    private static JsonObject Limit(JsonNode context, JsonNode? input, JsonNode output)
    {
        var o = new JsonObject { ["context"] = context };
        if (input is not null)
        {
            o["input"] = input;
        }

        o["output"] = output;
        return o;
    }

    private static JsonObject Modalities(JsonArray? list)
    {
        // No list means text only, as OpenCode assumes.
        bool Has(string kind) => list is null ? kind == "text" : list.Any(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() == kind);
        return new JsonObject { ["text"] = Has("text"), ["audio"] = Has("audio"), ["image"] = Has("image"), ["video"] = Has("video"), ["pdf"] = Has("pdf") };
    }

    /// <summary>A deep merge of <paramref name="over"/> onto a copy of <paramref name="under"/> (either may be null).</summary>
    private static JsonObject Merge(JsonObject? under, JsonObject? over)
    {
        var result = under?.DeepClone() as JsonObject ?? new JsonObject();
        if (over is null)
        {
            return result;
        }

        foreach (var (key, value) in over)
        {
            result[key] = result[key] is JsonObject a && value is JsonObject b ? Merge(a, b) : value?.DeepClone();
        }

        return result;
    }

    private static JsonNode Num(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.DeepClone() : JsonValue.Create(0);

    private static JsonObject Limit(long context, long? input, long output) => Limit(JsonValue.Create(context), input is null ? null : JsonValue.Create(input.Value), JsonValue.Create(output));

    private static bool Bool(JsonObject o, string key, bool fallback) =>
        o[key] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : fallback;

    private static string? Str(JsonObject? o, string key) =>
        o?[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>OpenCode's models.dev cache, parsed once per change of the file; null when absent or unreadable
    /// (a share then describes models from opencode.json alone).</summary>
    private static JsonObject? ModelsDev(string? path)
    {
        if (path is null)
        {
            return null;
        }

        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return null;
        }

        lock (CacheGate)
        {
            if (cache is { } c && c.Path == path && c.Mtime == info.LastWriteTimeUtc && c.Length == info.Length)
            {
                return c.Doc;
            }

            JsonObject? doc;
            try
            {
                doc = JsJson.Parse(File.ReadAllBytes(path)) as JsonObject;
            }
            catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
            {
                doc = null;
            }

            cache = (path, info.LastWriteTimeUtc, info.Length, doc);
            return doc;
        }
    }
}
