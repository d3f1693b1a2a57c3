using System.Text.Json.Nodes;
using LibGit2Sharp;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Projects;

/// <summary>The project a directory belongs to, as OpenCode 1.1.65 computes it (reference §3.2).</summary>
/// <param name="Id">The sorted first root commit, or <c>global</c> outside git.</param>
/// <param name="Worktree">The main worktree, or <c>/</c> outside git.</param>
/// <param name="Sandbox">The worktree this directory is in (differs from <see cref="Worktree"/> in a linked git worktree).</param>
/// <param name="Vcs"><c>git</c> or null.</param>
/// <param name="Directory">The directory that was resolved, made absolute.</param>
public sealed record ProjectInfo(string Id, string Worktree, string Sandbox, string? Vcs, string Directory)
{
    public const string GlobalId = "global";

    public bool IsGit => Vcs == "git";
}

public static class ProjectResolver
{
    /// <summary>
    /// Resolves the project of <paramref name="directory"/>. Reads the id cached in <c>.git/opencode</c>
    /// (written by OpenCode and by us) and only opens the repository with LibGit2Sharp when it is missing,
    /// so a warm start never pays for a history walk.
    /// </summary>
    public static ProjectInfo Resolve(string directory)
    {
        string dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        string? dotGit = FindDotGit(dir);
        if (dotGit is null)
        {
            return new ProjectInfo(ProjectInfo.GlobalId, "/", "/", null, dir);
        }

        string gitDir = ResolveGitDir(dotGit);
        string sandbox = Path.GetDirectoryName(dotGit)!;
        string worktree = MainWorktree(gitDir) ?? sandbox;
        string cacheFile = Path.Combine(dotGit.EndsWith(".git", StringComparison.Ordinal) && Directory.Exists(dotGit) ? dotGit : gitDir, "opencode");

        string? id = null;
        try
        {
            if (File.Exists(cacheFile))
            {
                id = File.ReadAllText(cacheFile).Trim();
                if (!StoreLayout.IsValidProjectId(id))
                {
                    id = null;
                }
            }
        }
        catch (IOException)
        {
            id = null;
        }

        if (id is null)
        {
            id = RootCommit(sandbox);
            if (id is null)
            {
                // A repository with no commit yet: OpenCode treats it as global, and so do we.
                return new ProjectInfo(ProjectInfo.GlobalId, "/", "/", null, dir);
            }

            try
            {
                File.WriteAllText(cacheFile, id);
            }
            catch (IOException)
            {
                // The cache is an optimisation; a read-only .git still resolves, just more slowly.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return new ProjectInfo(id, worktree, sandbox, "git", dir);
    }

    /// <summary>Writes <c>storage/project/&lt;id&gt;.json</c> the first time a project is seen, in 1.1.65's shape.</summary>
    public static void EnsureProjectFile(StoreLayout layout, ProjectInfo project, long nowMs)
    {
        string file = layout.ProjectFile(project.Id);
        if (File.Exists(file))
        {
            return;
        }

        var obj = new JsonObject { ["id"] = project.Id, ["worktree"] = project.Worktree };
        if (project.Vcs is not null)
        {
            obj["vcs"] = project.Vcs;
        }

        obj["sandboxes"] = new JsonArray();
        obj["time"] = new JsonObject { ["created"] = nowMs, ["updated"] = nowMs };
        AtomicFile.Write(file, JsJson.ToBytes(obj));
    }

    private static string? FindDotGit(string dir)
    {
        for (string? d = dir; d is not null; d = Path.GetDirectoryName(d))
        {
            string candidate = Path.Combine(d, ".git");
            if (Directory.Exists(candidate) || File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    // A linked worktree or submodule has a .git *file* saying "gitdir: <path>".
    private static string ResolveGitDir(string dotGit)
    {
        if (Directory.Exists(dotGit))
        {
            return dotGit;
        }

        string text = File.ReadAllText(dotGit).Trim();
        const string prefix = "gitdir:";
        if (text.StartsWith(prefix, StringComparison.Ordinal))
        {
            string p = text[prefix.Length..].Trim();
            return Path.GetFullPath(Path.IsPathRooted(p) ? p : Path.Combine(Path.GetDirectoryName(dotGit)!, p));
        }

        return dotGit;
    }

    // git rev-parse --git-common-dir: a linked worktree's gitdir has a "commondir" file.
    private static string? MainWorktree(string gitDir)
    {
        string commonFile = Path.Combine(gitDir, "commondir");
        if (!File.Exists(commonFile))
        {
            return null;
        }

        string common = File.ReadAllText(commonFile).Trim();
        common = Path.GetFullPath(Path.IsPathRooted(common) ? common : Path.Combine(gitDir, common));
        return Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(common));
    }

    /// <summary><c>git rev-list --max-parents=0 --all</c>, sorted, first line.</summary>
    private static string? RootCommit(string workdir)
    {
        try
        {
            using var repo = new Repository(workdir);
            var refs = repo.Refs.ToList();
            if (refs.Count == 0)
            {
                return null;
            }

            var filter = new CommitFilter { IncludeReachableFrom = refs, SortBy = CommitSortStrategies.None };
            string? best = null;
            foreach (var c in repo.Commits.QueryBy(filter))
            {
                if (!c.Parents.Any() && (best is null || string.CompareOrdinal(c.Sha, best) < 0))
                {
                    best = c.Sha;
                }
            }

            return best;
        }
        catch (LibGit2SharpException)
        {
            return null;
        }
    }
}
