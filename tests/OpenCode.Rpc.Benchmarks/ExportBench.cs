using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Benchmarks;

/// <summary>
/// Memory of <c>opencode-rpc export</c> on a big session (issue #9: "stream it, don't build it in memory"): a session
/// of 200 MB of tool output (100 turns, each answer a tool call with a 2 MB output full of characters JSON must
/// escape) is exported with the CLI to a file, and the process's peak RSS (VmHWM, polled from /proc) is compared
/// with the size of what it wrote.
/// </summary>
public sealed class ExportBench(bool quick) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ocrpc-bench-export-").FullName;

    public void Dispose()
    {
        if (Environment.GetEnvironmentVariable("OCRPC_BENCH_KEEP") == "1")
        {
            Console.Error.WriteLine($"kept {root}");
            return;
        }

        try
        {
            Directory.Delete(root, true);
        }
        catch (IOException)
        {
        }
    }

    public async Task<Row> Export200MbAsync()
    {
        int turns = quick ? 10 : 100;
        int outputBytes = 2 * 1024 * 1024;
        string data = Path.Combine(root, "data");
        string project = Path.Combine(root, "project");
        Directory.CreateDirectory(project);
        string sid = Generate(data, project, turns, outputBytes);
        string outFile = Path.Combine(root, "export.json");

        var (exe, prefix) = Bench.Sidecar();
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = project };
        foreach (var a in (string[])[.. prefix, "export", sid, "-o", outFile, "--data-dir", data, "--directory", project])
        {
            psi.ArgumentList.Add(a);
        }

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        long peakKb = 0;
        while (!p.HasExited)
        {
            peakKb = Math.Max(peakKb, ReadHwmKb(p.Id));
            await Task.Delay(2);
        }

        await p.WaitForExitAsync();
        double seconds = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException("export failed: " + await stderr);
        }

        long size = new FileInfo(outFile).Length;
        double mb = size / (1024.0 * 1024);
        double peakMb = peakKb / 1024.0;
        string build = exe.EndsWith("dotnet", StringComparison.Ordinal) ? "framework-dependent" : "NativeAOT";
        return new Row(
            $"CLI `export` of a {mb:N0} MB session ({turns} turns, 2 MB tool outputs), peak RSS ({build})",
            string.Create(CultureInfo.InvariantCulture, $"{peakMb:N0} MB peak RSS for {mb:N0} MB written ({peakMb / mb:P0}), {seconds:N1} s"),
            "–",
            "well below the output size");
    }

    /// <summary>VmHWM (peak resident set) of a live process, in KiB; 0 once it is gone.</summary>
    private static long ReadHwmKb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0;
    }

    /// <summary>Writes a session straight into a store: per turn a user message with a text part and an assistant
    /// message with a completed tool part whose output is <paramref name="outputBytes"/> of code-like text.</summary>
    private static string Generate(string data, string project, int turns, int outputBytes)
    {
        var layout = new StoreLayout(data);
        var info = ProjectResolver.Resolve(project);
        ProjectResolver.EnsureProjectFile(layout, info, 1_700_000_000_000);
        string sid = Identifier.Descending(Identifier.Session);
        long t0 = 1_700_000_000_000;
        var line = "    if (x[\"key\"] == 'v') { return \"tab\\there\"; } // ünïcödé ✓\n";
        var sb = new StringBuilder(outputBytes + line.Length);
        while (sb.Length < outputBytes)
        {
            sb.Append(line);
        }

        string output = sb.ToString(0, outputBytes);
        for (int i = 0; i < turns; i++)
        {
            string user = Identifier.Ascending(Identifier.Message);
            Write(layout.MessageFile(sid, user), new JsonObject
            {
                ["id"] = user, ["sessionID"] = sid, ["role"] = "user", ["time"] = new JsonObject { ["created"] = t0 + (i * 2000L) },
                ["agent"] = "build", ["model"] = new JsonObject { ["providerID"] = "p", ["modelID"] = "m" },
            });
            Write(layout.PartFile(user, Identifier.Ascending(Identifier.Part)), new JsonObject
            {
                ["sessionID"] = sid, ["messageID"] = user, ["type"] = "text", ["text"] = $"Read file {i} and explain it.",
            });
            string assistant = Identifier.Ascending(Identifier.Message);
            Write(layout.MessageFile(sid, assistant), new JsonObject
            {
                ["id"] = assistant, ["sessionID"] = sid, ["role"] = "assistant", ["time"] = new JsonObject { ["created"] = t0 + (i * 2000L) + 1000 },
                ["parentID"] = user, ["modelID"] = "m", ["providerID"] = "p", ["mode"] = "build", ["agent"] = "build",
                ["path"] = new JsonObject { ["cwd"] = project, ["root"] = project }, ["cost"] = 0,
                ["tokens"] = new JsonObject { ["input"] = 1, ["output"] = 1, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 } },
            });
            Write(layout.PartFile(assistant, Identifier.Ascending(Identifier.Part)), new JsonObject
            {
                ["sessionID"] = sid, ["messageID"] = assistant, ["type"] = "tool", ["callID"] = "call" + i, ["tool"] = "read",
                ["state"] = new JsonObject
                {
                    ["status"] = "completed", ["input"] = new JsonObject { ["filePath"] = $"{project}/src/file{i}.ts" },
                    ["output"] = output, ["title"] = $"src/file{i}.ts", ["metadata"] = new JsonObject(),
                    ["time"] = new JsonObject { ["start"] = t0, ["end"] = t0 + 5 },
                },
            });
        }

        Write(layout.SessionFile(info.Id, sid), new JsonObject
        {
            ["id"] = sid, ["slug"] = "big-export", ["version"] = "1.1.65", ["projectID"] = info.Id, ["directory"] = project,
            ["title"] = "200 MB of tool output", ["time"] = new JsonObject { ["created"] = t0, ["updated"] = t0 + (turns * 2000L) },
        });
        return sid;
    }

    private static void Write(string path, JsonObject o)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (o["id"] is null)
        {
            o.Insert(0, "id", Path.GetFileNameWithoutExtension(path));
        }

        File.WriteAllBytes(path, JsJson.ToBytes(o));
    }
}
