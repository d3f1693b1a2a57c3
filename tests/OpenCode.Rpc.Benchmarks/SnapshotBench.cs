using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nerdbank.Streams;
using OpenCode.Rpc.Server;
using StreamJsonRpc;

namespace OpenCode.Rpc.Benchmarks;

/// <summary>Undo/redo items: <c>snapshot/track</c> of a 20,000-file git worktree (warm with 10 changed files, and the
/// first track), side by side with the git CLI's <c>git add -A &amp;&amp; git write-tree</c> on the same tree in a scratch
/// git dir; and a revert (then unrevert) of a step that changed 100 files.</summary>
public sealed class SnapshotBench(bool quick) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ocrpc-bench-snap-").FullName;

    private int Files => quick ? 2_000 : 20_000;

    private int Dirs => quick ? 20 : 200;

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Warm <c>snapshot/track</c> after 10 files changed, and the first track of the tree (fresh shadow repo),
    /// each against the git CLI in the same run; the two tools must agree on every tree hash.</summary>
    public async Task<Row> Track20kAsync()
    {
        string project = MakeProject("track");
        int rounds = quick ? 8 : 21;

        // First track: a fresh shadow repo each time, against git on a fresh scratch git dir.
        var oursFirst = new List<double>();
        var gitFirst = new List<double>();
        for (int i = 0; i < (quick ? 1 : 3); i++)
        {
            string scratch = Path.Combine(root, $"scratch-first{i}");
            Git(null, null, "init", "-q", "--bare", scratch);
            var sw = Stopwatch.StartNew();
            string gitTree = GitAddWriteTree(scratch, project);
            gitFirst.Add(sw.Elapsed.TotalMilliseconds);

            await using var s = await Server.StartAsync(Path.Combine(root, $"data-first{i}"), project, Path.Combine(root, "config"));
            string sid = await s.SessionAsync();
            sw.Restart();
            string tree = await s.TrackAsync(sid);
            oursFirst.Add(sw.Elapsed.TotalMilliseconds);
            Same(gitTree, tree, "first track");
        }

        // Warm: one server and one scratch git dir, both already holding the tree; each round changes 10 files
        // (same size and new size, rotating through the folders) and times both tools on the same state.
        string scratchWarm = Path.Combine(root, "scratch-warm");
        Git(null, null, "init", "-q", "--bare", scratchWarm);
        GitAddWriteTree(scratchWarm, project);
        await using var server = await Server.StartAsync(Path.Combine(root, "data-warm"), project, Path.Combine(root, "config"));
        string session = await server.SessionAsync();
        await server.TrackAsync(session);
        await server.TrackAsync(session);
        var ours = new List<double>();
        var git = new List<double>();
        var rng = new Random(42);
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < 10; k++)
            {
                int n = rng.Next(Files);
                File.WriteAllText(FilePath(project, n), rng.Next(2) == 0 ? $"edited {r} {k}\n" : $"edited in round {r}, change {k}: {new string('x', rng.Next(80))}\n");
            }

            var sw = Stopwatch.StartNew();
            string o = await server.TrackAsync(session);
            double oursMs = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            string g = GitAddWriteTree(scratchWarm, project);
            double gitMs = sw.Elapsed.TotalMilliseconds;
            Same(g, o, $"warm round {r}");
            if (r > 0)
            {
                ours.Add(oursMs);
                git.Add(gitMs);
            }
        }

        // The first track of a restarted sidecar (the shadow repo exists; the process starts cold).
        var restart = new List<double>();
        for (int i = 0; i < (quick ? 2 : 4); i++)
        {
            File.WriteAllText(FilePath(project, i * 7), $"restart {i}\n");
            restart.Add(await FirstTrackInNewProcessAsync(Path.Combine(root, "data-warm"), project, Path.Combine(root, "config"), session));
        }

        return new Row(
            $"`snapshot/track`, {Files:N0} files, 10 changed, warm (in-proc pipes); first track of the tree; first track after a sidecar restart",
            $"warm {Bench.Stat(ours)}; first {Bench.Stat(oursFirst)}; after restart {Bench.Stat(restart)}",
            $"`git add -A && git write-tree` (same tree, same run): warm {Bench.Stat(git)} ({Median(git) / Median(ours):N1}× ours); first {Bench.Stat(gitFirst)} ({Median(gitFirst) / Median(oursFirst):N2}× ours)",
            "warm ≤ 30 ms and ≥ 5× faster; first no slower than git");
    }

    /// <summary>Revert of a step that changed 100 files (80 modified, 10 added, 10 deleted) in the 20,000-file tree, and
    /// the unrevert that puts them back; alternated, each timed.</summary>
    public async Task<Row> Revert100Async()
    {
        string project = MakeProject("revert");
        await using var s = await Server.StartAsync(Path.Combine(root, "data-revert"), project, Path.Combine(root, "config"));
        string sid = await s.SessionAsync();
        var user = await s.CallAsync("message/update", new JsonObject
        {
            ["info"] = new JsonObject
            {
                ["sessionID"] = sid, ["role"] = "user", ["time"] = new JsonObject { ["created"] = 1 }, ["agent"] = "build",
                ["model"] = new JsonObject { ["providerID"] = "p", ["modelID"] = "m" },
            },
        });
        string userId = user.GetProperty("id").GetString()!;
        var asst = await s.CallAsync("message/update", new JsonObject
        {
            ["info"] = new JsonObject
            {
                ["sessionID"] = sid, ["role"] = "assistant", ["time"] = new JsonObject { ["created"] = 2 }, ["parentID"] = userId, ["modelID"] = "m",
                ["providerID"] = "p", ["mode"] = "build", ["agent"] = "build", ["path"] = new JsonObject { ["cwd"] = project, ["root"] = project }, ["cost"] = 0,
                ["tokens"] = new JsonObject { ["input"] = 0, ["output"] = 0, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 } },
            },
        });
        string asstId = asst.GetProperty("id").GetString()!;
        await s.CallAsync("step/start", new JsonObject { ["sessionID"] = sid, ["messageID"] = asstId });
        for (int i = 0; i < 80; i++)
        {
            File.AppendAllText(FilePath(project, i * 97), $"changed by the AI {i}\n");
        }

        for (int i = 0; i < 10; i++)
        {
            File.WriteAllText(Path.Combine(project, "d000", $"new{i}.txt"), $"new file {i}\n");
            File.Delete(FilePath(project, 1 + (i * 131)));
        }

        var finish = await s.CallAsync("step/finish", new JsonObject { ["sessionID"] = sid, ["messageID"] = asstId, ["reason"] = "stop" });
        int patched = finish.GetProperty("patch").GetProperty("files").GetArrayLength();
        if (patched != 100)
        {
            throw new InvalidOperationException($"the step recorded {patched} files, not 100");
        }

        var revert = new List<double>();
        var unrevert = new List<double>();
        for (int i = 0; i < (quick ? 4 : 11); i++)
        {
            var sw = Stopwatch.StartNew();
            var r = await s.CallAsync("session/revert", new JsonObject { ["sessionID"] = sid, ["messageID"] = userId });
            revert.Add(sw.Elapsed.TotalMilliseconds);
            if (r.GetProperty("files").GetArrayLength() != 100)
            {
                throw new InvalidOperationException($"the revert changed {r.GetProperty("files").GetArrayLength()} files, not 100");
            }

            sw.Restart();
            await s.CallAsync("session/unrevert", new JsonObject { ["sessionID"] = sid });
            unrevert.Add(sw.Elapsed.TotalMilliseconds);
        }

        return new Row($"revert of a step that changed 100 files ({Files:N0}-file tree), in-proc pipes", $"revert {Bench.Stat(revert)}; unrevert {Bench.Stat(unrevert)}", "–", "≤ 200 ms");
    }

    // ------------------------------------------------------------------ helpers

    private string FilePath(string project, int n) => Path.Combine(project, $"d{n % Dirs:D3}", $"f{n:D5}.txt");

    /// <summary>A git repository with <see cref="Files"/> small files in <see cref="Dirs"/> folders, committed.</summary>
    private string MakeProject(string name)
    {
        string p = Path.Combine(root, name);
        for (int n = 0; n < Files; n++)
        {
            string f = FilePath(p, n);
            if (n < Dirs)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(f)!);
            }

            File.WriteAllText(f, $"file {n}: some content of a source file\n");
        }

        Git(p, null, "init", "-q");
        Git(p, null, "add", "-A");
        Git(p, null, "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "seed");
        return p;
    }

    /// <summary>The reference: <c>git add -A</c> then <c>git write-tree</c>, two processes, with the shadow-repo layout
    /// (a separate git dir, the project as work tree).</summary>
    private static string GitAddWriteTree(string gitDir, string workTree)
    {
        Git(workTree, gitDir, "add", "-A");
        return Git(workTree, gitDir, "write-tree").Trim();
    }

    private static string Git(string? cwd, string? gitDir, params string[] args)
    {
        var psi = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("GIT_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        if (cwd is not null)
        {
            psi.WorkingDirectory = cwd;
        }

        if (gitDir is not null)
        {
            psi.Environment["GIT_DIR"] = gitDir;
            psi.Environment["GIT_WORK_TREE"] = cwd;
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"git {string.Join(' ', args)} exited {p.ExitCode}: {err.Result}");
        }

        return stdout;
    }

    private static void Same(string git, string ours, string what)
    {
        if (git != ours)
        {
            throw new InvalidOperationException($"{what}: snapshot/track gave {ours}, git write-tree {git}");
        }
    }

    private static double Median(List<double> ms) => ms.Order().ElementAt(ms.Count / 2);

    /// <summary>Starts the sidecar as a process, initializes it, and times only its first <c>snapshot/track</c>.</summary>
    private static async Task<double> FirstTrackInNewProcessAsync(string data, string project, string configDir, string session)
    {
        var (exe, prefix) = Bench.Sidecar();
        var psi = new ProcessStartInfo(exe) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(["serve", "--data-dir", data, "--directory", project, "--config-dir", configDir]))
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        _ = p.StandardError.ReadToEndAsync();
        using var rpc = Bench.Client(p.StandardInput.BaseStream, p.StandardOutput.BaseStream);
        await Bench.Invoke(rpc, "initialize", new JsonObject { ["directory"] = project });
        var sw = Stopwatch.StartNew();
        await Bench.Invoke(rpc, "snapshot/track", new JsonObject { ["sessionID"] = session });
        double ms = sw.Elapsed.TotalMilliseconds;
        p.StandardInput.Close();
        await p.WaitForExitAsync();
        return ms;
    }

    /// <summary>The real server on in-memory pipes, with an empty global config dir (never the user's own).</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly RpcServer server;
        private readonly JsonRpc client;

        private Server(string data, string project, string configDir)
        {
            Directory.CreateDirectory(data);
            Directory.CreateDirectory(configDir);
            var (s, c) = FullDuplexStream.CreatePair();
            server = RpcServer.Start(s, s, new ServerOptions(data, project, ConfigDir: configDir), _ => { });
            client = Bench.Client(c, c);
        }

        public static async Task<Server> StartAsync(string data, string project, string configDir)
        {
            var s = new Server(data, project, configDir);
            await s.CallAsync("initialize", new JsonObject { ["directory"] = project });
            return s;
        }

        public Task<JsonElement> CallAsync(string method, JsonObject args) => Bench.Invoke(client, method, args);

        public async Task<string> SessionAsync() =>
            (await CallAsync("session/create", new JsonObject { ["title"] = "bench" })).GetProperty("id").GetString()!;

        public async Task<string> TrackAsync(string session) =>
            (await CallAsync("snapshot/track", new JsonObject { ["sessionID"] = session })).GetProperty("hash").GetString()!;

        public async ValueTask DisposeAsync()
        {
            client.Dispose();
            server.Dispose();
            await Task.CompletedTask;
        }
    }
}
