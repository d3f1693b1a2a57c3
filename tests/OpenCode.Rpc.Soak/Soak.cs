using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;

namespace OpenCode.Rpc.Soak;

/// <summary>What a soak run found. <see cref="Ok"/> when nothing acknowledged was lost and every file parses.</summary>
public sealed record SoakResult(string Mode, int Kills, long WritesAcked, long WritesVerified, long Lost, long Torn, long FilesChecked,
    long StrayTempFiles, long TempsListedAsData, TimeSpan Duration, IReadOnlyList<string> Problems)
{
    public bool Ok => Lost == 0 && Torn == 0 && TempsListedAsData == 0 && Problems.Count == 0;

    public string Table()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| mode | kills | writes acked | writes verified | lost | torn/corrupt files | files checked | stray temp files | temps listed as data | duration |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {Mode} | {Kills} | {WritesAcked} | {WritesVerified} | {Lost} | {Torn} | {FilesChecked} | {StrayTempFiles} | {TempsListedAsData} | {Duration:hh\\:mm\\:ss} |");
        foreach (var p in Problems.Take(20))
        {
            sb.AppendLine("problem: " + p);
        }

        return sb.ToString();
    }
}

/// <summary>Where the server is and where it writes.</summary>
public sealed record SoakOptions(string ServerPath, string DataDir, string ProjectDir, int Seed, Action<string> Log)
{
    /// <summary>The sidecar next to this assembly: the NativeAOT binary from scripts/publish.sh if asked for, else the dll.</summary>
    public static string DefaultServer() => Path.Combine(AppContext.BaseDirectory, "opencode-rpc.dll");

    public ProcessStartInfo StartInfo()
    {
        var psi = ServerPath.EndsWith(".dll", StringComparison.Ordinal) ? new ProcessStartInfo("dotnet") : new ProcessStartInfo(ServerPath);
        if (ServerPath.EndsWith(".dll", StringComparison.Ordinal))
        {
            psi.ArgumentList.Add("exec");
            psi.ArgumentList.Add(ServerPath);
        }

        foreach (var a in new[] { "serve", "--data-dir", DataDir, "--directory", ProjectDir })
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }
}

/// <summary>Everything the driver was told "done" for: after any crash, all of it must be on disk.</summary>
public sealed class Ledger
{
    private readonly Lock gate = new();

    public HashSet<string> Sessions { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Messages { get; } = new(StringComparer.Ordinal); // message -> session

    public Dictionary<string, PartState> Parts { get; } = new(StringComparer.Ordinal);

    public long Acked;

    public void Session(string id)
    {
        lock (gate)
        {
            Sessions.Add(id);
            Acked++;
        }
    }

    public void Message(string id, string session)
    {
        lock (gate)
        {
            Messages[id] = session;
            Acked++;
        }
    }

    public void Part(string id, string session, string message, int version)
    {
        lock (gate)
        {
            if (!Parts.TryGetValue(id, out var p) || p.Acked < version)
            {
                Parts[id] = new PartState(session, message, version);
            }

            Acked++;
        }
    }

    public (string[] Sessions, KeyValuePair<string, string>[] Messages, KeyValuePair<string, PartState>[] Parts) Copy()
    {
        lock (gate)
        {
            return (Sessions.ToArray(), Messages.ToArray(), Parts.ToArray());
        }
    }
}

public sealed record PartState(string Session, string Message, int Acked);

public static class SoakRunner
{
    /// <summary>Starts the sidecar, writes, SIGKILLs it at a random moment, restarts and checks; <paramref name="kills"/> times.
    /// <paramref name="extraOps"/> lets a feature branch add its own writes (session/revert, import, …): each gets the
    /// client, the ledger and the random source, and must record in the ledger only what the server acknowledged.</summary>
    public static async Task<SoakResult> KillSoakAsync(SoakOptions o, int kills, IReadOnlyList<Func<SidecarClient, Ledger, Random, Task>>? extraOps = null, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        var rng = new Random(o.Seed);
        var ledger = new Ledger();
        var stats = new Stats();
        var partVersions = new System.Collections.Concurrent.ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        for (int k = 0; k < kills; k++)
        {
            ct.ThrowIfCancellationRequested();
            await using var client = new SidecarClient(o.StartInfo());
            await client.ResultAsync("initialize", new JsonObject { ["directory"] = o.ProjectDir }, ct).ConfigureAwait(false);
            await VerifyAsync(client, o, ledger, stats, ct).ConfigureAwait(false);

            // The kill lands at a random moment after this round's first acknowledged write (a loaded machine may
            // take a while to answer the first one), so every round both writes and dies mid-stream.
            int delay = rng.Next(0, 300);
            long before = Interlocked.Read(ref ledger.Acked);
            var stop = new CancellationTokenSource();
            var workers = Enumerable.Range(0, 4).Select(w => WriteUntilDeadAsync(client, ledger, partVersions, new Random(rng.Next()), extraOps, stop.Token)).ToArray();
            var firstAck = Stopwatch.StartNew();
            while (Interlocked.Read(ref ledger.Acked) == before && firstAck.Elapsed < TimeSpan.FromSeconds(20) && !workers.All(w => w.IsCompleted))
            {
                await Task.Delay(5, ct).ConfigureAwait(false);
            }

            await Task.Delay(delay, ct).ConfigureAwait(false);
            client.Kill();
            await Task.WhenAll(workers).ConfigureAwait(false);
            await stop.CancelAsync().ConfigureAwait(false);
            if ((k + 1) % 25 == 0 || k + 1 == kills)
            {
                o.Log($"{k + 1}/{kills} kills, {ledger.Acked} writes acknowledged, {stats.Lost} lost, {stats.Torn} torn, {sw.Elapsed:hh\\:mm\\:ss}");
            }
        }

        await using (var last = new SidecarClient(o.StartInfo()))
        {
            await last.ResultAsync("initialize", new JsonObject { ["directory"] = o.ProjectDir }, ct).ConfigureAwait(false);
            await VerifyAsync(last, o, ledger, stats, ct).ConfigureAwait(false);
        }

        return new SoakResult("kill", kills, ledger.Acked, stats.Verified, stats.Lost, stats.Torn, stats.Files, stats.Temps, stats.TempsListed, sw.Elapsed, stats.Problems);
    }

    /// <summary>Two sidecars on one data dir, each with <paramref name="streams"/> concurrent request streams, writing
    /// new messages and parts to one shared session and to a session of their own: <paramref name="writes"/> in all.
    /// Then a fresh sidecar checks that every acknowledged write is there, whole.</summary>
    public static async Task<SoakResult> ConcurrencySoakAsync(SoakOptions o, int writes, int processes = 2, int streams = 4, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        var ledger = new Ledger();
        var stats = new Stats();
        var clients = new List<SidecarClient>();
        try
        {
            for (int i = 0; i < processes; i++)
            {
                var c = new SidecarClient(o.StartInfo());
                clients.Add(c);
                await c.ResultAsync("initialize", new JsonObject { ["directory"] = o.ProjectDir }, ct).ConfigureAwait(false);
            }

            string shared = (string)(await clients[0].ResultAsync("session/create", new JsonObject { ["title"] = "shared" }, ct).ConfigureAwait(false))!["id"]!;
            ledger.Session(shared);
            long remaining = writes;
            var tasks = new List<Task>();
            foreach (var c in clients)
            {
                string own = (string)(await c.ResultAsync("session/create", new JsonObject { ["title"] = "own" }, ct).ConfigureAwait(false))!["id"]!;
                ledger.Session(own);
                for (int s = 0; s < streams; s++)
                {
                    string target = s % 2 == 0 ? shared : own;
                    tasks.Add(Task.Run(async () =>
                    {
                        string? message = null;
                        while (Interlocked.Decrement(ref remaining) >= 0)
                        {
                            if (message is null || Random.Shared.Next(3) == 0)
                            {
                                var info = (JsonObject)(await c.ResultAsync("message/update", new JsonObject { ["info"] = UserMessage(target) }, ct).ConfigureAwait(false))!;
                                message = (string)info["id"]!;
                                ledger.Message(message, target);
                            }
                            else
                            {
                                var part = (JsonObject)(await c.ResultAsync("part/update", new JsonObject { ["part"] = TextPart(target, message, null, 0) }, ct).ConfigureAwait(false))!;
                                ledger.Part((string)part["id"]!, target, message, 0);
                            }
                        }
                    }, ct));
                }
            }

            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync().ConfigureAwait(false);
            }
        }

        await using (var check = new SidecarClient(o.StartInfo()))
        {
            await check.ResultAsync("initialize", new JsonObject { ["directory"] = o.ProjectDir }, ct).ConfigureAwait(false);
            await VerifyAsync(check, o, ledger, stats, ct).ConfigureAwait(false);
        }

        return new SoakResult($"concurrency {processes}x{streams}", 0, ledger.Acked, stats.Verified, stats.Lost, stats.Torn, stats.Files, stats.Temps, stats.TempsListed, sw.Elapsed, stats.Problems);
    }

    private sealed class Stats
    {
        public long Verified;
        public long Lost;
        public long Torn;
        public long Files;
        public long Temps;
        public long TempsListed;
        public List<string> Problems { get; } = [];
    }

    internal static JsonObject UserMessage(string session) => new()
    {
        ["sessionID"] = session,
        ["role"] = "user",
        ["time"] = new JsonObject { ["created"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
        ["agent"] = "build",
        ["model"] = new JsonObject { ["providerID"] = "anthropic", ["modelID"] = "claude-sonnet-4-5" },
    };

    internal static JsonObject TextPart(string session, string message, string? id, int version)
    {
        var o = new JsonObject();
        if (id is not null)
        {
            o["id"] = id;
        }

        o["sessionID"] = session;
        o["messageID"] = message;
        o["type"] = "text";
        o["text"] = $"v{version} " + new string('x', version % 50);
        return o;
    }

    private static int VersionOf(string? text) =>
        text is not null && text.StartsWith('v') && int.TryParse(text.AsSpan(1, text.IndexOf(' ', StringComparison.Ordinal) - 1), CultureInfo.InvariantCulture, out int v) ? v : -1;

    private static async Task WriteUntilDeadAsync(SidecarClient c, Ledger ledger, System.Collections.Concurrent.ConcurrentDictionary<string, int> versions,
        Random rng, IReadOnlyList<Func<SidecarClient, Ledger, Random, Task>>? extraOps, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var (sessions, messages, parts) = ledger.Copy();
                int op = rng.Next(100);
                if (sessions.Length == 0 || op < 5)
                {
                    var s = (JsonObject)(await c.ResultAsync("session/create", new JsonObject { ["title"] = "soak" }, ct).ConfigureAwait(false))!;
                    ledger.Session((string)s["id"]!);
                }
                else if (messages.Length == 0 || op < 40)
                {
                    string session = sessions[rng.Next(sessions.Length)];
                    var m = (JsonObject)(await c.ResultAsync("message/update", new JsonObject { ["info"] = UserMessage(session) }, ct).ConfigureAwait(false))!;
                    ledger.Message((string)m["id"]!, session);
                }
                else if (parts.Length == 0 || op < 70)
                {
                    var (message, session) = messages[rng.Next(messages.Length)];
                    var p = (JsonObject)(await c.ResultAsync("part/update", new JsonObject { ["part"] = TextPart(session, message, null, 0) }, ct).ConfigureAwait(false))!;
                    ledger.Part((string)p["id"]!, session, message, 0);
                }
                else if (op < 95 || extraOps is not { Count: > 0 })
                {
                    if (op >= 93)
                    {
                        string session = sessions[rng.Next(sessions.Length)];
                        var f = (JsonObject)(await c.ResultAsync("session/fork", new JsonObject { ["sessionID"] = session }, ct).ConfigureAwait(false))!;
                        ledger.Session((string)f["id"]!);
                        continue;
                    }

                    var (id, state) = parts[rng.Next(parts.Length)];
                    int v = versions.AddOrUpdate(id, state.Acked + 1, (_, old) => Math.Max(old, state.Acked) + 1);
                    await c.ResultAsync("part/update", new JsonObject { ["part"] = TextPart(state.Session, state.Message, id, v), ["delta"] = "x" }, ct).ConfigureAwait(false);
                    ledger.Part(id, state.Session, state.Message, v);
                }
                else
                {
                    await extraOps[rng.Next(extraOps.Count)](c, ledger, rng).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or RpcErrorException)
        {
            // The kill landed (or the op was refused: e.g. a fork of a session another worker is writing).
            // Only acknowledged writes are in the ledger, so the check stays exact.
        }
    }

    /// <summary>The three checks: every store file parses; no temp file is served as data; every acknowledged write is present.</summary>
    private static async Task VerifyAsync(SidecarClient c, SoakOptions o, Ledger ledger, Stats stats, CancellationToken ct)
    {
        string storage = Path.Combine(o.DataDir, "storage");
        var ids = new HashSet<string>(StringComparer.Ordinal);
        if (Directory.Exists(storage))
        {
            foreach (var f in Directory.EnumerateFiles(storage, "*", SearchOption.AllDirectories))
            {
                if (f.EndsWith(".json", StringComparison.Ordinal))
                {
                    stats.Files++;
                    try
                    {
                        JsJson.Parse(await File.ReadAllBytesAsync(f, ct).ConfigureAwait(false));
                        ids.Add(Path.GetFileNameWithoutExtension(f));
                    }
                    catch (Exception ex) when (ex is System.Text.Json.JsonException or IOException)
                    {
                        stats.Torn++;
                        stats.Problems.Add($"torn file {f}: {ex.Message}");
                    }
                }
                else if (f.EndsWith(".tmp", StringComparison.Ordinal))
                {
                    stats.Temps++;
                }
                else if (!f.EndsWith("migration", StringComparison.Ordinal))
                {
                    stats.Problems.Add($"unexpected file {f}");
                }
            }
        }

        var (sessions, messages, parts) = ledger.Copy();
        var listed = (JsonArray)(await c.ResultAsync("session/list", new JsonObject { ["limit"] = 100_000, ["archived"] = true }, ct).ConfigureAwait(false))!;
        foreach (var s in listed)
        {
            string id = (string)s!["id"]!;
            if (!ids.Contains(id))
            {
                stats.TempsListed++;
                stats.Problems.Add($"session/list shows {id}, which has no .json file");
            }
        }

        var messagesBySession = messages.GroupBy(m => m.Value).ToDictionary(g => g.Key, g => g.Select(m => m.Key).ToList());
        var partsByMessage = parts.GroupBy(p => p.Value.Message).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var s in sessions)
        {
            JsonArray list;
            try
            {
                await c.ResultAsync("session/get", new JsonObject { ["sessionID"] = s }, ct).ConfigureAwait(false);
                stats.Verified++;
                list = (JsonArray)(await c.ResultAsync("message/list", new JsonObject { ["sessionID"] = s }, ct).ConfigureAwait(false))!;
            }
            catch (RpcErrorException ex)
            {
                stats.Lost++;
                stats.Problems.Add($"acknowledged session {s} is gone: {ex.Message}");
                continue;
            }

            var served = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
            var servedParts = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
            foreach (var m in list)
            {
                string mid = (string)m!["info"]!["id"]!;
                served[mid] = (JsonObject)m;
                if (!ids.Contains(mid))
                {
                    stats.TempsListed++;
                    stats.Problems.Add($"message/list shows {mid}, which has no .json file");
                }

                foreach (var p in (JsonArray)m["parts"]!)
                {
                    string pid = (string)p!["id"]!;
                    servedParts[pid] = (JsonObject)p;
                    if (!ids.Contains(pid))
                    {
                        stats.TempsListed++;
                        stats.Problems.Add($"message/list shows part {pid}, which has no .json file");
                    }
                }
            }

            foreach (var m in messagesBySession.GetValueOrDefault(s) ?? [])
            {
                if (served.ContainsKey(m))
                {
                    stats.Verified++;
                }
                else
                {
                    stats.Lost++;
                    stats.Problems.Add($"acknowledged message {m} of {s} is gone");
                }

                foreach (var (pid, state) in partsByMessage.GetValueOrDefault(m) ?? [])
                {
                    if (!servedParts.TryGetValue(pid, out var p))
                    {
                        stats.Lost++;
                        stats.Problems.Add($"acknowledged part {pid} of {m} is gone");
                    }
                    else if (VersionOf((string?)p["text"]) < state.Acked)
                    {
                        stats.Lost++;
                        stats.Problems.Add($"part {pid} went back to \"{(string?)p["text"]}\" after v{state.Acked} was acknowledged");
                    }
                    else
                    {
                        stats.Verified++;
                    }
                }
            }
        }
    }
}
