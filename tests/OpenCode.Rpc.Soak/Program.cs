using System.Globalization;
using OpenCode.Rpc.Soak;

// opencode-rpc-soak [--kills N] [--revert-kills R] [--concurrency WRITES] [--server PATH] [--data-dir DIR] [--seed N]
// Kill soak: starts `opencode-rpc serve`, writes, SIGKILLs it at a random moment, restarts and checks; N times.
// Then the revert kill soak: SIGKILL while a revert restores files, R times (default N / 4; 0 skips it).
// Concurrency soak: two sidecars x 4 request streams on one data dir, WRITES writes, then checks.
int kills = 25;
int? revertKills = null;
int? concurrency = null;
string server = SoakOptions.DefaultServer();
string? dataRoot = null;
int seed = Environment.TickCount;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--kills": kills = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--revert-kills": revertKills = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--concurrency": concurrency = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--server": server = Path.GetFullPath(args[++i]); break;
        case "--data-dir": dataRoot = Path.GetFullPath(args[++i]); break;
        case "--seed": seed = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

string root = dataRoot ?? Directory.CreateTempSubdirectory("ocrpc-soak-").FullName;
string data = Path.Combine(root, "data");
string project = Path.Combine(root, "project");
Directory.CreateDirectory(data);
Directory.CreateDirectory(project);
var o = new SoakOptions(server, data, project, seed, m => Console.Error.WriteLine(m));
Console.Error.WriteLine($"server {server}, data {data}, seed {seed}");
var result = concurrency is { } w
    ? await SoakRunner.ConcurrencySoakAsync(o, w)
    : await SoakRunner.KillSoakAsync(o, kills);
Console.WriteLine(result.Table());
bool ok = result.Ok;
int rk = revertKills ?? kills / 4;
if (concurrency is null && rk > 0)
{
    string rroot = Path.Combine(root, "revert");
    Directory.CreateDirectory(Path.Combine(rroot, "data"));
    Directory.CreateDirectory(Path.Combine(rroot, "project"));
    var revert = await RevertSoak.RunAsync(o with { DataDir = Path.Combine(rroot, "data"), ProjectDir = Path.Combine(rroot, "project") }, rk);
    Console.WriteLine(revert.Table());
    ok &= revert.Ok;
}

return ok ? 0 : 1;
