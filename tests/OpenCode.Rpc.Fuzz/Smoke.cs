using System.Diagnostics;

namespace OpenCode.Rpc.Fuzz;

/// <summary>Fuzzing without AFL: each corpus file, then random mutations of them (bit flips, byte runs, truncation,
/// splicing, duplication), for a time budget. Any exception escaping a target is a crash: it is saved for a
/// regression test and reported.</summary>
public static class Smoke
{
    public sealed record Result(string Target, long Executions, IReadOnlyList<string> Crashes);

    public static Result Run(string target, string corpusDir, TimeSpan budget, string crashDir, int seed = 1)
    {
        var run = Targets.All[target];
        var corpus = Directory.Exists(corpusDir) ? Directory.GetFiles(corpusDir).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList() : [];
        if (corpus.Count == 0)
        {
            corpus.Add([]);
        }

        var rng = new Random(seed);
        var crashes = new List<string>();
        long n = 0;
        var sw = Stopwatch.StartNew();
        foreach (var c in corpus)
        {
            Exec(c);
        }

        while (sw.Elapsed < budget && crashes.Count < 10)
        {
            Exec(Mutate(corpus[rng.Next(corpus.Count)], corpus, rng));
        }

        return new Result(target, n, crashes);

        void Exec(byte[] input)
        {
            n++;
            try
            {
                run(input);
            }
            catch (Exception ex)
            {
                Directory.CreateDirectory(crashDir);
                string path = Path.Combine(crashDir, $"{target}-crash-{n}.bin");
                File.WriteAllBytes(path, input);
                crashes.Add($"{path}: {ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    private static readonly byte[] Interesting = [.. "{}[]\":,\\\r\n0-9aeE+.:"u8, 0x00, 0xC3, 0xFF, 0x80];

    public static byte[] Mutate(byte[] seed, List<byte[]> corpus, Random rng)
    {
        var b = new List<byte>(seed);
        int rounds = 1 + rng.Next(4);
        for (int r = 0; r < rounds; r++)
        {
            switch (rng.Next(8))
            {
                case 0 when b.Count > 0:
                    int i = rng.Next(b.Count);
                    b[i] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1 when b.Count > 0:
                    b.RemoveRange(rng.Next(b.Count), 0);
                    b.RemoveRange(0, Math.Min(b.Count, rng.Next(4)));
                    break;
                case 2 when b.Count > 0:
                    b.RemoveRange(rng.Next(b.Count), 1);
                    break;
                case 3:
                    b.Insert(rng.Next(b.Count + 1), Interesting[rng.Next(Interesting.Length)]);
                    break;
                case 4 when b.Count > 0:
                    int cut = rng.Next(b.Count);
                    b.RemoveRange(cut, b.Count - cut);
                    break;
                case 5:
                    var other = corpus[rng.Next(corpus.Count)];
                    int at = rng.Next(b.Count + 1);
                    b.InsertRange(at, other.Skip(rng.Next(other.Length + 1)).Take(rng.Next(64)));
                    break;
                case 6:
                    int pos = rng.Next(b.Count + 1);
                    b.InsertRange(pos, Enumerable.Repeat("[{\"0"u8[rng.Next(4)], rng.Next(600)));
                    break;
                case 7 when b.Count > 0:
                    int s = rng.Next(b.Count);
                    int len = Math.Min(b.Count - s, rng.Next(32));
                    b.InsertRange(s, b.GetRange(s, len));
                    break;
            }
        }

        return b.ToArray();
    }
}
