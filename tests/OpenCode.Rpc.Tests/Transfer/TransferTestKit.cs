using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Transfer;

/// <summary>Shared helpers of the transfer tests: fixture paths, a store over TestDirs, the real OpenCode.</summary>
internal static class TransferTestKit
{
    public static string ExportFixture(string name) => Path.Combine(RepoPaths.Fixtures, "export", name);

    public static string Data(string name) => Path.Combine(RepoPaths.Root, "tests", "OpenCode.Rpc.Tests", "Transfer", "Data", name);

    /// <summary>The project the 1.18.33 fixtures were exported from (a git repo at /tmp/ocproj).</summary>
    public static readonly ProjectInfo FixtureProject = new("8473d0e735b29d2401024a60ff21c05aeb914dac", "/tmp/ocproj", "/tmp/ocproj", "git", "/tmp/ocproj");

    public static SessionStore NewStore(TestDirs dirs)
    {
        var store = new SessionStore(new StoreLayout(dirs.DataDir));
        store.Initialize();
        return store;
    }

    public static async Task<ImportResult> ImportFileAsync(SessionStore store, string file, ProjectInfo project) =>
        await SessionImporter.ImportJsonAsync(store, await File.ReadAllBytesAsync(file), file, project, ImportLimits.Default, CancellationToken.None);

    public static Task<string> ExportAsync(SessionStore store, string id, ExportOptions? options = null) =>
        SessionExporter.ExportToStringAsync(store, id, options ?? new ExportOptions(), CancellationToken.None);

    /// <summary>Drops what an import rewrites (projectID, directory, path, time.updated), for key-by-key comparison.</summary>
    public static JsonNode Normalize(string exportJson)
    {
        var root = JsonNode.Parse(exportJson)!.AsObject();
        var info = root["info"]!.AsObject();
        info.Remove("projectID");
        info.Remove("directory");
        info.Remove("path");
        info["time"]!.AsObject().Remove("updated");
        return root;
    }

    /// <summary>Asserts two JSON documents hold the same keys and values (order of keys aside), naming the first difference.</summary>
    public static void SameContent(JsonNode expected, JsonNode actual, string at = "$")
    {
        switch (expected)
        {
            case JsonObject eo:
                var ao = Assert.IsType<JsonObject>(actual);
                Assert.True(eo.Select(k => k.Key).Order(StringComparer.Ordinal).SequenceEqual(ao.Select(k => k.Key).Order(StringComparer.Ordinal)),
                    $"keys differ at {at}: [{string.Join(",", eo.Select(k => k.Key))}] vs [{string.Join(",", ao.Select(k => k.Key))}]");
                foreach (var (k, v) in eo)
                {
                    SameContent(v!, ao[k]!, $"{at}.{k}");
                }

                break;
            case JsonArray ea:
                var aa = Assert.IsType<JsonArray>(actual);
                Assert.True(ea.Count == aa.Count, $"array length differs at {at}: {ea.Count} vs {aa.Count}");
                for (int i = 0; i < ea.Count; i++)
                {
                    SameContent(ea[i]!, aa[i]!, $"{at}[{i}]");
                }

                break;
            default:
                Assert.True(JsonNode.DeepEquals(expected, actual), $"value differs at {at}: {expected?.ToJsonString()} vs {actual?.ToJsonString()}");
                break;
        }
    }

    // ------------------------------------------------------------------ the real OpenCode

    public static string OpenCodeRef => Path.Combine(RepoPaths.Shared, "tools", "opencode-ref.sh");

    /// <summary>Runs the real OpenCode CLI (installing it through the script if missing) with its own HOME; returns
    /// exit code, stdout and stderr. stdout goes to a file, never a pipe: the real export truncates on pipes.</summary>
    public static async Task<(int Code, string Stdout, string Stderr)> RunOpenCodeAsync(string home, string cwd, string version, params string[] args)
    {
        string outFile = Path.Combine(home, $"stdout-{Guid.NewGuid():N}.txt");
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
            WorkingDirectory = cwd,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("\"$0\" \"$@\" > \"$OC_OUT\"");
        psi.ArgumentList.Add(OpenCodeRef);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OCREF_HOME"] = home;
        psi.Environment["OCREF_VERSION"] = version;
        psi.Environment["OCREF_TIMEOUT"] = "120";
        psi.Environment["OC_OUT"] = outFile;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        await stdout;
        string text = File.Exists(outFile) ? await File.ReadAllTextAsync(outFile, Encoding.UTF8) : string.Empty;
        return (p.ExitCode, text, await err);
    }
}
