using LibGit2Sharp;

namespace OpenCode.Rpc.Tests.Infrastructure;

/// <summary>A temp data dir and a temp project dir per test, removed afterwards. Never the real ~/.local/share.</summary>
public sealed class TestDirs : IDisposable
{
    public TestDirs(bool git = false)
    {
        Root = Directory.CreateTempSubdirectory("ocrpc-test-").FullName;
        DataDir = Path.Combine(Root, "data");
        ProjectDir = Path.Combine(Root, "project");
        Directory.CreateDirectory(DataDir);
        Directory.CreateDirectory(ProjectDir);
        if (git)
        {
            InitGitRepo(ProjectDir);
        }
    }

    public string Root { get; }

    public string DataDir { get; }

    public string ProjectDir { get; }

    public string Storage => Path.Combine(DataDir, "storage");

    /// <summary>The global OpenCode config dir servers started by tests use (empty unless a test writes to it).</summary>
    public string ConfigDir => Path.Combine(Root, "config");

    /// <summary>Makes <paramref name="dir"/> a git repo with one commit; returns the commit sha (the project id).</summary>
    public static string InitGitRepo(string dir, string file = "README.md", string content = "hello\n")
    {
        Repository.Init(dir);
        using var repo = new Repository(dir);
        File.WriteAllText(Path.Combine(dir, file), content);
        Commands.Stage(repo, file);
        var sig = new Signature("t", "t@example.com", DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
        return repo.Commit("init", sig, sig).Sha;
    }

    /// <summary>All files under storage/, relative, sorted: lets a test assert that nothing was written.</summary>
    public IReadOnlyList<string> StorageFiles() => Directory.Exists(Storage)
        ? Directory.EnumerateFiles(Storage, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Storage, f)).Order(StringComparer.Ordinal).ToList()
        : [];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
