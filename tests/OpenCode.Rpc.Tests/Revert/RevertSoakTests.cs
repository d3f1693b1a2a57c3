using OpenCode.Rpc.Soak;
using OpenCode.Rpc.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OpenCode.Rpc.Tests.Revert;

/// <summary>The CI-sized run of the revert kill soak (tests/OpenCode.Rpc.Soak, RevertSoak): real sidecar processes,
/// SIGKILLed while a revert restores files; the full run is part of `opencode-rpc-soak --kills N` (N / 4 revert kills).</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RevertSoakTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RevertKillSoak_SigkillMidRestore_NeverLeavesTheWorktreeHalfReverted()
    {
        using var dirs = new TestDirs();
        var o = new SoakOptions(SoakOptions.DefaultServer(), dirs.DataDir, dirs.ProjectDir, 4321, m => output.WriteLine(m));
        var r = await RevertSoak.RunAsync(o, kills: 6, filesPerTurn: 150);
        output.WriteLine(r.Table());
        Assert.True(r.Ok, r.Table());
        Assert.True(r.MidRevert > 0, "no kill landed while a revert was restoring files: the run proved nothing\n" + r.Table());
    }
}
