using System.Text.Json;
using OpenCode.Rpc.Server;

namespace OpenCode.Rpc.Tests.Revert;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RevertTests
{
    private static readonly byte[] Binary = [0, 1, 2, 3, 255, 254, 0, 10, 13, 0, 42];

    private static void Seed(string p)
    {
        File.WriteAllText(Path.Combine(p, "a.txt"), "alpha\n");
        File.WriteAllBytes(Path.Combine(p, "bin.dat"), Binary);
        File.WriteAllText(Path.Combine(p, "run.sh"), "#!/bin/sh\necho hi\n");
        File.SetUnixFileMode(Path.Combine(p, "run.sh"), (UnixFileMode)0b111_101_101);
        File.WriteAllText(Path.Combine(p, "tool.sh"), "#!/bin/sh\n");
        File.SetUnixFileMode(Path.Combine(p, "tool.sh"), (UnixFileMode)0b111_101_101);
        Directory.CreateDirectory(Path.Combine(p, "nested", "deep"));
        File.WriteAllText(Path.Combine(p, "nested", "deep", "x.txt"), "deep\n");
        File.WriteAllText(Path.Combine(p, "gone.txt"), "to be deleted\n");
        File.WriteAllText(Path.Combine(p, "old-name.txt"), "renamed content\n");
        File.WriteAllText(Path.Combine(p, ".gitignore"), "build/\n");
    }

    /// <summary>The AI's turn: modifies, adds (nested), deletes, renames, flips an exec bit, writes binary and
    /// ignored build output.</summary>
    private static void AiEdits(RevertHarness h)
    {
        File.WriteAllText(h.P("a.txt"), "alpha changed by the AI, longer\n");
        File.WriteAllBytes(h.P("bin.dat"), [.. Binary, 7, 7, 0]);
        File.SetUnixFileMode(h.P("run.sh"), (UnixFileMode)0b110_100_100);
        File.SetUnixFileMode(h.P("tool.sh"), (UnixFileMode)0b110_100_100);
        File.WriteAllText(h.P("tool.sh"), "#!/bin/sh\necho changed\n");
        Directory.CreateDirectory(h.P("new/dir"));
        File.WriteAllText(h.P("new/dir/created.txt"), "made by the AI\n");
        File.Delete(h.P("gone.txt"));
        File.Move(h.P("old-name.txt"), h.P("nested/new-name.txt"));
        File.WriteAllText(h.P("nested/deep/x.txt"), "deep, edited by the AI\n");
        Directory.CreateDirectory(h.P("build"));
        File.WriteAllText(h.P("build/out.o"), "ignored build output");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Undo_RestoresEveryKindOfChange_AndRedoPutsThemBack(bool git)
    {
        await using var h = await RevertHarness.StartAsync(git, Seed);
        File.WriteAllText(h.P("user-notes.txt"), "the user's own untracked file\n");
        var userGit = git ? h.UserGitState() : null;
        var before = h.Files();
        var (user, _, finish) = await h.TurnAsync("please edit", () => AiEdits(h));
        var patch = finish.GetProperty("patch");
        Assert.Equal(JsonValueKind.Object, patch.ValueKind);
        Assert.All(patch.GetProperty("files").EnumerateArray(), f => Assert.True(Path.IsPathRooted(f.GetString())));
        var afterAi = h.Files();

        var undo = await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.True(undo.GetProperty("filesReverted").GetBoolean());
        Assert.Equal(user, undo.GetProperty("session").GetProperty("revert").GetProperty("messageID").GetString());
        Assert.Equal("please edit", undo.GetProperty("prompt").GetProperty("text").GetString());
        var undone = h.Files();
        // Everything is back except the ignored build output, which the AI's patch never named.
        Assert.Equal(before.Where(kv => !kv.Key.StartsWith("build", StringComparison.Ordinal)), undone.Where(kv => !kv.Key.StartsWith("build", StringComparison.Ordinal)));
        Assert.True(File.Exists(h.P("build/out.o")));
        Assert.False(Directory.Exists(h.P("new")));
        Assert.Equal("the user's own untracked file\n", File.ReadAllText(h.P("user-notes.txt")));
        var statuses = undo.GetProperty("files").EnumerateArray().ToDictionary(f => Path.GetRelativePath(h.Project, f.GetProperty("path").GetString()!), f => f.GetProperty("status").GetString());
        Assert.Equal("deleted", statuses["new/dir/created.txt"]);
        Assert.Equal("added", statuses["gone.txt"]);
        Assert.Equal("added", statuses["old-name.txt"]);
        Assert.Equal("deleted", statuses["nested/new-name.txt"]);
        Assert.Equal("modified", statuses["a.txt"]);

        var redo = await h.Client.CallAsync(Methods.SessionRedo, new { sessionID = h.SessionId });
        Assert.False(redo.GetProperty("session").TryGetProperty("revert", out _));
        Assert.Equal(afterAi, h.Files());
        if (userGit is not null)
        {
            Assert.Equal(userGit, h.UserGitState());
        }
    }

    [Fact]
    public async Task Undo_WalksBackOneTurnAtATime_RedoWalksForward()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var s0 = h.Files();
        var (u1, _, _) = await h.TurnAsync("one", () => File.WriteAllText(h.P("a.txt"), "one!\n"));
        var s1 = h.Files();
        var (u2, _, _) = await h.TurnAsync("two", () => File.WriteAllText(h.P("b.txt"), "two\n"));
        var s2 = h.Files();

        var undo1 = await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.Equal(u2, undo1.GetProperty("session").GetProperty("revert").GetProperty("messageID").GetString());
        Assert.Equal(s1, h.Files());
        var undo2 = await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.Equal(u1, undo2.GetProperty("session").GetProperty("revert").GetProperty("messageID").GetString());
        Assert.Equal("one", undo2.GetProperty("prompt").GetProperty("text").GetString());
        Assert.Equal(s0, h.Files());

        var nothing = await h.Client.ErrorAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.Conflict, nothing.Code);
        Assert.Equal(s0, h.Files());

        var redo1 = await h.Client.CallAsync(Methods.SessionRedo, new { sessionID = h.SessionId });
        Assert.Equal(u2, redo1.GetProperty("session").GetProperty("revert").GetProperty("messageID").GetString());
        Assert.Equal(s1, h.Files());
        var redo2 = await h.Client.CallAsync(Methods.SessionRedo, new { sessionID = h.SessionId });
        Assert.False(redo2.GetProperty("session").TryGetProperty("revert", out _));
        Assert.Equal(JsonValueKind.Null, redo2.TryGetProperty("prompt", out var pr) ? pr.ValueKind : JsonValueKind.Null);
        Assert.Equal(s2, h.Files());
    }

    [Fact]
    public async Task Undo_OfTurnThatChangedNoFiles_ChangesNoFiles()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "edited by AI\n"));
        var (_, _, finish) = await h.TurnAsync("just talk", () => { });
        Assert.Equal(JsonValueKind.Null, finish.TryGetProperty("patch", out var p) ? p.ValueKind : JsonValueKind.Null);
        // The user's own uncommitted edits, made after the AI's turns.
        File.WriteAllText(h.P("nested/deep/x.txt"), "user edit after the turns\n");
        File.WriteAllText(h.P("user.txt"), "new user file\n");
        var state = h.Files();

        var undo = await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.Empty(undo.GetProperty("files").EnumerateArray());
        Assert.Equal(state, h.Files());
    }

    [Fact]
    public async Task Revert_FileEditedAfterStep_RefusesAndChangesNothing()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (user, _, _) = await h.TurnAsync("edit", () =>
        {
            File.WriteAllText(h.P("a.txt"), "AI version\n");
            File.WriteAllText(h.P("b.txt"), "AI new file\n");
        });
        File.WriteAllText(h.P("a.txt"), "the user's own edit, made after the AI's step\n");
        var state = h.Files();

        var err = await h.Client.ErrorAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user });
        Assert.Equal(ErrorCodes.RevertConflict, err.Code);
        Assert.Equal("RevertConflict", err.Kind);
        var files = err.Data!.Value.GetProperty("files").EnumerateArray().Select(f => f.GetString()).ToList();
        Assert.Equal([h.P("a.txt")], files);
        Assert.Contains("a.txt", err.Message, StringComparison.Ordinal);
        Assert.Equal(state, h.Files());
        var session = await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId });
        Assert.False(session.TryGetProperty("revert", out _));

        var forced = await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user, force = true });
        Assert.Equal("alpha\n", File.ReadAllText(h.P("a.txt")));
        Assert.False(File.Exists(h.P("b.txt")));
        Assert.Equal(2, forced.GetProperty("files").GetArrayLength());
    }

    [Fact]
    public async Task Unrevert_FileEditedWhileReverted_RefusesAndChangesNothing()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (user, _, _) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user });
        File.WriteAllText(h.P("a.txt"), "user typed this while the turn was undone\n");
        var state = h.Files();
        var err = await h.Client.ErrorAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.RevertConflict, err.Code);
        Assert.Equal(state, h.Files());
    }

    [Fact]
    public async Task Undo_SnapshotStoreMissing_FailsLoudly_AndChangesNothing()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        Directory.Delete(Path.Combine(h.Dirs.DataDir, "snapshot"), recursive: true);
        var state = h.Files();
        var err = await h.Client.ErrorAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.SnapshotUnavailable, err.Code);
        Assert.Contains("missing", err.Message, StringComparison.Ordinal);
        Assert.Equal(state, h.Files());
        var session = await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId });
        Assert.False(session.TryGetProperty("revert", out _));
    }

    [Fact]
    public async Task Undo_SnapshotObjectCorrupt_FailsLoudly()
    {
        await using var h = await RevertHarness.StartAsync(false, Seed);
        var (_, assistant, finish) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        string hash = finish.GetProperty("patch").GetProperty("hash").GetString()!;
        string snapRoot = Path.Combine(h.Dirs.DataDir, "snapshot", "global");
        string gitDir = Directory.EnumerateDirectories(snapRoot).Single();
        // The snapshot's tree is a loose object, or (the first track of a tree writes one pack) in the pack.
        string obj = Path.Combine(gitDir, "objects", hash[..2], hash[2..]);
        if (!File.Exists(obj))
        {
            obj = Directory.EnumerateFiles(Path.Combine(gitDir, "objects", "pack"), "*.pack").Single();
        }

        File.SetUnixFileMode(obj, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllBytes(obj, [.. File.ReadAllBytes(obj).Select(b => (byte)~b)]);
        var state = h.Files();
        var err = await h.Client.ErrorAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.SnapshotUnavailable, err.Code);
        Assert.Equal(state, h.Files());
    }

    [Fact]
    public async Task Revert_PatchNamingPathsOutsideProject_NeverTouchesThem()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        string outsideDir = Path.Combine(h.Dirs.Root, "outside");
        Directory.CreateDirectory(outsideDir);
        string outsideFile = Path.Combine(outsideDir, "secret.txt");
        File.WriteAllText(outsideFile, "outside\n");
        Directory.CreateSymbolicLink(h.P("linkdir"), outsideDir);
        var (user, assistant, _) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        var track = await h.Client.CallAsync(Methods.SnapshotTrack, new { sessionID = h.SessionId });
        string hash = track.GetProperty("hash").GetString()!;
        // A hand-made (or malicious) patch part naming paths outside the worktree.
        await h.Client.CallAsync(Methods.PartUpdate, new
        {
            part = new
            {
                sessionID = h.SessionId,
                messageID = assistant,
                type = "patch",
                hash,
                files = new[] { outsideFile, h.P("../outside/secret.txt"), h.P("linkdir/secret.txt"), h.P(".git/config") },
            },
        });
        var state = h.Files();
        var err = await h.Client.ErrorAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user });
        Assert.Equal(ErrorCodes.PathOutsideProject, err.Code);
        Assert.Equal(state, h.Files());

        var forced = await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user, force = true });
        Assert.Equal(4, forced.GetProperty("skipped").GetArrayLength());
        Assert.Equal("outside\n", File.ReadAllText(outsideFile));
        Assert.Equal("alpha\n", File.ReadAllText(h.P("a.txt")));
        Assert.Equal(["secret.txt"], Directory.EnumerateFileSystemEntries(outsideDir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Undo_AiWroteThroughSymlinkedFile_ReplacesTheLinkNotTheTarget()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        string outside = Path.Combine(h.Dirs.Root, "target.txt");
        File.WriteAllText(outside, "outside target\n");
        var (user, _, _) = await h.TurnAsync("link", () => File.CreateSymbolicLink(h.P("link.txt"), outside));
        await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "x\n"));
        Assert.True(File.Exists(h.P("link.txt")));
        await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user });
        Assert.False(File.Exists(h.P("link.txt")) || new FileInfo(h.P("link.txt")).LinkTarget is not null);
        Assert.Equal("outside target\n", File.ReadAllText(outside));
        await h.Client.CallAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId });
        Assert.Equal(outside, new FileInfo(h.P("link.txt")).LinkTarget);
        Assert.Equal("outside target\n", File.ReadAllText(outside));
    }

    [Fact]
    public async Task DryRun_ListsTheFiles_AndChangesNothing()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (user, _, _) = await h.TurnAsync("edit", () => AiEdits(h));
        var state = h.Files();
        var dry = await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user, dryRun = true });
        Assert.True(dry.GetProperty("dryRun").GetBoolean());
        Assert.True(dry.GetProperty("files").GetArrayLength() >= 6);
        Assert.Equal(state, h.Files());
        var session = await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId });
        Assert.False(session.TryGetProperty("revert", out _));
    }

    [Fact]
    public async Task DeleteSession_WhileReverted_DeletesNothingInTheWorktree()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        await h.TurnAsync("edit", () => AiEdits(h));
        await h.TurnAsync("more", () => File.WriteAllText(h.P("more.txt"), "more\n"));
        await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        var state = h.Files();
        await h.Client.CallAsync(Methods.SessionDelete, new { sessionID = h.SessionId });
        Assert.Equal(state, h.Files());
    }

    [Fact]
    public async Task SnapshotFalse_UndoRevertsOnlyTheConversation_AndSaysSo()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed, projectConfig: "{\n  // files are mine\n  \"snapshot\": false,\n}\n");
        var (user, _, finish) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        Assert.False(finish.GetProperty("finish").TryGetProperty("snapshot", out _));
        var state = h.Files();
        var undo = await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.False(undo.GetProperty("filesReverted").GetBoolean());
        Assert.Contains("snapshot", undo.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(user, undo.GetProperty("session").GetProperty("revert").GetProperty("messageID").GetString());
        Assert.Equal(state, h.Files());
        Assert.False(Directory.Exists(Path.Combine(h.Dirs.DataDir, "snapshot")));
    }

    [Fact]
    public async Task ScopeConversation_KeepsFiles_ThenUnrevertIsClean()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (user, _, _) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        var state = h.Files();
        var r = await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user, scope = "conversation" });
        Assert.False(r.GetProperty("filesReverted").GetBoolean());
        Assert.Equal(state, h.Files());
        await h.Client.CallAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId });
        Assert.Equal(state, h.Files());
    }

    [Fact]
    public async Task ScopeFiles_RevertThenUnrevert_RoundTripsEveryKindOfChange_AndNeverTouchesTheConversation()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var before = h.Files();
        var (user, _, _) = await h.TurnAsync("please edit", () => AiEdits(h));
        var afterAi = h.Files();
        var messages = (await h.Client.CallAsync(Methods.MessageList, new { sessionID = h.SessionId })).GetArrayLength();

        var r = await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user, scope = "files" });
        Assert.True(r.GetProperty("filesReverted").GetBoolean());
        Assert.Equal(before.Where(kv => !kv.Key.StartsWith("build/", StringComparison.Ordinal)), h.Files().Where(kv => !kv.Key.StartsWith("build/", StringComparison.Ordinal)));
        var session = await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId });
        Assert.False(session.TryGetProperty("revert", out _)); // OpenCode would hide the turn if it were set
        Assert.Equal(messages, (await h.Client.CallAsync(Methods.MessageList, new { sessionID = h.SessionId })).GetArrayLength());

        var dry = await h.Client.CallAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId, dryRun = true });
        Assert.Equal(r.GetProperty("files").GetArrayLength(), dry.GetProperty("files").GetArrayLength());
        var un = await h.Client.CallAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId });
        Assert.True(un.GetProperty("filesReverted").GetBoolean());
        Assert.Equal(afterAi, h.Files());
        Assert.False((await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId })).TryGetProperty("revert", out _));

        // Nothing left to undo.
        var again = await h.Client.CallAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId });
        Assert.False(again.GetProperty("filesReverted").GetBoolean());
        Assert.Equal(afterAi, h.Files());
    }

    [Fact]
    public async Task ScopeFiles_Unrevert_FileEditedSince_RefusesUnlessForce()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (user, _, _) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user, scope = "files" });
        File.WriteAllText(h.P("a.txt"), "the user's edit after the files-only revert\n");
        var state = h.Files();
        var err = await h.Client.ErrorAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId });
        Assert.Equal(ErrorCodes.RevertConflict, err.Code);
        Assert.Equal(state, h.Files());
        await h.Client.CallAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId, force = true });
        Assert.Equal("AI version\n", File.ReadAllText(h.P("a.txt")));
    }

    [Fact]
    public async Task ScopeFiles_ThenAConversationRevert_UnrevertUndoesThemLastInFirstOut()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var start = h.Files();
        var (u1, _, _) = await h.TurnAsync("one", () => File.WriteAllText(h.P("a.txt"), "turn one\n"));
        var afterOne = h.Files();
        var (u2, _, _) = await h.TurnAsync("two", () => File.WriteAllText(h.P("b.txt"), "turn two\n"));
        var afterTwo = h.Files();

        await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = u2, scope = "files" });
        Assert.Equal(afterOne, h.Files());
        await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = u1 });
        Assert.Equal(start, h.Files());

        await h.Client.CallAsync(Methods.SessionUnrevert, new { sessionID = h.SessionId }); // the conversation revert
        Assert.Equal(afterOne, h.Files());
        Assert.False((await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId })).TryGetProperty("revert", out _));
        await h.Client.CallAsync(Methods.SessionRedo, new { sessionID = h.SessionId }); // then the files-only one
        Assert.Equal(afterTwo, h.Files());
    }

    [Fact]
    public async Task NextMessage_AfterUndo_DeletesRevertedMessagesAndTheirPartFiles()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (u1, a1, _) = await h.TurnAsync("one", () => File.WriteAllText(h.P("a.txt"), "one!\n"));
        var (u2, a2, _) = await h.TurnAsync("two", () => File.WriteAllText(h.P("b.txt"), "two\n"));
        await h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        Assert.True(Directory.Exists(h.Storage("part", a2)));

        string u3 = await h.UserAsync("two, differently");
        foreach (var id in new[] { u2, a2 })
        {
            Assert.False(File.Exists(h.Storage("message", h.SessionId, id + ".json")));
            Assert.False(Directory.Exists(h.Storage("part", id)));
            await h.Client.WaitForNotificationAsync(Notifications.MessageRemoved, p => p.GetProperty("messageID").GetString() == id);
        }

        Assert.True(File.Exists(h.Storage("message", h.SessionId, u1 + ".json")));
        Assert.True(Directory.Exists(h.Storage("part", a1)));
        var session = await h.Client.CallAsync(Methods.SessionGet, new { sessionID = h.SessionId });
        Assert.False(session.TryGetProperty("revert", out _));
        var list = await h.Client.CallAsync(Methods.MessageList, new { sessionID = h.SessionId });
        Assert.Equal([u1, a1, u3], list.EnumerateArray().Select(m => m.GetProperty("info").GetProperty("id").GetString()));
    }

    [Fact]
    public async Task StepParts_AreWrittenLikeOpenCode_AndSessionDiffIsStored()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (_, assistant, finish) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "alpha\nbeta\n"));
        var parts = Directory.EnumerateFiles(h.Storage("part", assistant)).Select(File.ReadAllText).ToList();
        string start = parts.Single(p => p.Contains("\"step-start\"", StringComparison.Ordinal));
        Assert.Matches("^\\{\n  \"id\": \"prt_[^\"]+\",\n  \"sessionID\": \"ses_[^\"]+\",\n  \"messageID\": \"msg_[^\"]+\",\n  \"type\": \"step-start\",\n  \"snapshot\": \"[0-9a-f]{40}\"\n\\}$", start);
        string patch = parts.Single(p => p.Contains("\"patch\"", StringComparison.Ordinal));
        Assert.Matches("^\\{\n  \"id\": \"prt_[^\"]+\",\n  \"sessionID\": \"ses_[^\"]+\",\n  \"messageID\": \"msg_[^\"]+\",\n  \"type\": \"patch\",\n  \"hash\": \"[0-9a-f]{40}\",\n  \"files\": \\[\n    \"[^\"]+/a.txt\"\n  \\]\n\\}$", patch);
        string fin = parts.Single(p => p.Contains("\"step-finish\"", StringComparison.Ordinal));
        Assert.Matches("\"type\": \"step-finish\",\n  \"reason\": \"stop\",\n  \"snapshot\": \"[0-9a-f]{40}\",\n  \"cost\": 0,\n  \"tokens\"", fin);

        var diff = await h.Client.CallAsync(Methods.SessionDiff, new { sessionID = h.SessionId });
        var d = diff.EnumerateArray().Single();
        Assert.Equal("a.txt", d.GetProperty("file").GetString());
        Assert.Equal("alpha\n", d.GetProperty("before").GetString());
        Assert.Equal("alpha\nbeta\n", d.GetProperty("after").GetString());
        Assert.Equal(1, d.GetProperty("additions").GetInt32());
        Assert.Equal("modified", d.GetProperty("status").GetString());
        Assert.True(File.Exists(h.Storage("session_diff", h.SessionId + ".json")));
        await h.Client.WaitForNotificationAsync(Notifications.SessionDiff, p => p.GetProperty("sessionID").GetString() == h.SessionId);
    }

    [Fact]
    public async Task Revert_ToAPart_KeepsEarlierPartsOfTheMessage()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        string user = await h.UserAsync("two steps");
        string assistant = await h.AssistantAsync(user);
        await h.Client.CallAsync(Methods.StepStart, new { sessionID = h.SessionId, messageID = assistant });
        File.WriteAllText(h.P("first.txt"), "step one\n");
        await h.Client.CallAsync(Methods.PartUpdate, new { part = new { sessionID = h.SessionId, messageID = assistant, type = "text", text = "step one done" } });
        await h.Client.CallAsync(Methods.StepFinish, new { sessionID = h.SessionId, messageID = assistant, reason = "tool-calls" });
        var second = await h.Client.CallAsync(Methods.StepStart, new { sessionID = h.SessionId, messageID = assistant });
        File.WriteAllText(h.P("second.txt"), "step two\n");
        await h.Client.CallAsync(Methods.StepFinish, new { sessionID = h.SessionId, messageID = assistant, reason = "stop" });

        string partId = second.GetProperty("id").GetString()!;
        var r = await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = assistant, partID = partId });
        Assert.Equal(partId, r.GetProperty("session").GetProperty("revert").GetProperty("partID").GetString());
        Assert.True(File.Exists(h.P("first.txt")));
        Assert.False(File.Exists(h.P("second.txt")));
    }

    [Fact]
    public async Task SnapshotTrack_ReturnsGitsOwnTreeHash()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var track = await h.Client.CallAsync(Methods.SnapshotTrack, new { sessionID = h.SessionId });
        // The user's commit holds the same files (build/ is ignored and empty), so git's tree id must match.
        using var repo = new LibGit2Sharp.Repository(h.Project);
        Assert.Equal(repo.Head.Tip.Tree.Sha, track.GetProperty("hash").GetString());
    }

    [Fact]
    public async Task Undo_OfARenameThatOpenCodeRecordedByItsNewNameOnly_BringsBackTheOldName()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var (user, _, finish) = await h.TurnAsync("rename", () => File.Move(h.P("old-name.txt"), h.P("renamed.txt")));
        var patch = finish.GetProperty("patch");
        Assert.Equal(2, patch.GetProperty("files").GetArrayLength()); // we record both sides of a rename
        // OpenCode's `git diff --name-only` (renames on) records only the new name: rewrite the part that way.
        await h.Client.CallAsync(Methods.PartUpdate, new
        {
            part = new
            {
                id = patch.GetProperty("id").GetString(),
                sessionID = h.SessionId,
                messageID = patch.GetProperty("messageID").GetString(),
                type = "patch",
                hash = patch.GetProperty("hash").GetString(),
                files = new[] { h.P("renamed.txt") },
            },
        });
        await h.Client.CallAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user });
        Assert.Equal("renamed content\n", File.ReadAllText(h.P("old-name.txt")));
        Assert.False(File.Exists(h.P("renamed.txt")));
    }

    [Fact]
    public async Task TwoSidecars_UndoingOneProject_TakeTurns_AndBothSucceed()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        var options = new ServerOptions(h.Dirs.DataDir, h.Dirs.ProjectDir, ConfigDir: h.ConfigDir);
        await using var other = await Infrastructure.InProcServer.StartAsync(h.Dirs, options: options);
        var s2 = (await other.CallAsync(Methods.SessionCreate, new { title = "second" })).GetProperty("id").GetString()!;
        await h.TurnAsync("first session edits a", () => File.WriteAllText(h.P("a.txt"), "first session\n"));
        string u2 = (await other.CallAsync(Methods.MessageUpdate, new { info = new { sessionID = s2, role = "user", time = new { created = 1 }, agent = "build", model = new { providerID = "p", modelID = "m" } } })).GetProperty("id").GetString()!;
        string a2 = (await other.CallAsync(Methods.MessageUpdate, new { info = new { sessionID = s2, role = "assistant", time = new { created = 2 }, parentID = u2, modelID = "m", providerID = "p", mode = "build", agent = "build", path = new { cwd = h.Project, root = h.Project }, cost = 0, tokens = new { input = 0, output = 0, reasoning = 0, cache = new { read = 0, write = 0 } } } })).GetProperty("id").GetString()!;
        await other.CallAsync(Methods.StepStart, new { sessionID = s2, messageID = a2 });
        File.WriteAllText(h.P("b.txt"), "second session\n");
        await other.CallAsync(Methods.StepFinish, new { sessionID = s2, messageID = a2, reason = "stop" });

        var undo1 = h.Client.CallAsync(Methods.SessionUndo, new { sessionID = h.SessionId });
        var undo2 = other.CallAsync(Methods.SessionUndo, new { sessionID = s2 });
        await Task.WhenAll(undo1, undo2);
        Assert.Equal("alpha\n", File.ReadAllText(h.P("a.txt")));
        Assert.False(File.Exists(h.P("b.txt")));
    }

    [Fact]
    public async Task BadScope_NamesTheField()
    {
        await using var h = await RevertHarness.StartAsync(true, Seed);
        string user = await h.UserAsync("x");
        var err = await h.Client.ErrorAsync(Methods.SessionRevert, new { sessionID = h.SessionId, messageID = user, scope = "everything" });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        Assert.Equal("scope", err.Field);
    }
}
