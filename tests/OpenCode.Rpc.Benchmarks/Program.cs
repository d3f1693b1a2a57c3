using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nerdbank.Streams;
using OpenCode.Rpc.Benchmarks;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Server;
using StreamJsonRpc;

// The benchmark suite: one command, one table. Whole-process figures are medians of several runs after a warm-up;
// in-process figures are medians over many calls. The machine is noisy: compare ratios within one run.
//   dotnet run -c Release --project tests/OpenCode.Rpc.Benchmarks [-- --quick] [--only NAME]
//   dotnet run -c Release --project tests/OpenCode.Rpc.Benchmarks -- --scale [--sizes 1000,10000,100000]
var quick = args.Contains("--quick");
string? only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
if (args.Contains("--scale"))
{
    // "Scale on paper" has its own table: one column per size. See ScaleBench.
    string? sizesArg = args.SkipWhile(a => a != "--sizes").Skip(1).FirstOrDefault();
    int[] sizes = sizesArg?.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray() ?? [1_000, 10_000, 100_000];
    using var scale = new ScaleBench(sizes);
    Console.WriteLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores, {Bench.Cpu()}, .NET {Environment.Version}; median (min–max) of warm calls over in-proc pipes");
    Console.WriteLine();
    await scale.RunAsync(Console.Out);
    return 0;
}

var bench = new Bench(quick);
using var compaction = new CompactionBench(quick);
using var shareBench = new ShareBench(quick);
using var exportBench = new ExportBench(quick);
using var snapshotBench = new SnapshotBench(quick);
var items = new List<(string Name, Func<Task<Row>> Run)>
{
    ("cold-start", bench.ColdStartAsync),
    ("cli-session-list", bench.CliSessionListAsync),
    ("session-list-10k", bench.SessionList10kAsync),
    ("durable-writes", bench.DurableWritesAsync),
    ("agent-turn", bench.AgentTurnAsync),
    ("rpc-throughput", bench.RpcThroughputAsync),
    ("fork-2000", bench.Fork2000Async),
    ("search-10k", bench.Search10kAsync),
    ("compact-offline-1000", compaction.CompactOffline1000Async),
    ("context-2000", compaction.Context2000Async),
    ("tokenizer", compaction.TokenizerThroughputAsync),
    ("share-sync-rps", shareBench.SyncThroughputAsync),
    ("share-data-2000", shareBench.Data2000Async),
    ("export-200mb-rss", exportBench.Export200MbAsync),
    ("snapshot-track-20k", snapshotBench.Track20kAsync),
    ("revert-100", snapshotBench.Revert100Async),
};
var rows = new List<Row>();
foreach (var (name, run) in items)
{
    if (only is not null && !name.Contains(only, StringComparison.Ordinal))
    {
        continue;
    }

    Console.Error.WriteLine($"== {name}");
    try
    {
        rows.Add(await run());
    }
    catch (Exception ex)
    {
        rows.Add(new Row(name, "failed: " + ex.Message.Split('\n')[0], "", ""));
    }
}

Console.WriteLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores, {Bench.Cpu()}, .NET {Environment.Version}{(quick ? " (quick sizes)" : "")}");
Console.WriteLine();
Console.WriteLine("| what | ours: median (min–max) | reference, same run | target |");
Console.WriteLine("|---|---|---|---|");
foreach (var r in rows)
{
    Console.WriteLine($"| {r.What} | {r.Ours} | {r.Reference} | {r.Target} |");
}

bench.Dispose();
return rows.Any(r => r.Ours.StartsWith("failed", StringComparison.Ordinal)) ? 1 : 0;
