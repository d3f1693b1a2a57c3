using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Transfer.TransferTestKit;

namespace OpenCode.Rpc.Tests.Transfer;

/// <summary>Round trips through the real OpenCode 1.18.33 binary (installed by ../shared/tools/opencode-ref.sh when missing).</summary>
public sealed class InteropTests
{
    private const string Version = "1.18.33";

    [Theory]
    [InlineData("fake-llm-session-with-tool.json")]
    [InlineData("http-session-2user-msgs.json")]
    public async Task OurExport_RealImportThenRealExport_GivesTheSameContent(string fixture)
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, ExportFixture(fixture), ProjectResolver.Resolve(dirs.ProjectDir));
        string ours = await ExportAsync(store, r.SessionID);
        string file = Path.Combine(dirs.Root, "ours.json");
        await File.WriteAllTextAsync(file, ours);

        string home = Path.Combine(dirs.Root, "ochome");
        string cwd = Path.Combine(dirs.Root, "occwd");
        Directory.CreateDirectory(home);
        Directory.CreateDirectory(cwd);
        var imp = await RunOpenCodeAsync(home, cwd, Version, "import", file);
        Assert.True(imp.Code == 0, imp.Stderr);
        Assert.Equal($"Imported session: {r.SessionID}\n", imp.Stdout);
        var exp = await RunOpenCodeAsync(home, cwd, Version, "export", r.SessionID);
        Assert.True(exp.Code == 0, exp.Stderr);
        SameContent(Normalize(ours), Normalize(exp.Stdout));
    }

    [Fact]
    public async Task TheirExport_OurImportAndExport_EqualsTheirImportAndExport()
    {
        using var dirs = new TestDirs();
        string home = Path.Combine(dirs.Root, "ochome");
        string cwd = Path.Combine(dirs.Root, "occwd");
        Directory.CreateDirectory(home);
        Directory.CreateDirectory(cwd);

        // One export the real binary makes during the test (from the every-field session), plus the fixtures.
        Assert.Equal(0, (await RunOpenCodeAsync(home, cwd, Version, "import", Data("every-field.input.json"))).Code);
        var made = await RunOpenCodeAsync(home, cwd, Version, "export", "ses_0000000000009AAAAAAAAAAAAA");
        Assert.Equal(0, made.Code);
        string madeFile = Path.Combine(dirs.Root, "made.json");
        await File.WriteAllTextAsync(madeFile, made.Stdout);

        var store = NewStore(dirs);
        var project = ProjectResolver.Resolve(dirs.ProjectDir);
        foreach (var file in new[] { madeFile, ExportFixture("fake-llm-session-with-tool.json"), ExportFixture("http-session-2user-msgs.json") })
        {
            var r = await ImportFileAsync(store, file, project);
            string ours = await ExportAsync(store, r.SessionID);

            string home2 = Path.Combine(dirs.Root, "ochome-" + Path.GetFileNameWithoutExtension(file));
            Directory.CreateDirectory(home2);
            Assert.Equal(0, (await RunOpenCodeAsync(home2, cwd, Version, "import", file)).Code);
            var theirs = await RunOpenCodeAsync(home2, cwd, Version, "export", r.SessionID);
            Assert.True(theirs.Code == 0, theirs.Stderr);
            SameContent(Normalize(theirs.Stdout), Normalize(ours));
        }
    }

    [Fact]
    public async Task RealOpenCodeDatabase_WrittenDuringTheTest_ImportsWithNothingLost()
    {
        using var dirs = new TestDirs();
        string home = Path.Combine(dirs.Root, "ochome");
        string cwd = Path.Combine(dirs.Root, "occwd");
        Directory.CreateDirectory(home);
        Directory.CreateDirectory(cwd);
        foreach (var f in new[] { ExportFixture("fake-llm-session-with-tool.json"), ExportFixture("http-session-2user-msgs.json"), Data("every-field.input.json") })
        {
            Assert.Equal(0, (await RunOpenCodeAsync(home, cwd, Version, "import", f)).Code);
        }

        string db = Path.Combine(home, "data", "opencode", "opencode.db");
        Assert.True(File.Exists(db));
        var cli = await ProcessServer.RunCliAsync(["import", "--from-opencode-db", db, "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir]);
        Assert.True(cli.Code == 0, cli.Stderr);
        Assert.Equal("Imported 3 sessions, 9 messages, 33 parts\n", cli.Stdout);

        var store = NewStore(dirs);
        foreach (var id in new[] { "ses_df5b97920ffeUFbu7k46fCazeu", "ses_df5bd1602ffe7PW8nTkdnDCX6s", "ses_0000000000009AAAAAAAAAAAAA" })
        {
            var theirs = await RunOpenCodeAsync(home, cwd, Version, "export", id);
            Assert.True(theirs.Code == 0, theirs.Stderr);
            string ours = await ExportAsync(store, id);
            // Nothing lost, nothing changed: the same bytes as OpenCode's own export of its database.
            Assert.Equal(theirs.Stdout, ours);
        }
    }
}
