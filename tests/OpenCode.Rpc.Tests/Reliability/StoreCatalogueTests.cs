using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>A corrupt session, message or part file is reported with its path and skipped; everything else keeps
/// working and nothing is rewritten or deleted.</summary>
public sealed class StoreCatalogueTests
{
    public static readonly Dictionary<string, Func<byte[], byte[]>> Corruptions = new()
    {
        ["Truncated"] = b => b[..(b.Length / 2)],
        ["Empty"] = _ => [],
        ["Binary"] = _ => [0x00, 0xFF, 0xFE, 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x00, 0x01],
        ["JsonArray"] = _ => "[1,2,3]"u8.ToArray(),
        ["InvalidUtf8InString"] = b => [.. b[..(Array.IndexOf(b, (byte)'"', Array.IndexOf(b, (byte)':') + 1) + 1)], 0xFF, 0xFE, .. b[(Array.IndexOf(b, (byte)'"', Array.IndexOf(b, (byte)':') + 1) + 1)..]],
        ["DuplicateKeys"] = b => Encoding.UTF8.GetBytes("{\"id\":\"x\",\"id\":\"y\"," + Encoding.UTF8.GetString(b).TrimStart()[1..]),
    };

    public static IEnumerable<object[]> Rows =>
        from kind in new[] { "session", "message", "part" }
        from c in Corruptions.Keys
        select new object[] { kind, c };

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task CorruptStoreFile_IsReportedWithItsPathAndSkipped(string kind, string corruption)
    {
        using var dirs = new TestDirs();
        string bad, good;
        string s1, s2, m1, m2, p1, p2;
        await using (var w = await RawWire.InProcAsync(dirs))
        {
            s1 = await Id(w, 1, Methods.SessionCreate, """{"title":"one"}""");
            s2 = await Id(w, 2, Methods.SessionCreate, """{"title":"two"}""");
            m1 = await Id(w, 3, Methods.MessageUpdate, new JsonObject { ["info"] = Build.User(s1, 1_700_000_000_000) }.ToJsonString());
            m2 = await Id(w, 4, Methods.MessageUpdate, new JsonObject { ["info"] = Build.User(s1, 1_700_000_001_000) }.ToJsonString());
            p1 = await Id(w, 5, Methods.PartUpdate, new JsonObject { ["part"] = Build.Text(s1, m2, "a") }.ToJsonString());
            p2 = await Id(w, 6, Methods.PartUpdate, new JsonObject { ["part"] = Build.Text(s1, m2, "b") }.ToJsonString());
        }

        (bad, good) = kind switch { "session" => (s1, s2), "message" => (m1, m2), _ => (p1, p2) };
        string path = Directory.EnumerateFiles(dirs.Storage, bad + ".json", SearchOption.AllDirectories).Single();
        File.WriteAllBytes(path, Corruptions[corruption](File.ReadAllBytes(path)));
        var before = ParamsCatalogueTests.Snapshot(dirs);

        await using var wire = await RawWire.InProcAsync(dirs);
        if (kind == "session")
        {
            var list = await wire.RequestAsync(10, Methods.SessionList);
            var ids = list.GetProperty("result").EnumerateArray().Select(x => x.GetProperty("id").GetString()).ToList();
            Assert.Contains(s2, ids);
            Assert.DoesNotContain(s1, ids);
            var get = await wire.RequestAsync(11, Methods.SessionGet, $$"""{"sessionID":"{{s1}}"}""");
            var err = get.GetProperty("error");
            Assert.Equal(ErrorCodes.StoreCorrupt, err.GetProperty("code").GetInt32());
            Assert.Equal(path, err.GetProperty("data").GetProperty("path").GetString());
            Assert.Contains(path, err.GetProperty("message").GetString());
        }
        else
        {
            var list = await wire.RequestAsync(10, Methods.MessageList, $$"""{"sessionID":"{{s1}}"}""");
            var msgs = list.GetProperty("result").EnumerateArray().ToList();
            var messageIds = msgs.Select(x => x.GetProperty("info").GetProperty("id").GetString()).ToList();
            var partIds = msgs.SelectMany(x => x.GetProperty("parts").EnumerateArray()).Select(x => x.GetProperty("id").GetString()).ToList();
            if (kind == "message")
            {
                Assert.Equal([m2], messageIds);
            }
            else
            {
                Assert.Equal([m1, m2], messageIds);
                Assert.Equal([p2], partIds);
            }
        }

        Assert.Contains(wire.Log, l => l.Contains(path, StringComparison.Ordinal));
        var next = await wire.RequestAsync(20, Methods.SessionGet, $$"""{"sessionID":"{{s2}}"}""");
        Assert.True(next.TryGetProperty("result", out _), next.ToString());
        Assert.Equal(before, ParamsCatalogueTests.Snapshot(dirs));
        _ = good;
    }

    [Fact]
    public async Task TempFileInStore_IsNeverListedAsData()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs);
        string s = await Id(wire, 1, Methods.SessionCreate, """{"title":"one"}""");
        string path = Directory.EnumerateFiles(dirs.Storage, s + ".json", SearchOption.AllDirectories).Single();
        string dir = Path.GetDirectoryName(path)!;
        File.Copy(path, Path.Combine(dir, "ses_zzzzzzzzzzzz.json.123.abc.tmp"));
        var list = await wire.RequestAsync(2, Methods.SessionList);
        var ids = list.GetProperty("result").EnumerateArray().Select(x => x.GetProperty("id").GetString()).ToList();
        Assert.Equal([s], ids);
    }

    internal static async Task<string> Id(RawWire w, long id, string method, string p)
    {
        var r = await w.RequestAsync(id, method, p);
        Assert.True(r.TryGetProperty("result", out var res), r.ToString());
        return res.GetProperty("id").GetString()!;
    }
}
