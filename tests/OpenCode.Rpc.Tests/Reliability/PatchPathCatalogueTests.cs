using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Revert;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>A <c>patch</c> part (the AI's record of the files a step changed) naming paths that leave the project,
/// one row each: written by a client with <c>part/update</c>, or brought in by <c>session/import</c> (a patch part
/// is data from anywhere). An undo of that turn must refuse (PathOutsideProject, naming the path), change nothing:
/// not the project, not the file outside it, not the store, and the server keeps answering.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed partial class PatchPathCatalogueTests
{
    /// <summary>What a row needs: the harness, and a folder outside the project holding secret.txt.</summary>
    public sealed record Ctx(RevertHarness H, string Outside)
    {
        public string Secret => Path.Combine(Outside, "secret.txt");
    }

    /// <summary>name → the hostile path the patch part names (plus, always, the file the turn really changed).</summary>
    public static readonly Dictionary<string, Func<Ctx, string>> Cases = new()
    {
        ["DotDotRelative"] = _ => "../outside/secret.txt",
        ["DotDotInsideAnAbsolutePath"] = c => c.H.P("sub/../../outside/secret.txt"),
        ["DeepDotDot"] = _ => "a/b/c/../../../../../../../../../etc/passwd",
        ["AbsoluteOutsideTheProject"] = c => c.Secret,
        ["AbsoluteSystemFile"] = _ => "/etc/passwd",
        ["SiblingWithTheProjectAsPrefix"] = c => c.H.Project + "-evil/secret.txt",
        ["ThroughASymlinkedFolderPointingOut"] = c => c.H.P("linkdir/secret.txt"),
        ["ThroughASymlinkedFolderRelative"] = _ => "linkdir/secret.txt",
        ["InsideTheUsersGitFolder"] = c => c.H.P(".git/config"),
        ["TheProjectRootItself"] = c => c.H.Project,
        ["NulInThePath"] = c => c.H.P("a.txt\0/../../outside/secret.txt"),
        ["Empty"] = _ => string.Empty,
    };

    public static IEnumerable<object[]> Rows =>
        from name in Cases.Keys
        from via in new[] { "part/update", "import" }
        select new object[] { name, via };

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task PatchNamingAPathOutsideTheProject_UndoRefusesChangesNothingAndKeepsServing(string name, string via)
    {
        await using var h = await RevertHarness.StartAsync(true, p => File.WriteAllText(Path.Combine(p, "a.txt"), "alpha\n"));
        string outside = Path.Combine(h.Dirs.Root, "outside");
        Directory.CreateDirectory(outside);
        var c = new Ctx(h, outside);
        File.WriteAllText(c.Secret, "outside\n");
        Directory.CreateSymbolicLink(h.P("linkdir"), outside);
        Directory.CreateDirectory(h.Project + "-evil");
        File.WriteAllText(Path.Combine(h.Project + "-evil", "secret.txt"), "sibling\n");

        var (user, assistant, _) = await h.TurnAsync("edit", () => File.WriteAllText(h.P("a.txt"), "AI version\n"));
        string hash = (await h.Client.CallAsync(Methods.SnapshotTrack, new { sessionID = h.SessionId })).GetProperty("hash").GetString()!;
        string hostile = Cases[name](c);
        string session = h.SessionId;
        if (via == "part/update")
        {
            await h.Client.CallAsync(Methods.PartUpdate, new
            {
                part = new { sessionID = session, messageID = assistant, type = "patch", hash, files = new[] { h.P("a.txt"), hostile } },
            });
        }
        else
        {
            (session, user) = await ImportWithHostilePatchAsync(h, assistant, hash, hostile, user);
        }

        var project = h.Files();
        var outsideBefore = RevertHarness.FileMap(h.Dirs.Root + "/outside");
        var sibling = File.ReadAllText(Path.Combine(h.Project + "-evil", "secret.txt"));
        var gitConfig = File.ReadAllText(h.P(".git/config"));
        var storage = ParamsCatalogueTests.Snapshot(h.Dirs);

        var err = await h.Client.ErrorAsync(Methods.SessionRevert, new { sessionID = session, messageID = user });

        Assert.Equal(ErrorCodes.PathOutsideProject, err.Code);
        Assert.StartsWith("Nothing was reverted", err.Message, StringComparison.Ordinal);
        var listed = err.Data!.Value.GetProperty("files").EnumerateArray().Select(f => f.GetString()).ToList();
        Assert.Equal([hostile], listed);
        Assert.Equal(project, h.Files());
        Assert.Equal(outsideBefore, RevertHarness.FileMap(h.Dirs.Root + "/outside"));
        Assert.Equal("sibling\n", File.ReadAllText(Path.Combine(h.Project + "-evil", "secret.txt")));
        Assert.Equal(gitConfig, File.ReadAllText(h.P(".git/config")));
        Assert.Equal(storage, ParamsCatalogueTests.Snapshot(h.Dirs));
        Assert.Equal("AI version\n", File.ReadAllText(h.P("a.txt"))); // not even the legitimate file: all or nothing
        var next = await h.Client.CallAsync(Methods.SessionGet, new { sessionID = session });
        Assert.False(next.TryGetProperty("revert", out _));
    }

    /// <summary>Exports the harness session, gives every id a fresh one (an import of the same ids would collide with
    /// the session it came from), adds the hostile patch part to the assistant message, and imports it. Returns the
    /// imported session's id and its user message id.</summary>
    private static async Task<(string Session, string User)> ImportWithHostilePatchAsync(RevertHarness h, string assistant, string hash, string hostile, string user)
    {
        string export = (await h.Client.CallAsync(Methods.SessionExport, new { sessionID = h.SessionId })).GetProperty("content").GetString()!;
        var fresh = new Dictionary<string, string>(StringComparer.Ordinal);
        string renamed = IdPattern().Replace(export, m =>
        {
            if (!fresh.TryGetValue(m.Value, out var id))
            {
                fresh[m.Value] = id = m.Groups[1].Value + "_imp" + fresh.Count.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + m.Groups[2].Value[..Math.Min(20, m.Groups[2].Value.Length)];
            }

            return id;
        });
        var doc = JsonNode.Parse(renamed)!.AsObject();
        string session = (string)doc["info"]!["id"]!;
        var msg = doc["messages"]!.AsArray().Select(m => m!.AsObject()).Single(m => (string?)m["info"]!["id"] == fresh[assistant]);
        msg["parts"]!.AsArray().Add(new JsonObject
        {
            ["id"] = "prt_imphostile0001",
            ["sessionID"] = session,
            ["messageID"] = fresh[assistant],
            ["type"] = "patch",
            ["hash"] = hash,
            ["files"] = new JsonArray(h.P("a.txt"), hostile),
        });
        var r = await h.Client.CallAsync(Methods.SessionImport, new { content = doc.ToJsonString() });
        Assert.Equal(session, r.GetProperty("sessionID").GetString());
        return (session, fresh[user]);
    }

    [GeneratedRegex("\\b(ses|msg|prt)_([0-9A-Za-z]+)\\b")]
    private static partial Regex IdPattern();
}
