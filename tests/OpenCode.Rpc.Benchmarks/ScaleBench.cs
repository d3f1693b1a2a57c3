using System.Diagnostics;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Benchmarks;

/// <summary>
/// "Scale on paper": how the main calls grow with the number of sessions in a project, the number of messages in one
/// session and the number of files in a worktree, measured at 1k, 10k and 100k over in-proc pipes. Prints its own
/// table (one row per call, one column per size). Run alone: it writes about a million small files at the largest
/// size. <c>dotnet run -c Release --project tests/OpenCode.Rpc.Benchmarks -- --scale [--sizes 1000,10000]</c>
/// </summary>
public sealed class ScaleBench(int[] sizes) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("ocrpc-scale-").FullName;
    private readonly Dictionary<string, Dictionary<int, string>> cells = new(StringComparer.Ordinal);
    private readonly List<string> order = [];

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

    public async Task RunAsync(TextWriter output)
    {
        foreach (int n in sizes)
        {
            Console.Error.WriteLine($"== scale: {n:N0} sessions");
            await SessionsAsync(n);
            Console.Error.WriteLine($"== scale: {n:N0} messages in one session");
            await MessagesAsync(n);
            Console.Error.WriteLine($"== scale: {n:N0} files in a worktree");
            await WorktreeAsync(n);
        }

        output.WriteLine($"| call | {string.Join(" | ", sizes.Select(s => $"{s:N0}"))} |");
        output.WriteLine($"|---|{string.Concat(sizes.Select(_ => "---|"))}");
        foreach (var what in order)
        {
            output.WriteLine($"| {what} | {string.Join(" | ", sizes.Select(s => cells[what].GetValueOrDefault(s, "–")))} |");
        }
    }

    private async Task SessionsAsync(int n)
    {
        var dirs = NewDirs($"sessions-{n}");
        var store = new SessionStore(new StoreLayout(dirs.Data));
        store.Initialize();
        Bench.WriteSessions(store, ProjectResolver.Resolve(dirs.Project), n, messagesEach: 1); // 1 message, 2 parts each
        Clean(dirs.Data);
        await using var c = await InProc.StartAsync(dirs);
        await MeasureAsync("`session/list`, whole answer (N sessions)", n, () => c.CallAsync("session/list", new JsonObject()));
        await MeasureAsync("`session/list`, `limit: 50` (N sessions)", n, () => c.CallAsync("session/list", new JsonObject { ["limit"] = 50 }));
        await MeasureAsync("`session/search`, no hit (N sessions, 2N parts)", n, () => c.CallAsync("session/search", new JsonObject { ["query"] = "needle-in-the-haystack" }), runs: 5);
    }

    private async Task MessagesAsync(int n)
    {
        var dirs = NewDirs($"messages-{n}");
        var store = new SessionStore(new StoreLayout(dirs.Data));
        store.Initialize();
        string sid = Bench.WriteSessions(store, ProjectResolver.Resolve(dirs.Project), 1, messagesEach: n)[0];
        Clean(dirs.Data);
        await using var c = await InProc.StartAsync(dirs);
        int runs = n >= 100_000 ? 3 : 5;
        await MeasureAsync("`message/list`, whole session (N messages, 2N parts)", n, () => c.CallAsync("message/list", new JsonObject { ["sessionID"] = sid }), runs);
        await MeasureAsync("`message/list`, `limit: 50` (N messages)", n, () => c.CallAsync("message/list", new JsonObject { ["sessionID"] = sid, ["limit"] = 50 }), runs);
        await MeasureAsync("`session/export` JSON (N messages)", n, () => c.CallAsync("session/export", new JsonObject { ["sessionID"] = sid, ["format"] = "json" }), runs);
        await MeasureAsync("`session/search`, no hit (one session of N messages)", n, () => c.CallAsync("session/search", new JsonObject { ["query"] = "needle-in-the-haystack" }), runs);
    }

    private async Task WorktreeAsync(int n)
    {
        var dirs = NewDirs($"files-{n}");
        for (int i = 0; i < n; i++)
        {
            string dir = Path.Combine(dirs.Project, "src", $"d{i / 100:D4}");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, $"f{i % 100:D2}.ts"), $"export const v{i} = {i};\n");
        }

        Clean(dirs.Data);
        await using var c = await InProc.StartAsync(dirs);
        string sid = (await c.CallAsync("session/create", new JsonObject { ["title"] = "scale" })).GetProperty("id").GetString()!;
        var args = new JsonObject { ["sessionID"] = sid };
        var first = Stopwatch.StartNew();
        await c.CallAsync("snapshot/track", args);
        Put("`snapshot/track`, first (N files)", n, first.Elapsed.TotalMilliseconds);
        await Task.Delay(2100); // past the racy-timestamp window, as a warm server would be
        int round = 0;
        await MeasureAsync("`snapshot/track`, warm, 10 files changed (N files)", n, async () =>
        {
            round++;
            for (int i = 0; i < 10; i++)
            {
                File.WriteAllText(Path.Combine(dirs.Project, "src", $"d{i:D4}", "f00.ts"), $"export const changed = {round};\n");
            }

            return await c.CallAsync("snapshot/track", args);
        }, runs: 5, warmups: 0);
    }

    private async Task MeasureAsync<T>(string what, int n, Func<Task<T>> call, int runs = 10, int warmups = 1)
    {
        var cold = Stopwatch.StartNew();
        for (int i = 0; i < warmups; i++)
        {
            await call();
        }

        double first = cold.Elapsed.TotalMilliseconds;
        var times = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            await call();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        string cell = Bench.Stat(times);
        Put(what, n, warmups > 0 ? $"{cell}; first {Bench.Fmt(first)}" : cell);
    }

    private void Put(string what, int n, double ms) => Put(what, n, Bench.Fmt(ms));

    private void Put(string what, int n, string cell)
    {
        if (!cells.TryGetValue(what, out var row))
        {
            cells[what] = row = [];
            order.Add(what);
        }

        row[n] = cell;
    }

    // Data of one size is removed before the next is generated, so the largest size alone bounds the disk used.
    private void Clean(string keep)
    {
        foreach (var d in Directory.EnumerateDirectories(root))
        {
            if (!keep.StartsWith(d + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                try
                {
                    Directory.Delete(d, true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private (string Data, string Project) NewDirs(string name)
    {
        string d = Path.Combine(root, name, "data");
        string p = Path.Combine(root, name, "project");
        Directory.CreateDirectory(d);
        Directory.CreateDirectory(p);
        return (d, p);
    }
}
