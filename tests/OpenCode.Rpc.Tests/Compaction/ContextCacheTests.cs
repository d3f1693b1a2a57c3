using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Compaction;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Compaction;

/// <summary>
/// <c>session/context</c> keeps parsed files and folder listings between calls. These tests change the store behind
/// the server's back, the way OpenCode or a second sidecar does (files rewritten in place, files added or removed
/// without a message from us), and check that the next call answers exactly what a fresh, uncached read answers.
/// </summary>
public sealed class ContextCacheTests
{
    [Fact]
    public async Task Context_OfASettledSession_SeesPartsAnotherProcessRewritesInPlaceAddsAndRemoves()
    {
        await using var h = await CompactionHarness.StartAsync();
        var layout = new StoreLayout(h.Dirs.DataDir);
        string u = await h.UserAsync("Read the parser please.");
        var tool = h.Tool("read", "original output of the read");
        string a = await h.AssistantAsync(u, tool, h.Text("I read it."));
        string toolFile = layout.PartFile(a, tool["id"]!.GetValue<string>());

        // An old session: every file and folder an hour old, so the server trusts its listings and parsed files.
        Backdate(layout.MessageDir(h.SessionId), TimeSpan.FromHours(1));
        Backdate(layout.PartDir(u), TimeSpan.FromHours(1));
        Backdate(layout.PartDir(a), TimeSpan.FromHours(1));
        await AssertMatchesUncachedAsync(h, layout);
        await AssertMatchesUncachedAsync(h, layout);

        // Rewritten in place, same length, as OpenCode's Storage.write does (no rename: the folder's mtime stays).
        var folderMtime = Directory.GetLastWriteTimeUtc(layout.PartDir(a));
        string before = File.ReadAllText(toolFile);
        string after = before.Replace("original output", "modified output", StringComparison.Ordinal);
        Assert.Equal(before.Length, after.Length);
        using (var f = new FileStream(toolFile, FileMode.Open, FileAccess.Write))
        {
            f.Write(System.Text.Encoding.UTF8.GetBytes(after));
        }

        Assert.Equal(folderMtime, Directory.GetLastWriteTimeUtc(layout.PartDir(a)));
        Assert.Contains("modified output of the read", await AssertMatchesUncachedAsync(h, layout));

        // A part added by another process, then removed.
        string added = layout.PartFile(a, Core.Ids.Identifier.Ascending(Core.Ids.Identifier.Part));
        var text = h.Text("Written by someone else.");
        text.Insert(0, "id", Path.GetFileNameWithoutExtension(added));
        text["messageID"] = a;
        File.WriteAllBytes(added, JsJson.ToBytes(text));
        Assert.Contains("Written by someone else.", await AssertMatchesUncachedAsync(h, layout));
        File.Delete(added);
        Assert.DoesNotContain("Written by someone else.", await AssertMatchesUncachedAsync(h, layout));

        // A whole message added by another process (its file and its part folder).
        var info = h.User();
        string mid = Core.Ids.Identifier.Ascending(Core.Ids.Identifier.Message);
        info.Insert(0, "id", mid);
        File.WriteAllBytes(layout.MessageFile(h.SessionId, mid), JsJson.ToBytes(info));
        var part = h.Text("A question from the other window.");
        part.Insert(0, "id", Core.Ids.Identifier.Ascending(Core.Ids.Identifier.Part));
        part["messageID"] = mid;
        Directory.CreateDirectory(layout.PartDir(mid));
        File.WriteAllBytes(layout.PartFile(mid, part["id"]!.GetValue<string>()), JsJson.ToBytes(part));
        Assert.Contains("A question from the other window.", await AssertMatchesUncachedAsync(h, layout));
    }

    [Fact]
    public async Task Context_SeesAFreshFileRewrittenWithTheSameSizeAndMtime()
    {
        await using var h = await CompactionHarness.StartAsync();
        var layout = new StoreLayout(h.Dirs.DataDir);
        string u = await h.UserAsync("Count the lines.");
        var tool = h.Tool("bash", "first answer: 41");
        string a = await h.AssistantAsync(u, tool);
        string toolFile = layout.PartFile(a, tool["id"]!.GetValue<string>());

        // A coarse clock: the rewrite gets the very mtime the first read saw. A file that recent is never trusted by
        // its stamp alone, so the change is still seen.
        var stamp = DateTime.UtcNow.AddSeconds(30);
        File.SetLastWriteTimeUtc(toolFile, stamp);
        Assert.Contains("first answer: 41", await AssertMatchesUncachedAsync(h, layout));
        File.WriteAllText(toolFile, File.ReadAllText(toolFile).Replace("first answer: 41", "other answer: 42", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(toolFile, stamp);
        Assert.Contains("other answer: 42", await AssertMatchesUncachedAsync(h, layout));
    }

    /// <summary>Asserts that the server's (cached) context equals one built from a fresh read of the store, and
    /// returns its messages as JSON text.</summary>
    private static async Task<string> AssertMatchesUncachedAsync(CompactionHarness h, StoreLayout layout)
    {
        var served = await h.ContextAsync();
        var fresh = ContextBuilder.Build(h.SessionId, new SessionStore(layout).ListMessages(h.SessionId));
        var messages = served.GetProperty("messages");
        Assert.Equal(fresh.Total, served.GetProperty("total").GetInt64());
        Assert.Equal(fresh.Messages.Count, messages.GetArrayLength());
        for (int i = 0; i < fresh.Messages.Count; i++)
        {
            var want = fresh.Messages[i];
            var got = messages[i];
            Assert.Equal(want.MessageID, got.GetProperty("messageID").GetString());
            Assert.Equal(want.Tokens, got.GetProperty("tokens").GetInt32());
            Assert.Equal(
                want.Content.Select(c => c.Text ?? c.Output).ToList(),
                got.GetProperty("content").EnumerateArray().Select(c => c.TryGetProperty("text", out var t) ? t.GetString() : c.GetProperty("output").GetString()).ToList());
        }

        return messages.GetRawText();
    }

    private static void Backdate(string dir, TimeSpan age)
    {
        var when = DateTime.UtcNow - age;
        foreach (string f in Directory.EnumerateFiles(dir))
        {
            File.SetLastWriteTimeUtc(f, when);
        }

        Directory.SetLastWriteTimeUtc(dir, when);
    }
}
