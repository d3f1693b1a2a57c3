using System.Text;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Store;

/// <summary>
/// The write journal behind <c>message/update</c> and <c>part/update</c>. A crash of the machine (a lost page cache)
/// cannot be produced in a test, so these tests produce its result instead: the journal's owner is abandoned without a
/// checkpoint (what SIGKILL does), the files are put back in the states a lost page cache can leave them in (missing,
/// older, empty), and recovery runs with a different boot id, as after the reboot.
/// </summary>
public sealed class WriteJournalTests
{
    private const string BootA = "boot-a";
    private const string BootB = "boot-b";

    [Fact]
    public void AJournalledWrite_IsVisibleAtOnce_AndItsRecordIsInTheJournal_UntilACheckpoint()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        using var journal = new WriteJournal(layout, bootId: BootA);
        string a = Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json");
        string b = Path.Combine(layout.Storage, "session", "p", "ses_1.json");
        journal.Write([(a, "{\"a\":1}"u8.ToArray()), (b, "{\"b\":2}"u8.ToArray())]);

        Assert.Equal("{\"a\":1}", File.ReadAllText(a));
        Assert.Equal("{\"b\":2}", File.ReadAllText(b));
        Assert.Equal(["storage/message/ses_1/msg_1.json", "storage/session/p/ses_1.json"], Records(layout).Select(r => r.Rel));
        Assert.Empty(Directory.GetFiles(layout.Storage, "*" + AtomicFile.TempSuffix, SearchOption.AllDirectories));

        journal.Checkpoint();
        Assert.Empty(Records(layout));
        Assert.Equal("{\"a\":1}", File.ReadAllText(a));
    }

    [Fact]
    public void AfterAReboot_RecoveryWritesBackWhatTheCrashLost_AndLeavesLaterWritesAlone()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string created = Path.Combine(layout.Storage, "part", "msg_1", "prt_1.json");
        string replaced = Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json");
        string emptied = Path.Combine(layout.Storage, "message", "ses_1", "msg_2.json");
        string rewritten = Path.Combine(layout.Storage, "message", "ses_1", "msg_3.json");
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(created, "{\"part\":1}"u8.ToArray())]);
        journal.Write([(replaced, "{\"v\":\"old\"}"u8.ToArray())]);
        journal.Write([(replaced, "{\"v\":\"new\"}"u8.ToArray())]); // the last write of a path is the one that counts
        journal.Write([(emptied, "{\"m\":2}"u8.ToArray())]);
        journal.Write([(rewritten, "{\"m\":3}"u8.ToArray())]);
        var emptiedStamp = File.GetLastWriteTimeUtc(emptied);
        journal.Abandon();

        // What a lost page cache leaves: a create that never reached the disk, the previous version of a file, a file
        // whose rename reached the disk but not its data. And one file another program replaced after our write.
        File.Delete(created);
        File.WriteAllText(replaced, "{\"v\":\"before\"}");
        File.SetLastWriteTimeUtc(replaced, emptiedStamp.AddSeconds(-10));
        File.WriteAllText(emptied, "");
        File.SetLastWriteTimeUtc(emptied, emptiedStamp);
        File.WriteAllText(rewritten, "{\"m\":\"theirs\"}");
        File.SetLastWriteTimeUtc(rewritten, DateTime.UtcNow.AddSeconds(5));

        int restored = WriteJournal.Recover(layout, bootId: BootB);

        Assert.Equal(3, restored);
        Assert.Equal("{\"part\":1}", File.ReadAllText(created));
        Assert.Equal("{\"v\":\"new\"}", File.ReadAllText(replaced));
        Assert.Equal("{\"m\":2}", File.ReadAllText(emptied));
        Assert.Equal("{\"m\":\"theirs\"}", File.ReadAllText(rewritten));
        Assert.Empty(Directory.GetDirectories(WriteJournal.JournalRoot(layout)));
    }

    [Fact]
    public void InTheSameBoot_ADeadProcesssJournal_IsRemovedWithoutWritingAnything()
    {
        // A killed process loses nothing (its renames are in the kernel), so a replay could only undo what others
        // wrote since; here the "lost" file stands for such a change and must stay as it is.
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string file = Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json");
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(file, "{\"v\":1}"u8.ToArray())]);
        journal.Abandon();
        File.Delete(file);

        Assert.Equal(0, WriteJournal.Recover(layout, bootId: BootA));
        Assert.False(File.Exists(file));
        Assert.Empty(Directory.GetDirectories(WriteJournal.JournalRoot(layout)));
    }

    [Fact]
    public void ALiveJournal_IsLeftAlone_ByAnotherStoresRecovery()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string file = Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json");
        using var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(file, "{\"v\":1}"u8.ToArray())]);
        File.Delete(file);

        Assert.Equal(0, WriteJournal.Recover(layout, bootId: BootB));
        Assert.False(File.Exists(file));
        Assert.Single(Records(layout));
    }

    [Fact]
    public void ATornLastRecord_IsIgnored_AndTheRecordsBeforeItAreReplayed()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string first = Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json");
        string torn = Path.Combine(layout.Storage, "message", "ses_1", "msg_2.json");
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(first, "{\"v\":1}"u8.ToArray())]);
        journal.Write([(torn, "{\"v\":2}"u8.ToArray())]);
        journal.Abandon();
        string segment = Segments(layout).Single();
        // The power went during the second append, before the flush that acknowledged it: its last bytes never
        // reached the disk (the segment is preallocated with zeros, so they read as zeros).
        byte[] bytes = File.ReadAllBytes(segment);
        int last = Array.FindLastIndex(bytes, b => b != 0);
        Array.Clear(bytes, last - 2, 3);
        File.WriteAllBytes(segment, bytes);

        File.Delete(first);
        File.Delete(torn);

        Assert.Equal(1, WriteJournal.Recover(layout, bootId: BootB));
        Assert.Equal("{\"v\":1}", File.ReadAllText(first));
        Assert.False(File.Exists(torn));
    }

    [Fact]
    public void ARecordForAPathOutsideStorage_IsNeverReplayed()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string outside = Path.Combine(layout.DataDir, "elsewhere.json");
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(outside, "{}"u8.ToArray())]);
        journal.Abandon();
        File.Delete(outside);

        var warnings = new List<string>();
        Assert.Equal(0, WriteJournal.Recover(layout, warnings.Add, bootId: BootB));
        Assert.False(File.Exists(outside));
        Assert.Contains(warnings, w => w.Contains("outside storage/", StringComparison.Ordinal));
    }

    [Fact]
    public void AfterACheckpoint_ARemovedFile_DoesNotComeBackOnReplay()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string file = Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json");
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(file, "{\"v\":1}"u8.ToArray())]);
        journal.Checkpoint();
        File.Delete(file);
        journal.Abandon();

        Assert.Equal(0, WriteJournal.Recover(layout, bootId: BootB));
        Assert.False(File.Exists(file));
    }

    [Fact]
    public async Task TheStore_JournalsMessageAndPartWrites_AndCheckpointsBeforeItRemovesAMessage()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        var (store, sid, mid) = await StoreWithATurnAsync(dirs, layout);

        var written = Records(layout).Select(r => r.Rel).ToList();
        Assert.Contains($"storage/message/{sid}/{mid}.json", written);
        Assert.Contains(written, r => r.StartsWith($"storage/part/{mid}/", StringComparison.Ordinal));
        Assert.Contains(written, r => r.StartsWith("storage/session/", StringComparison.Ordinal)); // the time.updated touch

        await store.RemoveMessageAsync(sid, mid, CancellationToken.None);
        Assert.DoesNotContain(Records(layout), r => r.Rel.Contains(mid, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ASidecarThatExits_LeavesNoJournal_AndOneThatIsKilled_HasItsJournalRemovedByTheNextStart()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string sid;
        string user;
        await using (var first = await ProcessServer.StartAsync(dirs))
        {
            sid = await Conversation.NewSessionAsync(first, "journalled");
            (user, _) = await Conversation.TurnAsync(first, sid, 1_700_000_000_000, "ask", "answer");
            Assert.NotEmpty(Directory.GetDirectories(WriteJournal.JournalRoot(layout)));
            Assert.Equal(0, await first.CloseAndWaitAsync());
        }

        Assert.Empty(Directory.GetDirectories(WriteJournal.JournalRoot(layout))); // checkpointed and removed at exit

        await using (var second = await ProcessServer.StartAsync(dirs))
        {
            await Conversation.TurnAsync(second, sid, 1_700_000_010_000, "ask again", "answer again");
            second.Process.Kill();
            await second.Process.WaitForExitAsync();
        }

        Assert.NotEmpty(Directory.GetDirectories(WriteJournal.JournalRoot(layout)));
        await using (var third = await ProcessServer.StartAsync(dirs))
        {
            // Same boot: nothing was lost, so the dead journal is dropped, not replayed; every acknowledged write is there.
            Assert.Empty(Directory.GetDirectories(WriteJournal.JournalRoot(layout)));
            var messages = await third.CallAsync(Methods.MessageList, new { sessionID = sid });
            Assert.Equal(4, messages.GetArrayLength());
            Assert.Contains(messages.EnumerateArray(), m => m.GetProperty("info").GetProperty("id").GetString() == user);
        }
    }

    [Fact]
    public void ABulkCommit_IsOneJournalledBatch_WithTheGateLast_AndWhatACrashLostComesBackAfterTheReboot()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string existingDir = Path.Combine(layout.Storage, "message", "ses_a");
        Directory.CreateDirectory(existingDir);
        string kept = Path.Combine(existingDir, "msg_old.json");
        File.WriteAllText(kept, "{\"mine\":1}");
        var journal = new WriteJournal(layout, bootId: BootA);
        var bulk = new BulkWriter(layout, journal);
        string part = layout.PartFile("msg_000000000001AAAAAAAAAAAAAA", "prt_000000000001AAAAAAAAAAAAAA");
        string message = Path.Combine(existingDir, "msg_new.json");
        string origin = Path.Combine(layout.SideDir, "forks", "ses_a.json");
        string share = Path.Combine(layout.SideDir, "share-deletes", "x.json");
        bulk.WriteEach(new[] { part, message }, (f, w) => w.Write(f, Encoding.UTF8.GetBytes($"{{\"f\":\"{Path.GetFileName(f)}\"}}")), default);
        bulk.WriteNew(kept, "{\"theirs\":1}"u8.ToArray()); // a re-import keeps what is there, and journals nothing of it
        bulk.Write(origin, "{\"o\":1}"u8.ToArray());
        bulk.Write(share, "{\"s\":1}"u8.ToArray()); // no replay may write here: written durably by itself
        string gate = layout.SessionFile("p", "ses_a");
        bulk.Commit(gate, "{\"id\":\"ses_a\"}"u8.ToArray());

        Assert.Equal("{\"f\":\"prt_000000000001AAAAAAAAAAAAAA.json\"}", File.ReadAllText(part));
        Assert.Equal("{\"f\":\"msg_new.json\"}", File.ReadAllText(message));
        Assert.Equal("{\"mine\":1}", File.ReadAllText(kept));
        Assert.Equal("{\"o\":1}", File.ReadAllText(origin));
        Assert.Equal("{\"s\":1}", File.ReadAllText(share));
        var records = Records(layout);
        Assert.Equal(Rel(layout, gate), records[^1].Rel);
        Assert.Equal([Rel(layout, origin), Rel(layout, message), Rel(layout, part)], records.SkipLast(1).Select(r => r.Rel).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetFiles(layout.Storage, "*" + AtomicFile.TempSuffix, SearchOption.AllDirectories));

        // The machine crashes: the part's data never reached the disk, the message's and the gate's renames neither.
        long stamp = records[^1].Stamp;
        journal.Abandon();
        File.WriteAllText(part, "");
        File.SetLastWriteTimeUtc(part, new DateTime(stamp, DateTimeKind.Utc).AddSeconds(-1));
        File.Delete(message);
        File.Delete(gate);
        File.Delete(origin);

        Assert.Equal(4, WriteJournal.Recover(layout, bootId: BootB));
        Assert.Equal("{\"o\":1}", File.ReadAllText(origin));
        Assert.Equal("{\"f\":\"prt_000000000001AAAAAAAAAAAAAA.json\"}", File.ReadAllText(part));
        Assert.Equal("{\"f\":\"msg_new.json\"}", File.ReadAllText(message));
        Assert.Equal("{\"id\":\"ses_a\"}", File.ReadAllText(gate));
        Assert.Equal("{\"mine\":1}", File.ReadAllText(kept));
    }

    [Fact]
    public void ABulkCommit_OverTheJournalCap_IsMadeDurableInItsFiles_AndJournalsNothing()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        Directory.CreateDirectory(layout.Storage);
        using var journal = new WriteJournal(layout, bootId: BootA);
        var bulk = new BulkWriter(layout, journal);
        string big = layout.PartFile("msg_000000000001AAAAAAAAAAAAAA", "prt_000000000001AAAAAAAAAAAAAA");
        byte[] bytes = new byte[BulkWriter.JournalCap + 1];
        bytes.AsSpan().Fill((byte)'x');
        bulk.Write(big, bytes);
        string gate = layout.SessionFile("p", "ses_a");
        bulk.Commit(gate, "{}"u8.ToArray());

        Assert.Equal(bytes.Length, new FileInfo(big).Length);
        Assert.Equal("{}", File.ReadAllText(gate));
        Assert.Empty(Records(layout));
    }

    [Fact]
    public async Task AFork_IsCommittedThroughTheStoresJournal_WithItsSessionFileLast()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        var (store, sid, _) = await StoreWithATurnAsync(dirs, layout);
        store.BeforeRemoval(); // a checkpoint: the journal now holds only what the fork writes

        var fork = await new ForkService(store).ForkAsync(sid, null, inclusive: false, CancellationToken.None);

        string forkId = fork["id"]!.GetValue<string>();
        var rels = Records(layout).Select(r => r.Rel).ToList();
        Assert.EndsWith($"/{forkId}.json", rels[^1], StringComparison.Ordinal);
        Assert.StartsWith("storage/session/", rels[^1], StringComparison.Ordinal);
        Assert.Contains(rels, r => r.StartsWith($"storage/message/{forkId}/", StringComparison.Ordinal));
        Assert.Contains(rels, r => r.StartsWith("storage/part/", StringComparison.Ordinal));
        Assert.Single(store.ListMessages(forkId, null, null));
    }

    [Fact]
    public void AJournalHandedOffAtExit_StaysLockedForItsHelper_WhichFlushesAndRemovesIt()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string file = Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json");
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(file, "{\"a\":1}"u8.ToArray())]);
        string? handed = null;
        int helperFd = -1;
        journal.ExitHandOff = (dir, fd) =>
        {
            handed = dir;
            helperFd = Native.DupInheritable(fd); // what the helper process inherits
            return true;
        };

        journal.Dispose();

        Assert.NotNull(handed);
        Assert.True(Directory.Exists(handed));
        Assert.Single(Records(layout)); // still there: the helper has not run yet
        Assert.Equal(0, WriteJournal.Recover(layout, bootId: BootA)); // nobody else takes it: the helper holds the lock
        Assert.True(Directory.Exists(handed));

        WriteJournal.CompleteHandOff(layout, handed!, helperFd);

        Assert.False(Directory.Exists(handed));
        Assert.Equal("{\"a\":1}", File.ReadAllText(file));
    }

    [Fact]
    public void AJournalWithNothingSinceItsCheckpoint_IsNotHandedOff_AndGoesAtExit()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json"), "{}"u8.ToArray())]);
        journal.Checkpoint();
        int calls = 0;
        journal.ExitHandOff = (_, _) => ++calls > 0;

        journal.Dispose();

        Assert.Equal(0, calls);
        Assert.Empty(Directory.GetDirectories(WriteJournal.JournalRoot(layout)));
    }

    [Fact]
    public void AHandOffThatCannotStart_FlushesInPlace_AndRemovesTheJournal()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        var journal = new WriteJournal(layout, bootId: BootA);
        journal.Write([(Path.Combine(layout.Storage, "message", "ses_1", "msg_1.json"), "{}"u8.ToArray())]);
        journal.ExitHandOff = (_, _) => throw new System.ComponentModel.Win32Exception(2, "no such program");

        journal.Dispose();

        Assert.Empty(Directory.GetDirectories(WriteJournal.JournalRoot(layout)));
    }

    [Theory]
    [InlineData("elsewhere")]
    [InlineData("data/opencode-rpc/journal/../../storage")]
    [InlineData("data/opencode-rpc/journal")]
    public void CompleteHandOff_RefusesAFolderThatIsNotOneJournal_AndRemovesNothing(string relative)
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string target = Path.Combine(dirs.Root, relative);
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.json"), "{}");

        Assert.Throws<ArgumentException>(() => WriteJournal.CompleteHandOff(layout, target, -1));
        Assert.True(File.Exists(Path.Combine(target, "keep.json")));
    }

    [Fact]
    public void ABatchThatFillsASegment_GoesIntoABareOne_AndComesBackAfterAReboot()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        var journal = new WriteJournal(layout, bootId: BootA);
        var files = Enumerable.Range(0, 3).Select(i =>
        {
            string path = Path.Combine(layout.Storage, "part", "msg_1", $"prt_{i}.json");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            byte[] bytes = new byte[1 << 20];
            bytes.AsSpan().Fill((byte)('a' + i));
            File.WriteAllBytes(path, bytes);
            return (path, bytes);
        }).ToList();

        journal.Record(files);

        var segment = Assert.Single(Segments(layout));
        long recorded = files.Sum(f => f.bytes.Length);
        Assert.InRange(new FileInfo(segment).Length, recorded, recorded + 4096); // the records, not 4 MiB of zeros first
        journal.Abandon();
        File.Delete(files[1].path);
        Assert.Equal(1, WriteJournal.Recover(layout, bootId: BootB));
        Assert.Equal(files[1].bytes, File.ReadAllBytes(files[1].path));
    }

    /// <summary>A store with one session holding a user message and its text part, written through the store.</summary>
    private static async Task<(SessionStore Store, string SessionId, string MessageId)> StoreWithATurnAsync(TestDirs dirs, StoreLayout layout)
    {
        var store = new SessionStore(layout);
        store.Initialize();
        var session = await store.CreateSessionAsync(ProjectResolver.Resolve(dirs.ProjectDir), "t", null, CancellationToken.None);
        string sid = session["id"]!.GetValue<string>();
        var message = await store.UpdateMessageAsync(
            new JsonObject { ["sessionID"] = sid, ["role"] = "user", ["time"] = new JsonObject { ["created"] = 1 }, ["agent"] = "build", ["model"] = new JsonObject { ["providerID"] = "p", ["modelID"] = "m" } },
            CancellationToken.None);
        string mid = message["id"]!.GetValue<string>();
        await store.UpdatePartAsync(new JsonObject { ["sessionID"] = sid, ["messageID"] = mid, ["type"] = "text", ["text"] = "hi" }, null, CancellationToken.None);
        return (store, sid, mid);
    }

    private static string Rel(StoreLayout layout, string path) => Path.GetRelativePath(layout.DataDir, path);

    private static List<string> Segments(StoreLayout layout) =>
        Directory.Exists(WriteJournal.JournalRoot(layout))
            ? Directory.GetFiles(WriteJournal.JournalRoot(layout), "seg-*.wal", SearchOption.AllDirectories).ToList()
            : [];

    private static List<(string Rel, long Stamp, byte[] Bytes)> Records(StoreLayout layout) =>
        Segments(layout).SelectMany(f =>
        {
            using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var buf = new byte[s.Length];
            s.ReadExactly(buf);
            return WriteJournal.Decode(buf);
        }).Select(r => (r.Rel, r.Stamp, r.Bytes)).ToList();
}
