using OpenCode.Rpc.Soak;
using OpenCode.Rpc.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>CI-sized runs of the soak driver (tests/OpenCode.Rpc.Soak): the full runs are `opencode-rpc-soak --kills 1000`
/// and `--concurrency 10000`.</summary>
public sealed class SoakTests(ITestOutputHelper output)
{
    private SoakOptions Options(TestDirs dirs, int seed) => new(SoakOptions.DefaultServer(), dirs.DataDir, dirs.ProjectDir, seed, m => output.WriteLine(m));

    [Fact]
    public async Task KillSoak_FiveSigkills_LosesNoAcknowledgedWriteAndTearsNoFile()
    {
        using var dirs = new TestDirs();
        var r = await SoakRunner.KillSoakAsync(Options(dirs, 1234), kills: 5);
        output.WriteLine(r.Table());
        Assert.True(r.Ok, r.Table());
        Assert.True(r.WritesAcked > 0, "the soak acknowledged no writes: it proved nothing");
        Assert.True(r.WritesVerified > 0);
    }

    [Fact]
    public async Task Concurrency_TwoSidecarsFourStreamsEach_NoWriteLostOrTorn()
    {
        using var dirs = new TestDirs();
        var r = await SoakRunner.ConcurrencySoakAsync(Options(dirs, 1), writes: 400);
        output.WriteLine(r.Table());
        Assert.True(r.Ok, r.Table());
        Assert.Equal(400 + 3, r.WritesAcked); // 400 writes + 3 sessions
        Assert.True(r.WritesVerified >= 400, r.Table());
    }
}
