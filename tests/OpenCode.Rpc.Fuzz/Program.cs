using System.Globalization;
using OpenCode.Rpc.Fuzz;

// opencode-rpc-fuzz <frame|store|import>                   AFL++ mode (SharpFuzz; run under afl-fuzz, see README)
// opencode-rpc-fuzz <frame|store|import> --smoke [seconds] mutation smoke without AFL over corpus/<target>
// opencode-rpc-fuzz <frame|store|import> --run FILE...      runs saved inputs (a crash from AFL's crashes/ folder) once each
if (args.Length == 0 || !Targets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: opencode-rpc-fuzz <{string.Join('|', Targets.All.Keys)}> [--smoke [seconds]]");
    return 2;
}

if (args.Length > 2 && args[1] == "--run")
{
    foreach (var file in args.Skip(2))
    {
        target(File.ReadAllBytes(file)); // an escaping exception is the crash, with its stack trace
        Console.WriteLine($"{file}: no crash");
    }

    return 0;
}

if (args.Length > 1 && args[1] == "--smoke")
{
    int seconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 20;
    var r = Smoke.Run(args[0], Path.Combine(AppContext.BaseDirectory, "corpus", args[0]), TimeSpan.FromSeconds(seconds), Path.Combine(Environment.CurrentDirectory, "fuzz-crashes"));
    Console.WriteLine($"{r.Target}: {r.Executions} executions, {r.Crashes.Count} crashes");
    foreach (var c in r.Crashes)
    {
        Console.WriteLine("crash: " + c);
    }

    return r.Crashes.Count == 0 ? 0 : 1;
}

SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    target(ms.ToArray());
});
return 0;
