using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Core.Config;

/// <summary>Where config files are looked for. Injectable so tests never read the real home.</summary>
/// <param name="GlobalDir">The global config dir (<c>$XDG_CONFIG_HOME/opencode</c>, else <c>~/.config/opencode</c>).
/// Null means "no global config".</param>
/// <param name="ExtraDir"><c>$OPENCODE_CONFIG_DIR</c>: read in addition, last, as one more <c>.opencode</c> folder
/// (checked against the real 1.1.65 and 1.18.33 <c>opencode debug config</c>: it beats the project's files).</param>
public sealed record ConfigLocations(string? GlobalDir, string? ExtraDir = null)
{
    /// <summary>The locations OpenCode itself uses, from the environment.</summary>
    public static ConfigLocations FromEnvironment()
    {
        string? extra = Environment.GetEnvironmentVariable("OPENCODE_CONFIG_DIR");
        string? xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        string root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return new ConfigLocations(Path.Combine(root, "opencode"), !string.IsNullOrEmpty(extra) && Path.IsPathRooted(extra) ? extra : null);
    }

    /// <summary><paramref name="configDir"/> (an explicit <c>--config-dir</c>, which replaces both) or the environment's.</summary>
    public static ConfigLocations For(string? configDir) => configDir is { } dir ? new ConfigLocations(dir) : FromEnvironment();
}

/// <summary>A config file that exists but is not valid JSONC. Names the file and the position.</summary>
public sealed class ConfigInvalidException(string path, string reason, Exception? inner = null)
    : OpenCodeException(ErrorKind.InvalidInput, $"The config file {path} is not valid JSON: {reason}", inner)
{
    public string Path { get; } = path;

    public override IReadOnlyDictionary<string, object?> Details => new Dictionary<string, object?> { ["field"] = "config", ["path"] = Path, ["reason"] = Message };
}

/// <summary>
/// OpenCode's <c>opencode.json</c> / <c>opencode.jsonc</c> (reference §11), merged in OpenCode 1.1.65's order (the
/// project part checked against the real 1.1.65 binary's <c>opencode debug config</c>):
/// <list type="number">
/// <item>the global dir: <c>config.json</c>, <c>opencode.json</c>, <c>opencode.jsonc</c>;</item>
/// <item>the project's <c>opencode.jsonc</c> files from the worktree root down to the directory, then its
/// <c>opencode.json</c> files in the same order (so a <c>.json</c> anywhere beats a <c>.jsonc</c>);</item>
/// <item>the project's <c>.opencode/</c> folders from the directory up to the worktree root, each
/// <c>opencode.jsonc</c> then <c>opencode.json</c> (so an outer <c>.opencode</c> beats an inner one);</item>
/// <item><c>$OPENCODE_CONFIG_DIR</c>'s <c>opencode.jsonc</c> then <c>opencode.json</c> (not its <c>config.json</c>).</item>
/// </list>
/// Comments and trailing commas are allowed, as OpenCode's JSONC parser does. Only the keys we act on are typed;
/// <see cref="Raw"/> keeps the whole merged object so other features read their own keys from one place.
/// </summary>
public sealed class OpenCodeConfig
{
    private static readonly string[] FileNames = ["config.json", "opencode.json", "opencode.jsonc"];

    /// <summary>A project folder's files in merge order: OpenCode looks for <c>opencode.jsonc</c> first, so the
    /// <c>opencode.json</c> files are merged over them.</summary>
    private static readonly string[] ProjectFileNames = ["opencode.jsonc", "opencode.json"];

    private static readonly JsonDocumentOptions Options = new()
    {
        AllowTrailingCommas = true,
        CommentHandling = JsonCommentHandling.Skip,
        MaxDepth = 64,
    };

    private OpenCodeConfig(JsonObject raw, IReadOnlyList<string> sources)
    {
        Raw = raw;
        Sources = sources;
    }

    public static OpenCodeConfig Empty { get; } = new(new JsonObject(), []);

    /// <summary>The merged config: later files override earlier ones key by key (objects merge deeply).</summary>
    public JsonObject Raw { get; }

    /// <summary>The files that were read, in merge order.</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary><c>"snapshot": false</c> turns file snapshots (and so file undo) off. Default on.</summary>
    public bool Snapshot => Raw["snapshot"] is not JsonValue v || v.GetValueKind() != JsonValueKind.False;

    /// <summary>Where sharing goes when <c>enterprise.url</c> is not set.</summary>
    public const string DefaultShareBaseUrl = "https://opncd.ai";

    /// <summary>The share API base: <c>enterprise.url</c> without a trailing slash, else https://opncd.ai.</summary>
    public string ShareBaseUrl => Raw["enterprise"] is JsonObject e && e["url"] is JsonValue u && u.GetValueKind() == JsonValueKind.String
        && u.GetValue<string>().TrimEnd('/') is { Length: > 0 } url
        ? url
        : DefaultShareBaseUrl;

    /// <summary><c>share</c>: <c>"manual"</c>, <c>"auto"</c> or <c>"disabled"</c>; null when unset or not a string.</summary>
    public string? Share => Raw["share"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>The deprecated <c>"autoshare": true</c> (OpenCode maps it to <c>share: "auto"</c>).</summary>
    public bool AutoShare => Raw["autoshare"] is JsonValue v && v.GetValueKind() == JsonValueKind.True;

    /// <summary>Loads the global config, then the project's files from the worktree root down to
    /// <paramref name="directory"/> (a deeper file wins, as OpenCode's findUp order gives).</summary>
    public static OpenCodeConfig Load(ConfigLocations locations, string directory, string? worktree)
    {
        var merged = new JsonObject();
        var sources = new List<string>();
        if (locations.GlobalDir is { } global)
        {
            foreach (var name in FileNames)
            {
                MergeFile(Path.Combine(global, name), merged, sources);
            }
        }

        var dirs = ProjectDirs(directory, worktree);
        foreach (var name in ProjectFileNames)
        {
            foreach (var dir in dirs)
            {
                MergeFile(Path.Combine(dir, name), merged, sources);
            }
        }

        for (int i = dirs.Count - 1; i >= 0; i--)
        {
            foreach (var name in ProjectFileNames)
            {
                MergeFile(Path.Combine(dirs[i], ".opencode", name), merged, sources);
            }
        }

        if (locations.ExtraDir is { } extra)
        {
            foreach (var name in ProjectFileNames)
            {
                MergeFile(Path.Combine(extra, name), merged, sources);
            }
        }

        return new OpenCodeConfig(merged, sources);
    }

    /// <summary>Parses JSONC text into an object.</summary>
    public static JsonObject Parse(string text, string path)
    {
        try
        {
            return JsonNode.Parse(text, documentOptions: Options) as JsonObject
                ?? throw new ConfigInvalidException(path, "the top level is not an object");
        }
        catch (JsonException ex)
        {
            throw new ConfigInvalidException(path, ex.Message, ex);
        }
    }

    /// <summary>The project's folders from the worktree root (or the directory alone, outside git) down to the directory.</summary>
    private static List<string> ProjectDirs(string directory, string? worktree)
    {
        string dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        string? stop = worktree is null or "/" ? null : Path.TrimEndingDirectorySeparator(Path.GetFullPath(worktree));
        var chain = new List<string>();
        for (string? d = dir; d is not null; d = Path.GetDirectoryName(d))
        {
            chain.Add(d);
            if (stop is null || string.Equals(d, stop, StringComparison.Ordinal))
            {
                break; // outside git only the directory itself counts, as OpenCode's findUp stops at the worktree "/"
            }
        }

        chain.Reverse();
        return chain;
    }

    private static void MergeFile(string path, JsonObject into, List<string> sources)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (FileNotFoundException)
        {
            return;
        }
        catch (DirectoryNotFoundException)
        {
            return;
        }

        MergeDeep(into, Parse(text, path));
        sources.Add(path);
    }

    private static void MergeDeep(JsonObject target, JsonObject source)
    {
        foreach (var (key, value) in source.ToList())
        {
            if (value is JsonObject so && target[key] is JsonObject to)
            {
                MergeDeep(to, so);
            }
            else
            {
                target[key] = value?.DeepClone();
            }
        }
    }
}
