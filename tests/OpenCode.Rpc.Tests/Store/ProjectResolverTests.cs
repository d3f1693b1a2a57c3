using System.Text.Json.Nodes;
using LibGit2Sharp;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Store;

public sealed class ProjectResolverTests
{
    [Fact]
    public void GitRepo_IdIsRootCommit_CachedInDotGitOpencode_AndReadBack()
    {
        using var dirs = new TestDirs();
        string root = TestDirs.InitGitRepo(dirs.ProjectDir);
        var p = ProjectResolver.Resolve(dirs.ProjectDir);
        Assert.Equal(root, p.Id);
        Assert.Equal("git", p.Vcs);
        Assert.Equal(dirs.ProjectDir, p.Worktree);
        Assert.Equal(dirs.ProjectDir, p.Sandbox);
        string cache = Path.Combine(dirs.ProjectDir, ".git", "opencode");
        Assert.Equal(root, File.ReadAllText(cache));

        // The cache wins over the history, exactly as OpenCode reads it (trimmed).
        File.WriteAllText(cache, "cafe0000000000000000000000000000000000ff\n");
        Assert.Equal("cafe0000000000000000000000000000000000ff", ProjectResolver.Resolve(dirs.ProjectDir).Id);
    }

    [Fact]
    public void TwoRootCommits_TheSortedFirstWins()
    {
        using var dirs = new TestDirs();
        string first = TestDirs.InitGitRepo(dirs.ProjectDir);
        string second;
        using (var repo = new Repository(dirs.ProjectDir))
        {
            var sig = new Signature("t", "t@example.com", DateTimeOffset.FromUnixTimeSeconds(1_700_000_100));
            var tree = repo.Head.Tip.Tree;
            // an unrelated history (a second root), reachable from a branch
            for (int i = 0; ; i++)
            {
                var orphan = repo.ObjectDatabase.CreateCommit(sig, sig, "orphan " + i, tree, [], false);
                if (string.CompareOrdinal(orphan.Sha, first) < 0 || i > 50)
                {
                    second = orphan.Sha;
                    repo.Refs.Add("refs/heads/orphan", orphan.Id);
                    break;
                }
            }
        }

        string expected = new[] { first, second }.Order(StringComparer.Ordinal).First();
        Assert.Equal(expected, ProjectResolver.Resolve(dirs.ProjectDir).Id);
    }

    [Fact]
    public void Subdirectory_ResolvesToTheSameProject()
    {
        using var dirs = new TestDirs(git: true);
        string sub = Path.Combine(dirs.ProjectDir, "src", "deep");
        Directory.CreateDirectory(sub);
        var top = ProjectResolver.Resolve(dirs.ProjectDir);
        var p = ProjectResolver.Resolve(sub);
        Assert.Equal(top.Id, p.Id);
        Assert.Equal(dirs.ProjectDir, p.Worktree);
        Assert.Equal(sub, p.Directory);
    }

    [Fact]
    public void NonGitDirectory_IsGlobal_WithWorktreeRoot()
    {
        using var dirs = new TestDirs();
        var p = ProjectResolver.Resolve(dirs.ProjectDir);
        Assert.Equal("global", p.Id);
        Assert.Equal("/", p.Worktree);
        Assert.Null(p.Vcs);
        Assert.Equal(dirs.ProjectDir, p.Directory);
    }

    [Fact]
    public void RepoWithoutCommits_IsGlobal()
    {
        using var dirs = new TestDirs();
        Repository.Init(dirs.ProjectDir);
        Assert.Equal("global", ProjectResolver.Resolve(dirs.ProjectDir).Id);
    }

    [Fact]
    public void EnsureProjectFile_Global_HasOpenCode1165Shape()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        ProjectResolver.EnsureProjectFile(layout, ProjectResolver.Resolve(dirs.ProjectDir), 1795473419637);
        // what 1.1.65 writes for a non-git directory (observed: Interop tests check it against the real binary)
        const string expected = "{\n  \"id\": \"global\",\n  \"worktree\": \"/\",\n  \"sandboxes\": [],\n  \"time\": {\n    \"created\": 1795473419637,\n    \"updated\": 1795473419637\n  }\n}";
        Assert.Equal(expected, File.ReadAllText(Path.Combine(dirs.Storage, "project", "global.json")));
    }

    [Fact]
    public void EnsureProjectFile_Git_HasOpenCode1165Shape_AndIsNotRewritten()
    {
        using var dirs = new TestDirs();
        string root = TestDirs.InitGitRepo(dirs.ProjectDir);
        var layout = new StoreLayout(dirs.DataDir);
        var p = ProjectResolver.Resolve(dirs.ProjectDir);
        ProjectResolver.EnsureProjectFile(layout, p, 1000);
        ProjectResolver.EnsureProjectFile(layout, p, 2000);
        var obj = JsJson.ParseObject(File.ReadAllBytes(layout.ProjectFile(root)));
        Assert.Equal(["id", "worktree", "vcs", "sandboxes", "time"], obj.Select(kv => kv.Key));
        Assert.Equal(root, (string)obj["id"]!);
        Assert.Equal(dirs.ProjectDir, (string)obj["worktree"]!);
        Assert.Equal("git", (string)obj["vcs"]!);
        Assert.Empty((JsonArray)obj["sandboxes"]!);
        Assert.Equal(1000, (long)obj["time"]!["created"]!);
    }
}
