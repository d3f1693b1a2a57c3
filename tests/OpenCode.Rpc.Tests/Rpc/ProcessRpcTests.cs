using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using Xunit.Abstractions;
using static OpenCode.Rpc.Tests.Rpc.RpcScenario;

namespace OpenCode.Rpc.Tests.Rpc;

public sealed class ProcessRpcTests(ITestOutputHelper output)
{
    [Fact]
    public async Task KeyScenario_OverARealProcess()
    {
        using var dirs = new TestDirs(git: true);
        await using var s = await ProcessServer.StartAsync(dirs, output);
        var (sid, _, aid) = await KeyScenarioAsync(s);
        var n = await s.WaitForNotificationAsync(Notifications.MessagePartUpdated, p => p.TryGetProperty("delta", out var d) && d.GetString() == "ne.");
        Assert.Equal("Done.", n.GetProperty("part").GetProperty("text").GetString());

        var before = Snapshot(dirs);
        var err = await s.ErrorAsync(Methods.MessageGet, new { sessionID = "ses_../../etc", messageID = aid });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        Assert.Equal("sessionID", err.Field);
        Assert.Equal(ErrorCodes.SessionNotFound, (await s.ErrorAsync(Methods.SessionGet, new { sessionID = "ses_nonexistent" })).Code);
        AssertUnchanged(before, dirs);

        await s.CallAsync(Methods.SessionDelete, new { sessionID = sid });
        await s.WaitForNotificationAsync(Notifications.SessionDeleted);
        Assert.False(Directory.Exists(Path.Combine(dirs.Storage, "message", sid)));
        await s.CallAsync(Methods.Shutdown);
        Assert.Equal(0, await s.CloseAndWaitAsync());
    }
}
