using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using OpenCode.Rpc.Tests.Store;
using Xunit.Abstractions;
using static OpenCode.Rpc.Tests.Rpc.RpcScenario;

namespace OpenCode.Rpc.Tests.Rpc;

public sealed class TwoProcessTests(ITestOutputHelper output)
{
    /// <summary>Two editor windows on one data dir: two real sidecars write to the same session at once.</summary>
    [Fact]
    public async Task TwoSidecarsOnOneDataDir_WritingOneSessionAtOnce_LoseNothing()
    {
        using var dirs = new TestDirs(git: true);
        await using var first = await ProcessServer.StartAsync(dirs, output);
        await using var second = await ProcessServer.StartAsync(dirs, output);
        string sid = Id(await first.CallAsync(Methods.SessionCreate, new { title = "shared" }));
        const int n = 25;

        async Task Writer(ProcessServer s, string tag)
        {
            for (int i = 0; i < n; i++)
            {
                string mid = Id(await s.CallAsync(Methods.MessageUpdate, new { info = Samples.User(sid, 1795468724363 + i) }));
                await s.CallAsync(Methods.PartUpdate, new { part = Samples.Text(sid, mid, $"{tag}-{i}") });
                await s.CallAsync(Methods.SessionUpdate, new { sessionID = sid, title = $"{tag} {i}" });
            }
        }

        await Task.WhenAll(Writer(first, "a"), Writer(second, "b"));

        foreach (var s in new[] { first, second })
        {
            var list = await s.CallAsync(Methods.MessageList, new { sessionID = sid });
            Assert.Equal(2 * n, list.GetArrayLength());
            var texts = list.EnumerateArray().Select(m => m.GetProperty("parts")[0].GetProperty("text").GetString()!).ToHashSet();
            Assert.Equal(Enumerable.Range(0, n).SelectMany(i => new[] { $"a-{i}", $"b-{i}" }).ToHashSet(), texts);
            var title = (await s.CallAsync(Methods.SessionGet, new { sessionID = sid })).GetProperty("title").GetString();
            Assert.True(title == $"a {n - 1}" || title == $"b {n - 1}", title);
        }

        Assert.Empty(Directory.EnumerateFiles(dirs.Storage, "*.tmp", SearchOption.AllDirectories));
    }
}
