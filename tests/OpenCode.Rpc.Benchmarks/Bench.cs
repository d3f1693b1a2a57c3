using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nerdbank.Streams;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Server;
using StreamJsonRpc;

namespace OpenCode.Rpc.Benchmarks;

public sealed record Row(string What, string Ours, string Reference, string Target);

/// <summary>The benchmark items. Data is generated in temp folders and removed afterwards.</summary>
public sealed class Bench(bool quick) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ocrpc-bench-").FullName;

    public static string RepoRoot { get; } = FindRoot();

    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, true);
        }
        catch (IOException)
        {
        }
    }

    public static string Cpu()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    // ------------------------------------------------------------------ items

    /// <summary>A listening client of a sidecar (a process's stdio or an in-proc pipe), tracing nothing: StreamJsonRpc's
    /// default listener would make a syslog call per notification the bench has no handler for.</summary>
    internal static JsonRpc Client(Stream writeTo, Stream readFrom)
    {
        var rpc = new JsonRpc(new HeaderDelimitedMessageHandler(writeTo, readFrom, RpcServer.CreateFormatter()));
        RpcServer.QuietTrace(rpc, null);
        rpc.StartListening();
        return rpc;
    }

    /// <summary>Process start to the initialize answer, of the shipped build (NativeAOT when published, else the
    /// framework-dependent dll), against the real <c>opencode --version</c>. The store is not empty: 1,000 sessions of
    /// 10 messages (20,000 part files in 10,000 folders), since a start that walked the store would grow with it.</summary>
    public async Task<Row> ColdStartAsync()
    {
        var dirs = NewDirs("cold");
        var seed = new SessionStore(new StoreLayout(dirs.Data));
        seed.Initialize();
        WriteSessions(seed, ProjectResolver.Resolve(dirs.Project), quick ? 100 : 1000, messagesEach: 10);
        var (exe, prefix) = Sidecar();
        var ours = new List<double>();
        for (int i = 0; i < (quick ? 4 : 11); i++)
        {
            var sw = Stopwatch.StartNew();
            var psi = Start(exe, [.. prefix, "serve", "--data-dir", dirs.Data, "--directory", dirs.Project]);
            using var p = Process.Start(psi)!;
            using var rpc = Client(p.StandardInput.BaseStream, p.StandardOutput.BaseStream);
            await Invoke(rpc, "initialize", new JsonObject { ["directory"] = dirs.Project });
            double ms = sw.Elapsed.TotalMilliseconds;
            if (i > 0)
            {
                ours.Add(ms); // the first run warms the page cache
            }

            p.StandardInput.Close();
            await p.WaitForExitAsync();
        }

        var reference = await TimeProcessAsync(() => RefStart("1.18.33", ["--version"], root), quick ? 2 : 5);
        return new Row($"cold start to the `initialize` answer ({(exe.EndsWith(".dll", StringComparison.Ordinal) || prefix.Length > 0 ? "framework-dependent" : "NativeAOT")}), store of {(quick ? 100 : 1000):N0} sessions / {(quick ? 2 : 20):N0}k parts", Stat(ours), "real `opencode --version`: " + Stat(reference), "≤ 150 ms");
    }

    /// <summary>CLI <c>session list</c> over a 1,000-session store, against real OpenCode 1.1.65 reading the same store.</summary>
    public async Task<Row> CliSessionListAsync()
    {
        var dirs = NewDirs("list1k", git: true);
        var project = ProjectResolver.Resolve(dirs.Project);
        var store = new SessionStore(new StoreLayout(dirs.Data));
        store.Initialize();
        ProjectResolver.EnsureProjectFile(store.Layout, project, store.Now);
        WriteSessions(store, project, 1000, messagesEach: 0);
        var (exe, prefix) = Sidecar();
        var ours = await TimeProcessAsync(() => Start(exe, [.. prefix, "session", "list", "--data-dir", dirs.Data], dirs.Project), quick ? 3 : 7);
        var home = Path.Combine(root, "ochome-list");
        Directory.CreateDirectory(Path.Combine(home, "data"));
        if (!Directory.Exists(Path.Combine(home, "data", "opencode")))
        {
            Directory.CreateSymbolicLink(Path.Combine(home, "data", "opencode"), dirs.Data);
        }

        var reference = await TimeProcessAsync(() => RefStart("1.1.65", ["session", "list"], dirs.Project, home), quick ? 2 : 5);
        return new Row("CLI `session list`, 1,000 sessions", Stat(ours), $"real 1.1.65 `opencode session list` on the same store: {Stat(reference)} ({Ratio(reference, ours)})", "≥ 10× faster");
    }

    /// <summary>Warm <c>session/list</c> of a project with 10,000 sessions, over in-proc pipes.</summary>
    public async Task<Row> SessionList10kAsync()
    {
        int n = quick ? 2000 : 10_000;
        var dirs = NewDirs("list10k");
        var store = new SessionStore(new StoreLayout(dirs.Data));
        store.Initialize();
        WriteSessions(store, ProjectResolver.Resolve(dirs.Project), n, messagesEach: 0);
        await using var c = await InProc.StartAsync(dirs);
        await c.CallAsync("session/list", new JsonObject());
        await Task.Delay(2100); // let the index leave its racy window, as a warm server would be
        var times = new List<double>();
        int count = 0;
        for (int i = 0; i < 30; i++)
        {
            var sw = Stopwatch.StartNew();
            var r = await c.CallAsync("session/list", new JsonObject());
            times.Add(sw.Elapsed.TotalMilliseconds);
            count = r.GetArrayLength();
        }

        // The same call from a client that only reads the answer's frame (bytes, no JSON parse): the server's share
        // (dispatch, list, encoding, framing, the pipe) without the StreamJsonRpc client's parse of ~3 MB, which a
        // real client (vscode-jsonrpc's JSON.parse) pays in its own way.
        await using var raw = await RawFrameClient.StartAsync(dirs);
        await raw.CallAsync("session/list", "{}");
        var rawTimes = new List<double>();
        for (int i = 0; i < 30; i++)
        {
            var sw = Stopwatch.StartNew();
            await raw.CallAsync("session/list", "{}");
            rawTimes.Add(sw.Elapsed.TotalMilliseconds);
        }

        return new Row($"`session/list`, {count:N0} sessions, warm (in-proc pipes, whole answer)", $"{Stat(times)} parsed by a StreamJsonRpc client; {Stat(rawTimes)} received as a raw frame ({raw.LastBodyBytes / 1e6:N1} MB)", "–", "≤ 20 ms");
    }

    /// <summary><c>message/update</c> then <c>part/update</c>, each acknowledged once durable (its write journal record
    /// flushed; see WriteJournal). The reference is what every write cost before the journal: temp file + fsync +
    /// rename + folder fsync.</summary>
    public async Task<Row> DurableWritesAsync()
    {
        var dirs = NewDirs("writes");

        // The floor, measured in the same run: one bare temp write + fsync + rename + folder fsync.
        var raw = new List<double>();
        byte[] payload = new byte[300];
        string rawFile = Path.Combine(dirs.Data, "raw", "x.json");
        for (int i = 0; i < (quick ? 200 : 1000); i++)
        {
            var sw = Stopwatch.StartNew();
            AtomicFile.Write(rawFile, payload);
            raw.Add(sw.Elapsed.TotalMilliseconds);
        }

        // The shipped sidecar (NativeAOT when published) over its real stdin/stdout, as an editor drives it, with the
        // store watcher on, as `serve` runs by default. Several rounds, each a fresh process and store: this disk's
        // flush time drifts by tens of percent within minutes, so one round says little. Each round runs three ways in
        // turn, so the drift hits them alike: a lean client (the sidecar's own time), a StreamJsonRpc client (what a
        // .NET client library adds), and the store alone in this process (the share that is not RPC).
        var p50s = (Message: new List<double>(), Part: new List<double>());
        var p99s = (Message: new List<double>(), Part: new List<double>());
        var viaLibrary = (Message: new List<double>(), Part: new List<double>());
        var storeOnly = (Message: new List<double>(), Part: new List<double>());
        int n = quick ? 300 : 1000;
        for (int round = 0; round < (quick ? 2 : 5); round++)
        {
            using (var lean = RawStdioClient.Start(NewDirs($"writes{round}")))
            {
                var (msg, part) = await WriteRoundAsync(lean.SessionId, n, (m, a) => Task.FromResult(lean.Call(m, a)));
                p50s.Message.Add(Percentile(msg, 50));
                p50s.Part.Add(Percentile(part, 50));
                p99s.Message.Add(Percentile(msg, 99));
                p99s.Part.Add(Percentile(part, 99));
            }

            await using (var sidecar = await SidecarSession.StartAsync(NewDirs($"writes{round}lib")))
            {
                var (msg, part) = await WriteRoundAsync(sidecar.SessionId, n, (m, a) => Invoke(sidecar.Rpc, m, a));
                viaLibrary.Message.Add(Percentile(msg, 50));
                viaLibrary.Part.Add(Percentile(part, 50));
            }

            {
                var d = NewDirs($"writes{round}store");
                var store = new SessionStore(new StoreLayout(d.Data));
                store.Initialize();
                string sid = (string)(await store.CreateSessionAsync(ProjectResolver.Resolve(d.Project), "bench", null, CancellationToken.None))["id"]!;
                var (msg, part) = await WriteRoundAsync(sid, n, async (m, a) =>
                {
                    var o = m == "message/update"
                        ? await store.UpdateMessageAsync((JsonObject)a["info"]!.DeepClone(), CancellationToken.None)
                        : await store.UpdatePartAsync((JsonObject)a["part"]!.DeepClone(), null, CancellationToken.None);
                    return JsonSerializer.SerializeToElement(o);
                });
                storeOnly.Message.Add(Percentile(msg, 50));
                storeOnly.Part.Add(Percentile(part, 50));
            }
        }

        string how = Sidecar().Exe.EndsWith("opencode-rpc", StringComparison.Ordinal) ? "NativeAOT sidecar" : "sidecar (not published: JIT)";
        return new Row(
            $"`message/update` / `part/update`, durable (journal flushed), {how} over stdio, {(quick ? 2 : 5)} rounds: p50 / p99",
            $"message {Stat(p50s.Message)} / {Stat(p99s.Message)}; part {Stat(p50s.Part)} / {Stat(p99s.Part)}. "
            + $"p50 through a StreamJsonRpc client: message {Stat(viaLibrary.Message)}, part {Stat(viaLibrary.Part)}; "
            + $"the store alone, in process: message {Stat(storeOnly.Message)}, part {Stat(storeOnly.Part)}",
            $"one bare fsync'd atomic write: {Pct(raw, 50)} / {Pct(raw, 99)}",
            "≤ 1 ms / ≤ 5 ms");
    }

    /// <summary>An agent's turn as OpenCode writes it, over the shipped sidecar's stdio: a user message, an assistant
    /// message, three parts, then the assistant message rewritten with its tokens and finish (which runs the automatic
    /// compaction check). Each call timed from request to answer; three rounds, a fresh process and store each.</summary>
    public async Task<Row> AgentTurnAsync()
    {
        var lean = new Dictionary<string, List<double>> { ["user"] = [], ["assistant"] = [], ["part"] = [], ["finish"] = [] };
        var library = new Dictionary<string, List<double>> { ["user"] = [], ["assistant"] = [], ["part"] = [], ["finish"] = [] };
        int turns = quick ? 100 : 500;
        for (int round = 0; round < (quick ? 1 : 3); round++)
        {
            // The lean client and a StreamJsonRpc one in turn, as in durable-writes.
            var dirs = NewDirs($"turns{round}");
            using (var raw = RawStdioClient.Start(dirs))
            {
                await TurnsAsync(raw.SessionId, dirs.Project, turns, lean, (m, a) => Task.FromResult(raw.Call(m, a)));
            }

            dirs = NewDirs($"turns{round}lib");
            await using (var sidecar = await SidecarSession.StartAsync(dirs))
            {
                await TurnsAsync(sidecar.SessionId, dirs.Project, turns, library, (m, a) => Invoke(sidecar.Rpc, m, a));
            }
        }

        static string Each(Dictionary<string, List<double>> t) =>
            $"user message {Pct(t["user"], 50)} / {Pct(t["user"], 99)}; assistant message {Pct(t["assistant"], 50)} / {Pct(t["assistant"], 99)}; part {Pct(t["part"], 50)} / {Pct(t["part"], 99)}; assistant finish {Pct(t["finish"], 50)} / {Pct(t["finish"], 99)}";
        return new Row(
            $"an agent's turn over the sidecar's stdio ({(quick ? 1 : 3)} rounds × {turns} turns), p50 / p99 of each call",
            $"{Each(lean)}. Through a StreamJsonRpc client: {Each(library)}",
            "–",
            "≤ 1 ms / ≤ 5 ms");
    }

    /// <summary><paramref name="turns"/> turns in one session, each call timed from request to answer into
    /// <paramref name="times"/>; the first tenth is the warm-up and is left out.</summary>
    private static async Task TurnsAsync(string sid, string project, int turns, Dictionary<string, List<double>> times, Func<string, JsonObject, Task<JsonElement>> call)
    {
        async Task<JsonElement> Timed(string what, int turn, string method, JsonObject args)
        {
            var sw = Stopwatch.StartNew();
            var r = await call(method, args);
            if (turn >= turns / 10)
            {
                times[what].Add(sw.Elapsed.TotalMilliseconds);
            }

            return r;
        }

        for (int i = 0; i < turns; i++)
        {
            long t = 1_000_000 + (i * 10L);
            var user = new JsonObject
            {
                ["sessionID"] = sid, ["role"] = "user", ["time"] = new JsonObject { ["created"] = t }, ["agent"] = "build",
                ["model"] = new JsonObject { ["providerID"] = "p", ["modelID"] = "m" },
            };
            string uid = (await Timed("user", i, "message/update", new JsonObject { ["info"] = user })).GetProperty("id").GetString()!;
            var assistant = new JsonObject
            {
                ["parentID"] = uid, ["role"] = "assistant", ["mode"] = "build", ["agent"] = "build",
                ["path"] = new JsonObject { ["cwd"] = project, ["root"] = project }, ["cost"] = 0,
                ["tokens"] = new JsonObject { ["total"] = 0, ["input"] = 0, ["output"] = 0, ["reasoning"] = 0, ["cache"] = new JsonObject { ["write"] = 0, ["read"] = 0 } },
                ["modelID"] = "m", ["providerID"] = "p", ["time"] = new JsonObject { ["created"] = t + 1 }, ["sessionID"] = sid,
            };
            string aid = (await Timed("assistant", i, "message/update", new JsonObject { ["info"] = assistant.DeepClone() })).GetProperty("id").GetString()!;
            for (int k = 0; k < 3; k++)
            {
                await Timed("part", i, "part/update", new JsonObject { ["part"] = new JsonObject { ["sessionID"] = sid, ["messageID"] = aid, ["type"] = "text", ["text"] = $"step {k} of turn {i}" } });
            }

            assistant["id"] = aid;
            assistant["tokens"] = new JsonObject { ["total"] = 110, ["input"] = 100, ["output"] = 10, ["reasoning"] = 0, ["cache"] = new JsonObject { ["write"] = 0, ["read"] = 0 } };
            assistant["time"]!["completed"] = t + 2;
            assistant["finish"] = "stop";
            await Timed("finish", i, "message/update", new JsonObject { ["info"] = assistant });
        }
    }

    /// <summary>One session: a new message then a part of it, <paramref name="n"/> times, each call timed from request
    /// to answer. The first tenth (a fresh process, a fresh journal segment) is left out.</summary>
    private static async Task<(List<double> Message, List<double> Part)> WriteRoundAsync(string sid, int n, Func<string, JsonObject, Task<JsonElement>> call)
    {
        var msg = new List<double>();
        var part = new List<double>();
        for (int i = 0; i < n; i++)
        {
            string mid = Identifier.Ascending(Identifier.Message);
            var info = new JsonObject
            {
                ["id"] = mid, ["sessionID"] = sid, ["role"] = "user", ["time"] = new JsonObject { ["created"] = 1000 + i }, ["agent"] = "build",
                ["model"] = new JsonObject { ["providerID"] = "p", ["modelID"] = "m" },
            };
            var message = new JsonObject { ["info"] = info };
            var text = new JsonObject { ["part"] = new JsonObject { ["sessionID"] = sid, ["messageID"] = mid, ["type"] = "text", ["text"] = "hello " + i } };
            var sw = Stopwatch.StartNew();
            await call("message/update", message);
            msg.Add(sw.Elapsed.TotalMilliseconds);
            sw.Restart();
            await call("part/update", text);
            part.Add(sw.Elapsed.TotalMilliseconds);
        }

        msg.RemoveRange(0, n / 10);
        part.RemoveRange(0, n / 10);
        return (msg, part);
    }

    /// <summary>Small calls per second over a real process's stdio, one client, 64 in flight.</summary>
    public async Task<Row> RpcThroughputAsync()
    {
        await using var sidecar = await SidecarSession.StartAsync(NewDirs("tput"));
        var rpc = sidecar.Rpc;
        var args = new JsonObject { ["sessionID"] = sidecar.SessionId };
        var rates = new List<double>();
        int total = quick ? 10_000 : 50_000;
        for (int round = 0; round < 4; round++)
        {
            var sw = Stopwatch.StartNew();
            int next = 0;
            var workers = Enumerable.Range(0, 64).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) <= total)
                {
                    await Invoke(rpc, "session/get", args);
                }
            });
            await Task.WhenAll(workers);
            if (round > 0)
            {
                rates.Add(total / sw.Elapsed.TotalSeconds);
            }
        }

        rates.Sort();
        return new Row("small RPC calls/s over stdio (`session/get`), 1 client, 64 in flight", $"{rates[rates.Count / 2]:N0}/s ({rates[0]:N0}–{rates[^1]:N0})", "–", "≥ 20,000");
    }

    /// <summary>Forking a 2,000-message session (2,000 messages, 4,000 parts).</summary>
    public async Task<Row> Fork2000Async()
    {
        var dirs = NewDirs("fork");
        var store = new SessionStore(new StoreLayout(dirs.Data));
        store.Initialize();
        var ids = WriteSessions(store, ProjectResolver.Resolve(dirs.Project), 1, messagesEach: 2000);
        await using var c = await InProc.StartAsync(dirs);
        var times = new List<double>();
        for (int i = 0; i < (quick ? 3 : 9); i++)
        {
            // A fork is durable through the write journal; its files are flushed by the checkpoint about a second
            // later, off the request path. Each fork is timed after that, as a user's would be, not during the last
            // one's flush.
            await Task.Delay(1500);
            var sw = Stopwatch.StartNew();
            await c.CallAsync("session/fork", new JsonObject { ["sessionID"] = ids[0] });
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        return new Row("fork of 2,000 messages (4,000 parts)", Stat(times), "real `POST /session/:id/fork`: `tools/bench-fork-real.sh` (needs a 2,000-message store filled over HTTP, ~10 min)", "≤ 300 ms");
    }

    /// <summary>Warm <c>session/search</c> over 10,000 sessions and 200,000 parts.</summary>
    public async Task<Row> Search10kAsync()
    {
        int sessions = quick ? 1000 : 10_000;
        var dirs = NewDirs("search");
        var store = new SessionStore(new StoreLayout(dirs.Data));
        store.Initialize();
        WriteSessions(store, ProjectResolver.Resolve(dirs.Project), sessions, messagesEach: 10); // 2 parts per message
        await using var c = await InProc.StartAsync(dirs);
        var args = new JsonObject { ["query"] = "needle-in-the-haystack" };
        var sw0 = Stopwatch.StartNew();
        await c.CallAsync("session/search", args);
        double cold = sw0.Elapsed.TotalMilliseconds;
        await Task.Delay(2100);
        await c.CallAsync("session/search", args);
        var times = new List<double>();
        for (int i = 0; i < 10; i++)
        {
            var sw = Stopwatch.StartNew();
            await c.CallAsync("session/search", args);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        return new Row($"`session/search`, {sessions:N0} sessions / {sessions * 20:N0} parts, warm", Stat(times) + $"; cold {cold:N0} ms", "OpenCode searches titles only", "≤ 100 ms");
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>Writes sessions (and optionally user/assistant messages with a text and a tool part each) straight to
    /// files, without fsync: this is data generation, not the thing measured.</summary>
    public static List<string> WriteSessions(SessionStore store, ProjectInfo project, int count, int messagesEach)
    {
        var ids = new List<string>(count);
        long t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (count * 1000L);
        var layout = store.Layout;
        for (int i = 0; i < count; i++)
        {
            string sid = Identifier.Create(Identifier.Session, true, t0 + (i * 1000L));
            ids.Add(sid);
            var info = new JsonObject
            {
                ["id"] = sid, ["slug"] = "quiet-otter", ["version"] = "1.1.65", ["projectID"] = project.Id, ["directory"] = project.Directory,
                ["title"] = $"Session {i}: refactor module {i % 97}", ["time"] = new JsonObject { ["created"] = t0 + (i * 1000L), ["updated"] = t0 + (i * 1000L) + 500 },
            };
            Write(layout.SessionFile(project.Id, sid), info);
            for (int m = 0; m < messagesEach; m++)
            {
                string mid = Identifier.Ascending(Identifier.Message);
                bool user = m % 2 == 0;
                var msg = new JsonObject { ["id"] = mid, ["sessionID"] = sid, ["role"] = user ? "user" : "assistant", ["time"] = new JsonObject { ["created"] = t0 + (i * 1000L) + m } };
                msg["agent"] = "build";
                if (user)
                {
                    msg["model"] = new JsonObject { ["providerID"] = "p", ["modelID"] = "m" };
                }
                else
                {
                    msg["parentID"] = mid;
                    msg["modelID"] = "m";
                    msg["providerID"] = "p";
                    msg["mode"] = "build";
                    msg["path"] = new JsonObject { ["cwd"] = "/w", ["root"] = "/w" };
                    msg["cost"] = 0;
                    msg["tokens"] = new JsonObject { ["input"] = 1, ["output"] = 1, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 } };
                }

                Write(layout.MessageFile(sid, mid), msg);
                Write(layout.PartFile(mid, Identifier.Ascending(Identifier.Part)), new JsonObject
                {
                    ["sessionID"] = sid, ["messageID"] = mid, ["type"] = "text",
                    ["text"] = $"Message {m} of session {i}: please look at src/module{m % 13}.ts and explain the control flow in detail.",
                });
                Write(layout.PartFile(mid, Identifier.Ascending(Identifier.Part)), new JsonObject
                {
                    ["sessionID"] = sid, ["messageID"] = mid, ["type"] = "tool", ["callID"] = "c" + m, ["tool"] = "read",
                    ["state"] = new JsonObject
                    {
                        ["status"] = "completed", ["input"] = new JsonObject { ["filePath"] = $"/w/src/module{m % 13}.ts" },
                        ["output"] = $"export function f{m}() {{ return {m}; }} // line {i}", ["title"] = $"module{m % 13}.ts", ["metadata"] = new JsonObject(),
                        ["time"] = new JsonObject { ["start"] = 1, ["end"] = 2 },
                    },
                });
            }
        }

        return ids;
    }

    private static void Write(string path, JsonObject o)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (o["id"] is null && path.EndsWith(".json", StringComparison.Ordinal))
        {
            o.Insert(0, "id", Path.GetFileNameWithoutExtension(path));
        }

        File.WriteAllBytes(path, JsJson.ToBytes(o));
    }

    private (string Data, string Project) NewDirs(string name, bool git = false)
    {
        string d = Path.Combine(root, name, "data");
        string p = Path.Combine(root, name, "project");
        Directory.CreateDirectory(d);
        Directory.CreateDirectory(p);
        if (git)
        {
            Run("git", ["init", "-q"], p);
            File.WriteAllText(Path.Combine(p, "README.md"), "bench\n");
            Run("git", ["add", "."], p);
            Run("git", ["-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "init"], p);
        }

        return (d, p);
    }

    private static void Run(string exe, string[] args, string cwd)
    {
        using var p = Process.Start(Start(exe, args, cwd))!;
        p.WaitForExit();
    }

    /// <summary>The sidecar as shipped: the NativeAOT binary from <c>scripts/publish.sh</c> if present, else the
    /// Release (or Debug) framework-dependent build run with dotnet.</summary>
    public static (string Exe, string[] Prefix) Sidecar()
    {
        string aot = Path.Combine(RepoRoot, "artifacts", "opencode-rpc", "opencode-rpc");
        if (File.Exists(aot))
        {
            return (aot, []);
        }

        string dll = Path.Combine(AppContext.BaseDirectory, "opencode-rpc.dll");
        return ("dotnet", ["exec", dll]);
    }

    internal static ProcessStartInfo Start(string exe, IEnumerable<string> args, string? cwd = null)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (cwd is not null)
        {
            psi.WorkingDirectory = cwd;
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    private ProcessStartInfo RefStart(string version, string[] args, string cwd, string? home = null)
    {
        var psi = Start("bash", [Path.Combine(Shared, "tools", "opencode-ref.sh"), .. args], cwd);
        psi.Environment["OCREF_VERSION"] = version;
        psi.Environment["OCREF_HOME"] = home ?? Path.Combine(root, "ochome-" + version);
        psi.Environment["OCREF_TIMEOUT"] = "120";
        return psi;
    }

    /// <summary>Runs a process once to warm up, then <paramref name="runs"/> times; wall times in ms. stdout is drained
    /// (to a buffer, like a pipe to a file) so a large output is part of the cost.</summary>
    private static async Task<List<double>> TimeProcessAsync(Func<ProcessStartInfo> psi, int runs)
    {
        var times = new List<double>();
        for (int i = 0; i <= runs; i++)
        {
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi())!;
            p.StandardInput.Close();
            var o = p.StandardOutput.ReadToEndAsync();
            var e = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            await o;
            string err = await e;
            if (p.ExitCode != 0)
            {
                throw new InvalidOperationException($"{p.StartInfo.FileName} exited {p.ExitCode}: {err.Trim()}");
            }

            if (i > 0)
            {
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
        }

        return times;
    }

    internal static Task<JsonElement> Invoke(JsonRpc rpc, string method, JsonObject args)
    {
        IReadOnlyDictionary<string, object?> named = args.ToDictionary(kv => kv.Key, kv => (object?)kv.Value?.DeepClone());
        IReadOnlyDictionary<string, Type> types = args.ToDictionary(kv => kv.Key, _ => typeof(JsonNode));
        return rpc.InvokeWithParameterObjectAsync<JsonElement>(method, named, types, CancellationToken.None);
    }

    public static string Stat(List<double> ms)
    {
        var s = ms.Order().ToList();
        double median = s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
        return $"{Fmt(median)} ({Fmt(s[0])}–{Fmt(s[^1])})";
    }

    private static string Pct(List<double> ms, int pct) => Fmt(Percentile(ms, pct));

    private static double Percentile(List<double> ms, int pct)
    {
        var s = ms.Order().ToList();
        return s[Math.Min(s.Count - 1, (int)Math.Ceiling(pct / 100.0 * s.Count) - 1)];
    }

    private static string Ratio(List<double> reference, List<double> ours) =>
        $"{Median(reference) / Median(ours):N1}× faster";

    private static double Median(List<double> ms) => ms.Order().ElementAt(ms.Count / 2);

    public static string Fmt(double ms) => ms >= 1000 ? $"{ms / 1000:N2} s" : ms >= 10 ? $"{ms:N0} ms" : $"{ms.ToString("0.00", CultureInfo.InvariantCulture)} ms";

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "OpenCode.Rpc.sln")))
            {
                return d.FullName;
            }
        }

        return Environment.CurrentDirectory;
    }
}

/// <summary>The real server on in-memory pipes, for in-process figures.</summary>
/// <summary>The shipped sidecar (<see cref="Bench.Sidecar"/>) as an editor runs it: its own process, `serve` on a data
/// dir, a listening client on its stdio, initialized, with one new session. Disposing closes its stdin and waits for it
/// to exit.</summary>
internal sealed class SidecarSession : IAsyncDisposable
{
    private readonly Process process;

    private SidecarSession(Process process, JsonRpc rpc)
    {
        this.process = process;
        Rpc = rpc;
    }

    public JsonRpc Rpc { get; }

    public string SessionId { get; private set; } = "";

    public static async Task<SidecarSession> StartAsync((string Data, string Project) dirs)
    {
        var (exe, prefix) = Bench.Sidecar();
        var p = Process.Start(Bench.Start(exe, [.. prefix, "serve", "--data-dir", dirs.Data, "--directory", dirs.Project]))!;
        _ = p.StandardError.ReadToEndAsync(); // drained, so a chatty server never blocks on it
        var s = new SidecarSession(p, Bench.Client(p.StandardInput.BaseStream, p.StandardOutput.BaseStream));
        await Bench.Invoke(s.Rpc, "initialize", new JsonObject { ["directory"] = dirs.Project });
        s.SessionId = (await Bench.Invoke(s.Rpc, "session/create", new JsonObject { ["title"] = "bench" })).GetProperty("id").GetString()!;
        return s;
    }

    public async ValueTask DisposeAsync()
    {
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        Rpc.Dispose();
        process.Dispose();
    }
}

internal sealed class InProc : IAsyncDisposable
{
    private readonly RpcServer server;
    private readonly JsonRpc client;

    private InProc((string Data, string Project) dirs)
    {
        var (s, c) = FullDuplexStream.CreatePair();
        server = RpcServer.Start(s, s, new ServerOptions(dirs.Data, dirs.Project), _ => { });
        client = Bench.Client(c, c);
    }

    public static async Task<InProc> StartAsync((string Data, string Project) dirs)
    {
        var x = new InProc(dirs);
        await x.CallAsync("initialize", new JsonObject { ["directory"] = dirs.Project });
        return x;
    }

    public Task<JsonElement> CallAsync(string method, JsonObject args) => Bench.Invoke(client, method, args);

    public async ValueTask DisposeAsync()
    {
        client.Dispose();
        server.Dispose();
        await Task.CompletedTask;
    }
}

/// <summary>The real server on in-memory pipes with a client that writes request frames itself and reads each answer
/// frame as bytes, without parsing it: isolates the server's and the transport's share of a big answer.</summary>
internal sealed class RawFrameClient : IAsyncDisposable
{
    private readonly RpcServer server;
    private readonly Stream client;
    private readonly System.IO.Pipelines.PipeReader reader;
    private byte[] body = new byte[64 * 1024];
    private int nextId;

    private RawFrameClient((string Data, string Project) dirs)
    {
        var (s, c) = FullDuplexStream.CreatePair();
        server = RpcServer.Start(s, s, new ServerOptions(dirs.Data, dirs.Project), _ => { });
        client = c;
        reader = System.IO.Pipelines.PipeReader.Create(c);
    }

    /// <summary>Body length of the last answer.</summary>
    public int LastBodyBytes { get; private set; }

    public static async Task<RawFrameClient> StartAsync((string Data, string Project) dirs)
    {
        var x = new RawFrameClient(dirs);
        await x.CallAsync("initialize", JsonSerializer.Serialize(new JsonObject { ["directory"] = dirs.Project }));
        return x;
    }

    /// <summary>Sends one request and reads frames up to its answer (the server sends no notifications for the
    /// read-only calls this is used with); fails if the answer is not a result.</summary>
    public async Task CallAsync(string method, string paramsJson)
    {
        int id = ++nextId;
        byte[] req = System.Text.Encoding.UTF8.GetBytes($"{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{method}\",\"params\":{paramsJson}}}");
        await client.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"Content-Length: {req.Length}\r\n\r\n"));
        await client.WriteAsync(req);
        await client.FlushAsync();
        int length = await ReadHeaderAsync();
        if (body.Length < length)
        {
            body = new byte[length];
        }

        int filled = 0;
        while (filled < length)
        {
            var r = await reader.ReadAsync();
            long take = Math.Min(r.Buffer.Length, length - filled);
            r.Buffer.Slice(0, take).CopyTo(body.AsSpan(filled));
            filled += (int)take;
            reader.AdvanceTo(r.Buffer.GetPosition(take));
        }

        LastBodyBytes = length;
        string head = System.Text.Encoding.UTF8.GetString(body, 0, Math.Min(length, 64));
        if (!head.StartsWith($"{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{method}: unexpected answer {head}…");
        }
    }

    private async Task<int> ReadHeaderAsync()
    {
        while (true)
        {
            var r = await reader.ReadAsync();
            var seq = new SequenceReader<byte>(r.Buffer);
            if (seq.TryReadTo(out ReadOnlySequence<byte> header, "\r\n\r\n"u8, advancePastDelimiter: true))
            {
                string text = System.Text.Encoding.ASCII.GetString(header.ToArray());
                reader.AdvanceTo(seq.Position);
                return int.Parse(text.Split(':', 2)[1].Trim(), CultureInfo.InvariantCulture);
            }

            if (r.IsCompleted)
            {
                throw new EndOfStreamException("the server closed the connection");
            }

            reader.AdvanceTo(r.Buffer.Start, r.Buffer.End);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await reader.CompleteAsync();
        client.Dispose();
        server.Dispose();
    }
}

/// <summary>
/// The shipped sidecar driven the leanest way a client can: one thread that writes each request frame to its stdin
/// and reads its stdout synchronously, frame by frame, until the answer (notifications are read and skipped). No
/// client library's threads or dispatch are timed, so what is left is the sidecar and the pipes. A client library
/// (StreamJsonRpc, vscode-jsonrpc) adds its own hops on top: the durable-writes row shows both.
/// </summary>
internal sealed class RawStdioClient : IDisposable
{
    private readonly Process process;
    private readonly Stream input;
    private readonly Stream output;
    private byte[] buffer = new byte[64 * 1024];
    private int start;
    private int end;
    private int nextId;

    private RawStdioClient(Process process)
    {
        this.process = process;
        input = process.StandardInput.BaseStream;
        output = process.StandardOutput.BaseStream;
    }

    public string SessionId { get; private set; } = "";

    /// <summary>Starts `serve` on <paramref name="dirs"/>, initializes it and creates one session.</summary>
    public static RawStdioClient Start((string Data, string Project) dirs)
    {
        var (exe, prefix) = Bench.Sidecar();
        var p = Process.Start(Bench.Start(exe, [.. prefix, "serve", "--data-dir", dirs.Data, "--directory", dirs.Project]))!;
        _ = p.StandardError.ReadToEndAsync(); // drained, so a chatty server never blocks on it
        var c = new RawStdioClient(p);
        c.Call("initialize", new JsonObject { ["directory"] = dirs.Project });
        c.SessionId = c.Call("session/create", new JsonObject { ["title"] = "bench" }).GetProperty("id").GetString()!;
        return c;
    }

    /// <summary>Sends one request and returns its result; throws on an error answer.</summary>
    public JsonElement Call(string method, JsonObject args)
    {
        int id = ++nextId;
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = args.DeepClone() });
        byte[] head = System.Text.Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n");
        byte[] frame = [.. head, .. body];
        input.Write(frame);
        input.Flush();
        while (true)
        {
            using var doc = JsonDocument.Parse(ReadFrame());
            if (!doc.RootElement.TryGetProperty("id", out var got) || got.ValueKind != JsonValueKind.Number || got.GetInt32() != id)
            {
                continue; // a notification
            }

            if (doc.RootElement.TryGetProperty("error", out var error))
            {
                throw new InvalidOperationException($"{method}: {error}");
            }

            return doc.RootElement.GetProperty("result").Clone();
        }
    }

    private ReadOnlyMemory<byte> ReadFrame()
    {
        int length = -1;
        while (length < 0)
        {
            int at = buffer.AsSpan(start, end - start).IndexOf("\r\n\r\n"u8);
            if (at >= 0)
            {
                string header = System.Text.Encoding.ASCII.GetString(buffer, start, at);
                length = int.Parse(header.Split(':', 2)[1].Trim(), CultureInfo.InvariantCulture);
                start += at + 4;
            }
            else
            {
                Fill();
            }
        }

        while (end - start < length)
        {
            Fill();
        }

        var frame = buffer.AsMemory(start, length);
        start += length;
        return frame;
    }

    private void Fill()
    {
        if (start > 0)
        {
            // The unread tail to the front, so a frame is always contiguous.
            Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
            end -= start;
            start = 0;
        }

        if (end == buffer.Length)
        {
            Array.Resize(ref buffer, buffer.Length * 2);
        }

        int n = output.Read(buffer, end, buffer.Length - end);
        if (n == 0)
        {
            throw new EndOfStreamException("the sidecar closed its stdout");
        }

        end += n;
    }

    public void Dispose()
    {
        input.Close();
        process.WaitForExit();
        process.Dispose();
    }
}
