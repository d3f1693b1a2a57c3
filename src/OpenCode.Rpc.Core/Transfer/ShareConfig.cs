using System.Text.Json;

namespace OpenCode.Rpc.Core.Transfer;

/// <summary>
/// The one config value import needs: <c>enterprise.url</c>, the share server base (reference §8, §11). Read
/// minimally from OpenCode's config files: the global <c>opencode.json</c>/<c>opencode.jsonc</c> in
/// <c>$OPENCODE_CONFIG_DIR</c> or <c>$XDG_CONFIG_HOME/opencode</c> (default <c>~/.config/opencode</c>), then the
/// project's, from the worktree root down to the directory (nearer files win). Unreadable files are skipped.
/// </summary>
public static class ShareConfig
{
    public const string DefaultBaseUrl = "https://opncd.ai";

    public static string BaseUrl(string? projectDirectory, string? worktree = null)
    {
        string? url = null;
        foreach (var file in ConfigFiles(projectDirectory, worktree))
        {
            if (ReadEnterpriseUrl(file) is { Length: > 0 } u)
            {
                url = u;
            }
        }

        return (url ?? DefaultBaseUrl).TrimEnd('/');
    }

    /// <summary>A top-level config value (the nearest file that has it wins), e.g. <c>share</c> or <c>autoshare</c>;
    /// the same files as <see cref="BaseUrl"/>.</summary>
    public static JsonElement? TopLevel(string key, string? projectDirectory, string? worktree = null)
    {
        JsonElement? found = null;
        foreach (var file in ConfigFiles(projectDirectory, worktree))
        {
            try
            {
                if (!File.Exists(file))
                {
                    continue;
                }

                using var doc = JsonDocument.Parse(File.ReadAllBytes(file), new JsonDocumentOptions
                {
                    CommentHandling = JsonCommentHandling.Skip,
                    AllowTrailingCommas = true,
                });
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(key, out var v))
                {
                    found = v.Clone();
                }
            }
            catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    private static IEnumerable<string> ConfigFiles(string? dir, string? worktree)
    {
        string? configDir = Environment.GetEnvironmentVariable("OPENCODE_CONFIG_DIR");
        if (string.IsNullOrEmpty(configDir))
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
            string root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
            configDir = Path.Combine(root, "opencode");
        }

        foreach (var name in new[] { "config.json", "opencode.json", "opencode.jsonc" })
        {
            yield return Path.Combine(configDir, name);
        }

        if (string.IsNullOrEmpty(dir))
        {
            yield break;
        }

        // Project files from the outermost (worktree root, or the directory itself) to the directory.
        var chain = new List<string>();
        string stop = worktree is { Length: > 1 } w ? Path.GetFullPath(w) : Path.GetFullPath(dir);
        for (string? d = Path.GetFullPath(dir); d is not null; d = Path.GetDirectoryName(d))
        {
            chain.Add(d);
            if (string.Equals(Path.TrimEndingDirectorySeparator(d), Path.TrimEndingDirectorySeparator(stop), StringComparison.Ordinal))
            {
                break;
            }
        }

        chain.Reverse();
        foreach (var d in chain)
        {
            yield return Path.Combine(d, "opencode.json");
            yield return Path.Combine(d, "opencode.jsonc");
            yield return Path.Combine(d, ".opencode", "opencode.json");
            yield return Path.Combine(d, ".opencode", "opencode.jsonc");
        }
    }

    private static string? ReadEnterpriseUrl(string file)
    {
        try
        {
            if (!File.Exists(file))
            {
                return null;
            }

            using var doc = JsonDocument.Parse(File.ReadAllBytes(file), new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
            });
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("enterprise", out var e) && e.ValueKind == JsonValueKind.Object
                && e.TryGetProperty("url", out var u) && u.ValueKind == JsonValueKind.String
                ? u.GetString()
                : null;
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
