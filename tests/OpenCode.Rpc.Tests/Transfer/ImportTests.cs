using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Transfer.TransferTestKit;

namespace OpenCode.Rpc.Tests.Transfer;

public sealed class ImportTests
{
    private static JsonObject Fixture() => JsonNode.Parse(File.ReadAllText(ExportFixture("fake-llm-session-with-tool.json")))!.AsObject();

    [Theory]
    [InlineData("info.time.updated", "[\"info\"][\"time\"][\"updated\"]")]
    [InlineData("info.slug", "[\"info\"][\"slug\"]")]
    [InlineData("messages.1.info.parentID", "[\"messages\"][1][\"info\"][\"parentID\"]")]
    [InlineData("messages.3.parts.1.callID", "[\"messages\"][3][\"parts\"][1][\"callID\"]")]
    [InlineData("messages.4.parts.1.text", "[\"messages\"][4][\"parts\"][1][\"text\"]")]
    public async Task Import_MissingRequiredField_NamesJsonPath_AndWritesNothing(string remove, string path)
    {
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var doc = Fixture();
        var segs = remove.Split('.');
        JsonNode node = doc;
        foreach (var s in segs[..^1])
        {
            node = int.TryParse(s, out int i) ? node[i]! : node[s]!;
        }

        node.AsObject().Remove(segs[^1]);
        var before = dirs.StorageFiles();
        var err = await server.ErrorAsync(Methods.SessionImport, new { content = doc.ToJsonString() });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        Assert.Equal(path, err.Field);
        Assert.Equal($"Invalid session data: missing required key at {path}", err.Message);
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task Import_InvalidJson_SaysSoWithLineAndColumn()
    {
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImport, new { content = "{\n  \"info\": {not json" });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        Assert.StartsWith("Invalid JSON in content: ", err.Message, StringComparison.Ordinal);
        Assert.Contains("at line 2, column 12", err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_TraversalSessionId_IsRefused_AndNothingIsWritten()
    {
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var doc = Fixture();
        doc["info"]!["id"] = "ses_../../etc";
        var before = dirs.StorageFiles();
        var err = await server.ErrorAsync(Methods.SessionImport, new { content = doc.ToJsonString() });
        Assert.Equal("[\"info\"][\"id\"]", err.Field);
        Assert.Equal(before, dirs.StorageFiles());
        Assert.False(Directory.Exists(Path.Combine(dirs.Root, "etc")));
    }

    [Fact]
    public async Task Import_PartOfAnotherMessage_IsRefused()
    {
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var doc = Fixture();
        doc["messages"]![2]!["parts"]![0]!["messageID"] = "msg_20a46888a0018K6l9r3xDvhybB";
        var err = await server.ErrorAsync(Methods.SessionImport, new { content = doc.ToJsonString() });
        Assert.Equal("[\"messages\"][2][\"parts\"][0][\"messageID\"]", err.Field);
    }

    [Fact]
    public async Task Import_WriteFailsMidway_LeavesNothingOfTheSession()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var before = dirs.StorageFiles();
        // A file where the last message's part folder must go: writing its parts fails after the earlier
        // messages and parts were written.
        string blocker = store.Layout.PartDir("msg_20a469eb5001LxDF8eZQeHVGLn");
        Directory.CreateDirectory(Path.GetDirectoryName(blocker)!);
        await File.WriteAllTextAsync(blocker, "in the way");
        await Assert.ThrowsAnyAsync<IOException>(() => ImportFileAsync(store, ExportFixture("fake-llm-session-with-tool.json"), FixtureProject));
        Assert.Equal(before.Append(Path.GetRelativePath(dirs.Storage, blocker)).Order(StringComparer.Ordinal), dirs.StorageFiles().Where(f => !f.StartsWith("project", StringComparison.Ordinal)));
        Assert.False(store.SessionExists("ses_df5b97920ffeUFbu7k46fCazeu"));
    }

    [Fact]
    public async Task Import_Twice_IsIdempotent()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r1 = await ImportFileAsync(store, ExportFixture("fake-llm-session-with-tool.json"), FixtureProject);
        string first = await ExportAsync(store, r1.SessionID);
        var files = dirs.StorageFiles().Select(f => (f, File.ReadAllText(Path.Combine(dirs.Storage, f)))).ToList();
        var r2 = await ImportFileAsync(store, ExportFixture("fake-llm-session-with-tool.json"), FixtureProject);
        Assert.Equal(r1, r2);
        Assert.Equal(first, await ExportAsync(store, r2.SessionID));
        Assert.Equal(files, dirs.StorageFiles().Select(f => (f, File.ReadAllText(Path.Combine(dirs.Storage, f)))).ToList());
        Assert.Equal(new ImportResult("ses_df5b97920ffeUFbu7k46fCazeu", 1, 5, 12), r2);
    }

    [Fact]
    public async Task Import_IntoAnotherProject_FilesTheSessionThere_AndMovesAReimport()
    {
        using var dirs = new TestDirs(git: true);
        string otherDir = Path.Combine(dirs.Root, "other");
        Directory.CreateDirectory(otherDir);
        string otherId = TestDirs.InitGitRepo(otherDir, "x.txt", "other\n");
        var store = NewStore(dirs);
        var a = ProjectResolver.Resolve(dirs.ProjectDir);
        var b = ProjectResolver.Resolve(otherDir);
        Assert.NotEqual(a.Id, b.Id);
        var r = await ImportFileAsync(store, ExportFixture("http-session-2user-msgs.json"), a);
        var (info, projectId) = store.ReadSession(r.SessionID);
        Assert.Equal(a.Id, projectId);
        Assert.Equal(a.Id, (string?)info["projectID"]);
        Assert.Equal(dirs.ProjectDir, (string?)info["directory"]);
        Assert.Equal(string.Empty, (string?)info["path"]);
        Assert.Equal("renamed", (string?)info["title"]);

        await ImportFileAsync(store, ExportFixture("http-session-2user-msgs.json"), b);
        (info, projectId) = store.ReadSession(r.SessionID);
        Assert.Equal(otherId, b.Id);
        Assert.Equal(b.Id, projectId);
        Assert.Equal(otherDir, (string?)info["directory"]);
        Assert.False(File.Exists(store.Layout.SessionFile(a.Id, r.SessionID)));
        Assert.Single(store.ListSessions(b.Id, new(IncludeArchived: true)));
        Assert.Empty(store.ListSessions(a.Id, new(IncludeArchived: true)));
    }

    [Fact]
    public async Task Import_OverCaps_IsRefused_WithNothingWritten()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        byte[] bytes = await File.ReadAllBytesAsync(ExportFixture("fake-llm-session-with-tool.json"));
        var before = dirs.StorageFiles();
        var tooBig = await Assert.ThrowsAsync<OpenCodeException>(() =>
            SessionImporter.ImportJsonAsync(store, bytes, "f", FixtureProject, new ImportLimits(MaxBytes: 1000), CancellationToken.None));
        Assert.Equal(ErrorKind.LimitExceeded, tooBig.Kind);
        var tooMany = await Assert.ThrowsAsync<OpenCodeException>(() =>
            SessionImporter.ImportJsonAsync(store, bytes, "f", FixtureProject, new ImportLimits(MaxParts: 11), CancellationToken.None));
        Assert.Contains("12 parts", tooMany.Message, StringComparison.Ordinal);
        string deep = new string('[', 500) + new string(']', 500);
        var tooDeep = await Assert.ThrowsAsync<OpenCodeException>(() =>
            SessionImporter.ImportJsonAsync(store, Encoding.UTF8.GetBytes(deep), "f", FixtureProject, ImportLimits.Default, CancellationToken.None));
        Assert.Equal(ErrorKind.LimitExceeded, tooDeep.Kind);
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task Import_Cli_PrintsImportedSession_AndEveryFailureExitsNonZero()
    {
        using var dirs = new TestDirs();
        string[] common = ["--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir];
        var ok = await ProcessServer.RunCliAsync(["import", ExportFixture("http-session-2user-msgs.json"), .. common]);
        Assert.Equal(0, ok.Code);
        Assert.Equal("Imported session: ses_df5bd1602ffe7PW8nTkdnDCX6s\n", ok.Stdout);

        string bad = Path.Combine(dirs.Root, "bad.json");
        await File.WriteAllTextAsync(bad, "{not json");
        var invalid = await ProcessServer.RunCliAsync(["import", bad, .. common]);
        Assert.Equal(1, invalid.Code);
        Assert.StartsWith($"Error: Invalid JSON in {bad}: ", invalid.Stderr, StringComparison.Ordinal);

        var missing = await ProcessServer.RunCliAsync(["import", Path.Combine(dirs.Root, "missing.json"), .. common]);
        Assert.Equal(1, missing.Code);
        Assert.Equal($"Error: File not found: {Path.Combine(dirs.Root, "missing.json")}\n", missing.Stderr);

        string empty = Path.Combine(dirs.Root, "empty.json");
        await File.WriteAllTextAsync(empty, "{}");
        var noInfo = await ProcessServer.RunCliAsync(["import", empty, .. common]);
        Assert.Equal(1, noInfo.Code);
        Assert.Contains("[\"info\"]", noInfo.Stderr, StringComparison.Ordinal);

        var big = await ProcessServer.RunCliAsync(["import", ExportFixture("fake-llm-session-with-tool.json"), "--max-import-bytes", "100", .. common]);
        Assert.Equal(1, big.Code);
        Assert.Contains("over the limit of 100 bytes", big.Stderr, StringComparison.Ordinal);
    }
}
