using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Soak;

/// <summary>What a revert kill soak found. <see cref="Ok"/> when no restart ever found a half-reverted worktree, a
/// worktree that disagrees with the session's revert state, or a journal left after <c>initialize</c>.</summary>
public sealed record RevertSoakResult(int Kills, int MidRevert, int RolledBack, int Finished, int Completed, int HalfReverted,
    int JournalsLeft, TimeSpan Duration, IReadOnlyList<string> Problems)
{
    public bool Ok => HalfReverted == 0 && JournalsLeft == 0 && Problems.Count == 0;

    public string Table()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| mode | kills | killed mid-revert (journal left) | rolled back at start | finished at start | op had completed | half-reverted or inconsistent worktrees | journals left after initialize | duration |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| revert kill | {Kills} | {MidRevert} | {RolledBack} | {Finished} | {Completed} | {HalfReverted} | {JournalsLeft} | {Duration:hh\\:mm\\:ss} |");
        foreach (var p in Problems.Take(20))
        {
            sb.AppendLine("problem: " + p);
        }

        return sb.ToString();
    }
}

/// <summary>
/// SIGKILL while a revert restores files. A session records three AI turns through the sidecar, each rewriting a
/// few hundred files (and adding and deleting some), so the worktree has four known states. Each round starts the
/// sidecar (which recovers any interrupted revert before answering <c>initialize</c>), checks that the worktree is
/// exactly the state the session's <c>revert</c> says, then sends an undo, redo, revert or unrevert and kills the
/// process: most rounds the moment the revert journal appears (the restore is under way), the others at a random
/// moment. A half-reverted worktree, or one that disagrees with the session, is a failure.
/// </summary>
public static class RevertSoak
{
    private const int Turns = 3;

    public static async Task<RevertSoakResult> RunAsync(SoakOptions o, int kills, int filesPerTurn = 300, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        var rng = new Random(o.Seed);
        string configDir = Path.Combine(Path.GetDirectoryName(o.DataDir)!, "revert-soak-config");
        Directory.CreateDirectory(configDir);
        var (sessionId, users, states) = await SetUpAsync(o, configDir, filesPerTurn, ct).ConfigureAwait(false);
        string journal = Path.Combine(o.DataDir, "opencode-rpc", "revert", sessionId + ".journal.json");
        var problems = new List<string>();
        int mid = 0, rolledBack = 0, finished = 0, completed = 0, half = 0, left = 0;
        string? revertBefore = null;
        bool journalAtKill = false;
        string lastMove = "start";
        for (int k = 0; k <= kills; k++)
        {
            ct.ThrowIfCancellationRequested();
            await using var c = new SidecarClient(StartInfo(o, configDir));
            await c.ResultAsync("initialize", new JsonObject { ["directory"] = o.ProjectDir }, ct).ConfigureAwait(false);

            // Recovery ran before initialize answered: the worktree must be the state the session records.
            if (File.Exists(journal))
            {
                left++;
                problems.Add($"round {k}: the revert journal is still there after initialize");
            }

            var session = (JsonObject)(await c.ResultAsync("session/get", new JsonObject { ["sessionID"] = sessionId }, ct).ConfigureAwait(false))!;
            string? revertNow = (string?)session["revert"]?["messageID"];
            int expected = revertNow is null ? Turns : users.IndexOf(revertNow);
            var actual = FileMap(o.ProjectDir);
            int match = states.FindIndex(s => Same(s, actual));
            if (expected < 0 || match != expected)
            {
                half++;
                var want = expected >= 0 ? states[expected] : [];
                var diff = want.Keys.Union(actual.Keys).Where(key => want.GetValueOrDefault(key) != actual.GetValueOrDefault(key)).Order(StringComparer.Ordinal).ToList();
                string Where(string key) => string.Join(",", Enumerable.Range(0, states.Count).Where(i => states[i].GetValueOrDefault(key) == actual.GetValueOrDefault(key)));
                problems.Add($"round {k}: after {lastMove} (journal at kill: {journalAtKill}), session.revert={revertNow ?? "none"} expects state {expected}, the worktree is {(match < 0 ? "none of the known states (half reverted)" : $"state {match}")}; "
                    + $"{diff.Count} file(s) differ: {string.Join("; ", diff.Take(8).Select(key => $"{key} as in state(s) [{Where(key)}]"))}");
                break; // the next rounds would only repeat it
            }

            if (journalAtKill)
            {
                if (revertNow != revertBefore)
                {
                    finished++;
                }
                else
                {
                    rolledBack++;
                }
            }

            if (k == kills)
            {
                break;
            }

            // One move that changes files from where the session is (undo, redo, unrevert, or a revert to another
            // turn), then the kill.
            revertBefore = revertNow;
            int at = revertNow is null ? Turns : expected;
            var moves = new List<(string, JsonObject)>();
            if (at > 0)
            {
                moves.Add(("session/undo", new JsonObject { ["sessionID"] = sessionId }));
            }

            if (revertNow is not null)
            {
                moves.Add(("session/redo", new JsonObject { ["sessionID"] = sessionId }));
                moves.Add(("session/unrevert", new JsonObject { ["sessionID"] = sessionId }));
            }

            int other = Enumerable.Range(0, Turns).Where(t => t != at).OrderBy(_ => rng.Next()).First();
            moves.Add(("session/revert", new JsonObject { ["sessionID"] = sessionId, ["messageID"] = users[other] }));
            var (method, args) = moves[rng.Next(moves.Count)];
            lastMove = $"{method} {args["messageID"]} from state {at}";
            var call = c.CallAsync(method, args, ct);
            bool atJournal = rng.Next(10) < 8;
            if (atJournal)
            {
                // The restore is under way once the journal exists; kill then, or a little later.
                var wait = Stopwatch.StartNew();
                while (!File.Exists(journal) && !call.IsCompleted && wait.Elapsed < TimeSpan.FromSeconds(30))
                {
                    Thread.Yield();
                }

                if (rng.Next(2) == 0)
                {
                    Thread.Sleep(rng.Next(0, 20));
                }
            }
            else
            {
                await Task.Delay(rng.Next(0, 150), ct).ConfigureAwait(false);
            }

            bool done = call.IsCompleted;
            c.Kill();
            await c.Process.WaitForExitAsync(ct).ConfigureAwait(false);
            journalAtKill = File.Exists(journal);
            mid += journalAtKill ? 1 : 0;
            completed += done && !journalAtKill ? 1 : 0;
            try
            {
                await call.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or RpcErrorException or OperationCanceledException)
            {
                // killed before answering, or refused (nothing to undo or redo)
            }

            if ((k + 1) % 25 == 0)
            {
                o.Log($"revert soak: {k + 1}/{kills} kills, {mid} mid-revert ({rolledBack} rolled back, {finished} finished), {half} half-reverted, {sw.Elapsed:hh\\:mm\\:ss}");
            }
        }

        return new RevertSoakResult(kills, mid, rolledBack, finished, completed, half, left, sw.Elapsed, problems);
    }

    /// <summary>A committed git project, then a session whose three AI turns each rewrite <paramref name="files"/>
    /// files, add 10 and delete 10, recorded with step/start and step/finish. Returns the user messages and the
    /// worktree's state before the first turn and after each.</summary>
    private static async Task<(string Session, List<string> Users, List<Dictionary<string, string>> States)> SetUpAsync(SoakOptions o, string configDir, int files, CancellationToken ct)
    {
        string p = o.ProjectDir;
        for (int i = 0; i < files; i++)
        {
            Directory.CreateDirectory(Path.Combine(p, $"d{i % 10}"));
            await File.WriteAllTextAsync(Path.Combine(p, $"d{i % 10}", $"f{i}.txt"), $"base {i}\n", ct).ConfigureAwait(false);
        }

        Git(p, "init", "-q");
        Git(p, "add", "-A");
        Git(p, "-c", "user.email=s@s", "-c", "user.name=s", "commit", "-qm", "base");
        var states = new List<Dictionary<string, string>> { FileMap(p) };
        var users = new List<string>();
        await using var c = new SidecarClient(StartInfo(o, configDir));
        await c.ResultAsync("initialize", new JsonObject { ["directory"] = p }, ct).ConfigureAwait(false);
        string session = (string)(await c.ResultAsync("session/create", new JsonObject { ["title"] = "revert soak" }, ct).ConfigureAwait(false))!["id"]!;
        for (int t = 1; t <= Turns; t++)
        {
            var user = (JsonObject)(await c.ResultAsync("message/update", new JsonObject { ["info"] = SoakRunner.UserMessage(session) }, ct).ConfigureAwait(false))!;
            users.Add((string)user["id"]!);
            var asst = (JsonObject)(await c.ResultAsync("message/update", new JsonObject
            {
                ["info"] = new JsonObject
                {
                    ["sessionID"] = session, ["role"] = "assistant", ["time"] = new JsonObject { ["created"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
                    ["parentID"] = (string)user["id"]!, ["modelID"] = "m", ["providerID"] = "p", ["mode"] = "build", ["agent"] = "build",
                    ["path"] = new JsonObject { ["cwd"] = p, ["root"] = p }, ["cost"] = 0,
                    ["tokens"] = new JsonObject { ["input"] = 0, ["output"] = 0, ["reasoning"] = 0, ["cache"] = new JsonObject { ["read"] = 0, ["write"] = 0 } },
                },
            }, ct).ConfigureAwait(false))!;
            string asstId = (string)asst["id"]!;
            await c.ResultAsync("step/start", new JsonObject { ["sessionID"] = session, ["messageID"] = asstId }, ct).ConfigureAwait(false);
            for (int i = 0; i < files; i++)
            {
                string f = Path.Combine(p, $"d{i % 10}", $"f{i}.txt");
                if (File.Exists(f))
                {
                    await File.WriteAllTextAsync(f, $"turn {t} rewrote file {i}: {new string('x', (i * t) % 200)}\n", ct).ConfigureAwait(false);
                }
            }

            Directory.CreateDirectory(Path.Combine(p, $"new{t}"));
            for (int i = 0; i < 10; i++)
            {
                await File.WriteAllTextAsync(Path.Combine(p, $"new{t}", $"n{i}.txt"), $"added in turn {t}\n", ct).ConfigureAwait(false);
                File.Delete(Path.Combine(p, $"d{i}", $"f{(10 * (t - 1)) + i}.txt"));
            }

            await c.ResultAsync("step/finish", new JsonObject { ["sessionID"] = session, ["messageID"] = asstId, ["reason"] = "stop" }, ct).ConfigureAwait(false);
            states.Add(FileMap(p));
        }

        return (session, users, states);
    }

    private static ProcessStartInfo StartInfo(SoakOptions o, string configDir)
    {
        var psi = o.StartInfo();
        psi.ArgumentList.Add("--config-dir");
        psi.ArgumentList.Add(configDir);
        return psi;
    }

    /// <summary>Every file under the project except .git: path → content hash and exec bit.</summary>
    private static Dictionary<string, string> FileMap(string root)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(root, f).Replace('\\', '/');
            if (rel.StartsWith(".git/", StringComparison.Ordinal))
            {
                continue;
            }

            bool exec = !OperatingSystem.IsWindows() && (File.GetUnixFileMode(f) & UnixFileMode.UserExecute) != 0;
            map[rel] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))) + (exec ? "+x" : string.Empty);
        }

        return map;
    }

    private static bool Same(Dictionary<string, string> a, Dictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private static void Git(string cwd, params string[] args)
    {
        var psi = new ProcessStartInfo("git") { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"git {string.Join(' ', args)} failed: {p.StandardError.ReadToEnd()}");
        }
    }
}
