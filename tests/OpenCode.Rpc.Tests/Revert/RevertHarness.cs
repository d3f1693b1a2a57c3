using System.Security.Cryptography;
using System.Text.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Revert;

/// <summary>A temp project (git or not), a temp data dir, a temp global config dir (never the real home), a server
/// and one session; helpers to record AI turns the way an agent does through the sidecar.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class RevertHarness : IAsyncDisposable
{
    private RevertHarness(TestDirs dirs, RpcTestClient client, string configDir, string sessionId)
    {
        Dirs = dirs;
        Client = client;
        ConfigDir = configDir;
        SessionId = sessionId;
    }

    public TestDirs Dirs { get; }

    public RpcTestClient Client { get; }

    public string ConfigDir { get; }

    public string SessionId { get; }

    public string Project => Dirs.ProjectDir;

    public static string NewConfigDir(TestDirs dirs)
    {
        string configDir = Path.Combine(dirs.Root, "config", "opencode");
        Directory.CreateDirectory(configDir);
        return configDir;
    }

    public static async Task<RevertHarness> StartAsync(bool git = true, Action<string>? seed = null, string? projectConfig = null, Xunit.Abstractions.ITestOutputHelper? processOutput = null)
    {
        var dirs = new TestDirs(git);
        seed?.Invoke(dirs.ProjectDir);
        if (git)
        {
            CommitAll(dirs.ProjectDir);
        }

        if (projectConfig is not null)
        {
            File.WriteAllText(Path.Combine(dirs.ProjectDir, "opencode.jsonc"), projectConfig);
        }

        string configDir = NewConfigDir(dirs);
        RpcTestClient client = processOutput is null
            ? await InProcServer.StartAsync(dirs, options: new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: configDir))
            : await ProcessServer.StartAsync(dirs, processOutput, true, "--config-dir", configDir);
        var session = await client.CallAsync(Methods.SessionCreate, new { title = "revert test" });
        return new RevertHarness(dirs, client, configDir, session.GetProperty("id").GetString()!);
    }

    /// <summary>Commits everything in the user's repo (so files are tracked by the user's git).</summary>
    public static void CommitAll(string dir)
    {
        using var repo = new LibGit2Sharp.Repository(dir);
        LibGit2Sharp.Commands.Stage(repo, "*");
        var sig = new LibGit2Sharp.Signature("t", "t@example.com", DateTimeOffset.FromUnixTimeSeconds(1_700_000_100));
        if (repo.RetrieveStatus(new LibGit2Sharp.StatusOptions()).IsDirty)
        {
            repo.Commit("seed", sig, sig, new LibGit2Sharp.CommitOptions());
        }
    }

    public string P(string rel) => Path.Combine(Project, rel.Replace('/', Path.DirectorySeparatorChar));

    public async Task<string> UserAsync(string text)
    {
        var info = await Client.CallAsync(Methods.MessageUpdate, new
        {
            info = new
            {
                sessionID = SessionId,
                role = "user",
                time = new { created = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
                agent = "build",
                model = new { providerID = "test", modelID = "m" },
            },
        });
        string id = info.GetProperty("id").GetString()!;
        await Client.CallAsync(Methods.PartUpdate, new { part = new { sessionID = SessionId, messageID = id, type = "text", text } });
        return id;
    }

    public async Task<string> AssistantAsync(string parentId)
    {
        var info = await Client.CallAsync(Methods.MessageUpdate, new
        {
            info = new
            {
                sessionID = SessionId,
                role = "assistant",
                time = new { created = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
                parentID = parentId,
                modelID = "m",
                providerID = "test",
                mode = "build",
                agent = "build",
                path = new { cwd = Project, root = Project },
                cost = 0,
                tokens = new { input = 0, output = 0, reasoning = 0, cache = new { read = 0, write = 0 } },
            },
        });
        return info.GetProperty("id").GetString()!;
    }

    /// <summary>One user turn: a user message, then an assistant step that runs <paramref name="ai"/> between
    /// step/start and step/finish. Returns (user message id, assistant message id, step/finish result).</summary>
    public async Task<(string User, string Assistant, JsonElement Finish)> TurnAsync(string text, Action ai)
    {
        string user = await UserAsync(text);
        string assistant = await AssistantAsync(user);
        await Client.CallAsync(Methods.StepStart, new { sessionID = SessionId, messageID = assistant });
        ai();
        await Client.CallAsync(Methods.PartUpdate, new { part = new { sessionID = SessionId, messageID = assistant, type = "text", text = "done: " + text } });
        var finish = await Client.CallAsync(Methods.StepFinish, new { sessionID = SessionId, messageID = assistant, reason = "stop" });
        return (user, assistant, finish);
    }

    /// <summary>Every file under the project except .git: relative path → kind, content hash and exec bit.</summary>
    public IReadOnlyDictionary<string, string> Files() => FileMap(Project);

    public static IReadOnlyDictionary<string, string> FileMap(string root)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            string rel = Path.GetRelativePath(root, path).Replace('\\', '/');
            if (rel == ".git" || rel.StartsWith(".git/", StringComparison.Ordinal))
            {
                continue;
            }

            var fi = new FileInfo(path);
            if (fi.LinkTarget is { } target)
            {
                map[rel] = "link:" + target;
            }
            else if (Directory.Exists(path))
            {
                map[rel + "/"] = "dir";
            }
            else
            {
                bool exec = (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0;
                map[rel] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))) + (exec ? " +x" : string.Empty);
            }
        }

        return map;
    }

    /// <summary>Hashes of everything in the user's .git that we must never change.</summary>
    public IReadOnlyDictionary<string, string> UserGitState()
    {
        string git = Path.Combine(Project, ".git");
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(git, "*", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(git, f);
            if (rel == "opencode")
            {
                continue; // the project-id cache OpenCode itself writes
            }

            map[rel] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))) + "@" + File.GetLastWriteTimeUtc(f).Ticks;
        }

        return map;
    }

    public string Storage(params string[] parts) => Path.Combine([Dirs.Storage, .. parts]);

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        Dirs.Dispose();
    }
}
