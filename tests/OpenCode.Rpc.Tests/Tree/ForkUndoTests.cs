using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Revert;

namespace OpenCode.Rpc.Tests.Tree;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ForkUndoTests
{
    [Fact]
    public async Task UndoInsideAFork_RestoresTheFilesTheCopiedTurnChanged_AndRedoBringsThemBack()
    {
        await using var h = await RevertHarness.StartAsync(git: true, seed: dir => File.WriteAllText(Path.Combine(dir, "app.txt"), "v1\n"));
        await h.TurnAsync("edit app.txt", () => File.WriteAllText(h.P("app.txt"), "v2 written by the AI, longer\n"));
        await h.TurnAsync("add notes.md", () => File.WriteAllText(h.P("notes.md"), "new file\n"));

        // The fork copies both turns, their step snapshots and patch parts verbatim: same project, same shadow repo.
        var fork = await h.Client.CallAsync(Methods.SessionFork, new { sessionID = h.SessionId });
        string forkId = fork.GetProperty("id").GetString()!;

        var undo = await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = forkId });
        Assert.False(File.Exists(h.P("notes.md")));
        Assert.Equal("v2 written by the AI, longer\n", File.ReadAllText(h.P("app.txt")));
        Assert.Equal(forkId, undo.GetProperty("session").GetProperty("id").GetString());

        await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = forkId });
        Assert.Equal("v1\n", File.ReadAllText(h.P("app.txt")));

        await h.Client.CallAsync(Methods.SessionRedo, new { sessionID = forkId });
        await h.Client.CallAsync(Methods.SessionRedo, new { sessionID = forkId });
        Assert.Equal("v2 written by the AI, longer\n", File.ReadAllText(h.P("app.txt")));
        Assert.Equal("new file\n", File.ReadAllText(h.P("notes.md")));

        // the original session was never reverted
        var original = await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId });
        Assert.False(original.TryGetProperty("revert", out _));
    }
}
