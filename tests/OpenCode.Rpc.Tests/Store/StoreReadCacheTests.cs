using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Ids;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Transfer;

namespace OpenCode.Rpc.Tests.Store;

/// <summary>
/// <c>message/list</c>, export and fork read through the store's parse cache. These tests change files behind the
/// store's back, as OpenCode or a second sidecar does, and check every answer against a store that keeps nothing.
/// </summary>
public sealed class StoreReadCacheTests
{
    private static string Id(JsonObject o) => (string)o["id"]!;

    /// <summary>A session with <paramref name="messages"/> user/assistant messages, each with a text part; files and
    /// folders an hour old, so the cache trusts what it reads.</summary>
    private static async Task<string> SettledSessionAsync(StoreHarness h, int messages = 4)
    {
        var s = await h.Store.CreateSessionAsync(h.Project, "cache", null, default);
        string sid = Id(s);
        string? parent = null;
        for (int i = 0; i < messages; i++)
        {
            var m = i % 2 == 0
                ? await h.Store.UpdateMessageAsync(Samples.User(sid, 1795468724363 + (i * 10)), default)
                : await h.Store.UpdateMessageAsync(Samples.Assistant(sid, parent!, 1795468724363 + (i * 10), h.Dirs.ProjectDir), default);
            parent = Id(m);
            await h.Store.UpdatePartAsync(Samples.Text(sid, Id(m), $"message number {i}"), null, default);
        }

        Backdate(h, sid, TimeSpan.FromHours(1));
        return sid;
    }

    private static void Backdate(StoreHarness h, string sid, TimeSpan age)
    {
        var when = DateTime.UtcNow - age;
        var layout = h.Store.Layout;
        foreach (string file in Directory.EnumerateFiles(layout.MessageDir(sid)))
        {
            string part = layout.PartDir(Path.GetFileNameWithoutExtension(file));
            if (Directory.Exists(part))
            {
                foreach (string p in Directory.EnumerateFiles(part))
                {
                    File.SetLastWriteTimeUtc(p, when);
                }

                Directory.SetLastWriteTimeUtc(part, when);
            }

            File.SetLastWriteTimeUtc(file, when);
        }

        Directory.SetLastWriteTimeUtc(layout.MessageDir(sid), when);
    }

    /// <summary>The listing as text, to compare with what a store without a cache reads.</summary>
    private static string Text(IReadOnlyList<MessageWithParts> list)
    {
        var sb = new StringBuilder();
        foreach (var m in list)
        {
            sb.Append(JsJson.ToText(m.Info)).Append('\n');
            foreach (var p in m.Parts)
            {
                sb.Append(JsJson.ToText(p)).Append('\n');
            }
        }

        return sb.ToString();
    }

    private static string Uncached(StoreHarness h, string sid) =>
        Text(new SessionStore(h.Store.Layout, readCacheBytes: 0).ListMessages(sid));

    private static void RewriteInPlace(string file, string from, string to)
    {
        string before = File.ReadAllText(file);
        string after = before.Replace(from, to, StringComparison.Ordinal);
        Assert.NotEqual(before, after);
        Assert.Equal(before.Length, after.Length);
        using var f = new FileStream(file, FileMode.Open, FileAccess.Write);
        f.Write(Encoding.UTF8.GetBytes(after));
    }

    [Fact]
    public async Task ListMessages_OfASettledSession_ReusesParsedFiles_AndSeesAnInPlaceRewriteOfTheSameSize()
    {
        using var h = new StoreHarness();
        string sid = await SettledSessionAsync(h);
        var first = h.Store.ListMessages(sid);
        var second = h.Store.ListMessages(sid);
        Assert.Same(first[0].Info, second[0].Info); // kept: a stat, not a parse
        Assert.Same(first[3].Parts[0], second[3].Parts[0]);

        // OpenCode rewrites a file in place (no rename), so only the file's own mtime says it changed; the size is the
        // same here, and the folder's mtime is untouched.
        string partFile = h.Store.Layout.PartFile(Id(first[3].Info), Id(first[3].Parts[0]));
        var folderMtime = Directory.GetLastWriteTimeUtc(h.Store.Layout.PartDir(Id(first[3].Info)));
        RewriteInPlace(partFile, "message number 3", "message NUMBER 3");
        File.SetLastWriteTimeUtc(partFile, DateTime.UtcNow - TimeSpan.FromMinutes(30)); // settled again, another mtime
        Assert.Equal(folderMtime, Directory.GetLastWriteTimeUtc(h.Store.Layout.PartDir(Id(first[3].Info))));

        var third = h.Store.ListMessages(sid);
        Assert.Equal("message NUMBER 3", (string?)third[3].Parts[0]["text"]);
        Assert.Equal(Uncached(h, sid), Text(third));
        Assert.Same(second[0].Info, third[0].Info); // the unchanged files stay kept
    }

    [Fact]
    public async Task ListMessages_SeesAFreshRewriteWithTheSameSize_EvenWithinTheSameMtimeTick()
    {
        using var h = new StoreHarness();
        string sid = await SettledSessionAsync(h);
        string file = h.Store.Layout.MessageFile(sid, Id(h.Store.ListMessages(sid)[1].Info));

        // Written now: too young to trust, so every read parses it again until it settles, whatever its mtime says.
        RewriteInPlace(file, "\"agent\": \"build\"", "\"agent\": \"plan!\"");
        var stamp = File.GetLastWriteTimeUtc(file);
        Assert.Equal("plan!", (string?)h.Store.ListMessages(sid)[1].Info["agent"]);
        RewriteInPlace(file, "\"agent\": \"plan!\"", "\"agent\": \"lint!\"");
        File.SetLastWriteTimeUtc(file, stamp); // the same mtime and size as the read before
        Assert.Equal("lint!", (string?)h.Store.ListMessages(sid)[1].Info["agent"]);
        Assert.Equal(Uncached(h, sid), Text(h.Store.ListMessages(sid)));
    }

    [Fact]
    public async Task ListMessages_SeesMessagesAndPartsAnotherWriterAddsAndRemoves()
    {
        using var h = new StoreHarness();
        string sid = await SettledSessionAsync(h);
        var before = h.Store.ListMessages(sid);

        // Another sidecar on the same data dir writes a part and a message (atomic renames: the folders change).
        var other = h.NewStore();
        string mid = Id(before[3].Info);
        var added = await other.UpdatePartAsync(Samples.Text(sid, mid, "from the other window"), null, default);
        var message = await other.UpdateMessageAsync(Samples.User(sid, 1795468799999), default);
        var listed = h.Store.ListMessages(sid);
        Assert.Equal(5, listed.Count);
        Assert.Equal(Id(message), Id(listed[4].Info));
        Assert.Contains(listed[3].Parts, p => Id(p) == Id(added));
        Assert.Equal(Uncached(h, sid), Text(listed));

        await other.RemovePartAsync(sid, mid, Id(added), default);
        await other.RemoveMessageAsync(sid, Id(message), default);
        var after = h.Store.ListMessages(sid);
        Assert.Equal(4, after.Count);
        Assert.DoesNotContain(after[3].Parts, p => Id(p) == Id(added));
        Assert.Equal(Text(before), Text(after));
    }

    [Fact]
    public async Task ForkAndSanitizedExport_CloneWhatTheyChange_SoTheCachedSourceStaysAsOnDisk()
    {
        using var h = new StoreHarness();
        string sid = await SettledSessionAsync(h, messages: 6);
        string listed = Text(h.Store.ListMessages(sid)); // warm: the fork and the export below read the kept objects
        string export = await SessionExporter.ExportToStringAsync(h.Store, sid, new ExportOptions(), default);

        var fork = new ForkService(h.Store);
        var first = await fork.ForkAsync(sid, null, false, default);
        var second = await fork.ForkAsync(sid, null, false, default);
        _ = await SessionExporter.ExportToStringAsync(h.Store, sid, new ExportOptions(Sanitize: true), default);

        Assert.Equal(listed, Text(h.Store.ListMessages(sid)));
        Assert.Equal(Uncached(h, sid), Text(h.Store.ListMessages(sid)));
        Assert.Equal(export, await SessionExporter.ExportToStringAsync(h.Store, sid, new ExportOptions(), default));

        // Each fork has its own ids and the source's content, part for part.
        foreach (var f in new[] { first, second })
        {
            var copy = h.Store.ListMessages(Id(f));
            var source = h.Store.ListMessages(sid);
            Assert.Equal(source.Count, copy.Count);
            for (int i = 0; i < copy.Count; i++)
            {
                Assert.Equal(Id(f), (string?)copy[i].Info["sessionID"]);
                Assert.NotEqual(Id(source[i].Info), Id(copy[i].Info));
                Assert.Equal((string?)source[i].Parts[0]["text"], (string?)copy[i].Parts[0]["text"]);
                Assert.Equal(Id(copy[i].Info), (string?)copy[i].Parts[0]["messageID"]);
            }
        }
    }

    [Fact]
    public async Task ReadMessageInfosAndReadParts_StillHandOutPrivateCopies()
    {
        using var h = new StoreHarness();
        string sid = await SettledSessionAsync(h);
        string listed = Text(h.Store.ListMessages(sid));
        var infos = h.Store.ReadMessageInfos(sid);
        infos[0]["agent"] = "changed by a caller";
        h.Store.ReadParts(Id(infos[1]))[0]["text"] = "changed by a caller";
        Assert.Equal(listed, Text(h.Store.ListMessages(sid)));
    }

    [Fact]
    public async Task TheCache_StaysUnderItsByteCap_AndNeverKeepsAHugePart()
    {
        using var h = new StoreHarness();
        string sid = await SettledSessionAsync(h, messages: 40);
        string mid = Id(h.Store.ListMessages(sid)[39].Info);
        int huge = (int)h.Store.ReadCache.MaxFileBytes + 1000;
        await h.Store.UpdatePartAsync(Samples.Text(sid, mid, new string('x', huge)), null, default);
        Backdate(h, sid, TimeSpan.FromHours(1));

        // The default store: everything small is kept, the huge part never is.
        var a = h.Store.ListMessages(sid);
        var b = h.Store.ListMessages(sid);
        Assert.Same(a[0].Parts[0], b[0].Parts[0]);
        var hugeA = a[39].Parts.Single(p => ((string?)p["text"])!.Length == huge);
        var hugeB = b[39].Parts.Single(p => ((string?)p["text"])!.Length == huge);
        Assert.NotSame(hugeA, hugeB);
        Assert.True(h.Store.ReadCache.KeptBytes < huge);

        // A small cap: reading more than it holds keeps at most the cap, and every answer is still whole and right.
        long cap = 4096;
        var small = new SessionStore(h.Store.Layout, readCacheBytes: cap);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(Uncached(h, sid), Text(small.ListMessages(sid)));
            Assert.InRange(small.ReadCache.KeptBytes, 1, cap);
        }
    }
}
