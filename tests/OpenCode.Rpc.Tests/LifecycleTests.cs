using System.Text.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using StreamJsonRpc;

namespace OpenCode.Rpc.Tests;

public sealed class LifecycleTests
{
    [Fact]
    public async Task RequestBeforeInitialize_GetsServerNotInitialized_AndWritesNothing()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs, initialize: false);
        var ex = await s.ErrorAsync(Methods.SessionCreate, new { title = "x" });
        Assert.Equal(ErrorCodes.ServerNotInitialized, ex.Code);
        Assert.Empty(dirs.StorageFiles());
        var init = await s.InitializeAsync();
        Assert.Equal("opencode-rpc", init.GetProperty("serverInfo").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Initialize_AnnouncesEveryServedMethod_AndTheProject()
    {
        using var dirs = new TestDirs(git: true);
        await using var s = await InProcServer.StartAsync(dirs, initialize: false);
        var init = await s.InitializeAsync();
        var caps = init.GetProperty("capabilities");
        var announced = caps.GetProperty("methods").EnumerateArray().Select(e => e.GetString()).ToHashSet();
        Assert.Contains(Methods.SessionCreate, announced);
        Assert.DoesNotContain(Methods.Initialize, announced);
        Assert.Equal(40, caps.GetProperty("project").GetProperty("id").GetString()!.Length);
    }

    [Fact]
    public async Task SecondInitialize_IsRefused()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        var ex = await s.ErrorAsync(Methods.Initialize, new { directory = dirs.ProjectDir });
        Assert.Equal(ErrorCodes.InvalidRequest, ex.Code);
    }

    [Fact]
    public async Task Initialize_WithMissingDirectory_NamesTheField()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs, initialize: false);
        var ex = await s.ErrorAsync(Methods.Initialize, new { directory = Path.Combine(dirs.Root, "nope") });
        Assert.Equal(ErrorCodes.InvalidParams, ex.Code);
        Assert.Equal("directory", ex.Field);
    }

    [Fact]
    public async Task AfterShutdown_RequestsAreRefused()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        await s.CallAsync(Methods.Shutdown);
        var ex = await s.ErrorAsync(Methods.SessionList);
        Assert.Equal(ErrorCodes.InvalidRequest, ex.Code);
    }

    [Fact]
    public async Task Process_ShutdownThenExit_ExitsZero_AndStdoutCarriesOnlyFrames()
    {
        using var dirs = new TestDirs();
        await using var s = await ProcessServer.StartAsync(dirs);
        await s.CallAsync(Methods.SessionCreate, new { title = "t" });
        await s.CallAsync(Methods.Shutdown);
        await s.Client.NotifyAsync(Methods.Exit);
        await s.Process.WaitForExitAsync().WaitAsync(RpcTestClient.Timeout);
        Assert.Equal(0, s.Process.ExitCode);
        Assert.Contains(s.Stderr, l => l.Contains("initialized", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Process_StdinEof_ExitsZero()
    {
        using var dirs = new TestDirs();
        await using var s = await ProcessServer.StartAsync(dirs);
        Assert.Equal(0, await s.CloseAndWaitAsync());
    }

    [Fact]
    public async Task CancelRequest_CancelsWithRequestCancelled()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            s.Client.InvokeWithParameterObjectAsync<JsonElement>(Methods.SessionList, new { }, cts.Token));
        // the server keeps answering
        var list = await s.CallAsync(Methods.SessionList);
        Assert.Equal(JsonValueKind.Array, list.ValueKind);
    }

    [Fact]
    public async Task UnknownMethod_GetsMethodNotFound_AndServerKeepsAnswering()
    {
        using var dirs = new TestDirs();
        await using var s = await InProcServer.StartAsync(dirs);
        var ex = await s.ErrorAsync("nope/nothing");
        Assert.Equal((int)StreamJsonRpc.Protocol.JsonRpcErrorCode.MethodNotFound, ex.Code);
        Assert.Equal(JsonValueKind.Array, (await s.CallAsync(Methods.SessionList)).ValueKind);
    }
}
