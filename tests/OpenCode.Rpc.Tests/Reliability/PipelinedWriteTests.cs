using System.Text;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>The sidecar writes frames through a pump that joins the frames that piled up into one write. Driven
/// over a real process's stdout with many requests in one burst: every frame must still be whole and in order.</summary>
public sealed class PipelinedWriteTests
{
    [Fact]
    public async Task BurstOfCreates_OverARealProcess_EachNotificationPrecedesItsAnswerAndEveryFrameIsWhole()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.ProcessAsync(dirs);
        const int n = 60;
        var burst = new List<byte>();
        for (int i = 1; i <= n; i++)
        {
            burst.AddRange(RawWire.Frame($$$"""{"jsonrpc":"2.0","id":{{{i}}},"method":"session/create","params":{"title":"burst {{{i}}}"}}"""));
        }

        await wire.SendAsync([.. burst]);

        var created = new HashSet<string>(StringComparer.Ordinal);
        var answered = new HashSet<long>();
        while (answered.Count < n)
        {
            var f = await wire.ReadFrameAsync() ?? throw new EndOfStreamException("the server closed its output");
            if (f.TryGetProperty("method", out var m) && m.GetString() == Notifications.SessionCreated)
            {
                created.Add(f.GetProperty("params").GetProperty("info").GetProperty("id").GetString()!);
            }
            else if (f.TryGetProperty("result", out var r))
            {
                // The notification a request caused goes out before its answer (protocol/README.md → Notifications).
                Assert.Contains(r.GetProperty("id").GetString()!, created);
                Assert.True(answered.Add(f.GetProperty("id").GetInt64()));
            }
            else
            {
                Assert.Fail(f.ToString());
            }
        }

        Assert.Equal(n, created.Count);
    }

    [Fact]
    public async Task BurstOfBigAndSmallAnswers_OverARealProcess_EachArrivesWhole()
    {
        // Lists bigger than what the pump joins into one write (256 KB), interleaved with small answers.
        using var dirs = new TestDirs();
        await using var wire = await RawWire.ProcessAsync(dirs);
        const int sessions = 250;
        string title = new('t', 1000);
        string sid = "";
        for (int i = 0; i < sessions; i++)
        {
            var r = await wire.RequestAsync(i + 1, Methods.SessionCreate, $$"""{"title":"{{title}}"}""");
            sid = r.GetProperty("result").GetProperty("id").GetString()!;
        }

        const int pairs = 12;
        var burst = new StringBuilder();
        for (int i = 0; i < pairs; i++)
        {
            burst.Append(Encoding.ASCII.GetString(RawWire.Frame($$$"""{"jsonrpc":"2.0","id":{{{10_000 + i}}},"method":"session/list","params":{}}""")));
            burst.Append(Encoding.ASCII.GetString(RawWire.Frame($$$"""{"jsonrpc":"2.0","id":{{{20_000 + i}}},"method":"session/get","params":{"sessionID":"{{{sid}}}"}}""")));
        }

        await wire.SendAsync(burst.ToString());
        var seen = new HashSet<long>();
        while (seen.Count < 2 * pairs)
        {
            var f = await wire.ReadUntilAsync(x => x.TryGetProperty("id", out var id) && id.GetInt64() >= 10_000);
            long id = f.GetProperty("id").GetInt64();
            var result = f.GetProperty("result");
            if (id < 20_000)
            {
                Assert.Equal(sessions, result.GetArrayLength());
            }
            else
            {
                Assert.Equal(sid, result.GetProperty("id").GetString());
            }

            Assert.True(seen.Add(id));
        }

        wire.CloseInput();
        Assert.True(wire.Process!.WaitForExit(30_000));
        Assert.Equal(0, wire.Process.ExitCode);
    }
}
