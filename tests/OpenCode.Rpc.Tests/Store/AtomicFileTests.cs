using System.Text;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Store;

public sealed class AtomicFileTests
{
    [Fact]
    public void Write_CreatesFoldersAndReplacesTheFile_LeavingNoTempBehind()
    {
        using var dirs = new TestDirs();
        string target = Path.Combine(dirs.Root, "a", "b", "c.json");
        AtomicFile.Write(target, "{\"v\":1}"u8);
        AtomicFile.Write(target, "{\"v\":2}"u8);
        for (int i = 0; i < 20; i++)
        {
            AtomicFile.Write(target, Encoding.UTF8.GetBytes($"{{\"v\":{i}}}"));
        }

        Assert.Equal("{\"v\":19}", File.ReadAllText(target));
        Assert.Equal(["c.json"], Directory.GetFiles(Path.GetDirectoryName(target)!).Select(Path.GetFileName));
    }

    [Fact]
    public void WriteAll_ReplacesEveryFile_InNewFolders_LeavingNoTempBehind()
    {
        using var dirs = new TestDirs();
        string a = Path.Combine(dirs.Root, "x", "a.json");
        string b = Path.Combine(dirs.Root, "y", "z", "b.json");
        File.WriteAllText(Directory.CreateDirectory(Path.GetDirectoryName(a)!).FullName + "/a.json", "old");
        AtomicFile.WriteAll([(a, "{\"a\":1}"u8.ToArray()), (b, "{\"b\":2}"u8.ToArray())]);
        Assert.Equal("{\"a\":1}", File.ReadAllText(a));
        Assert.Equal("{\"b\":2}", File.ReadAllText(b));
        Assert.Empty(Directory.GetFiles(dirs.Root, "*" + AtomicFile.TempSuffix, SearchOption.AllDirectories));
    }

    [Fact]
    public void WriteAll_ReturnsEachFilesOwnMtime_AsTheJournalRecordsIt()
    {
        using var dirs = new TestDirs();
        var files = Enumerable.Range(0, 5).Select(i => (Path.Combine(dirs.Root, "m", $"f{i}.json"), Encoding.UTF8.GetBytes($"{{\"i\":{i}}}"))).ToList();
        long[] stamps = AtomicFile.WriteAll(files, durable: false);
        for (int i = 0; i < files.Count; i++)
        {
            Assert.Equal(File.GetLastWriteTimeUtc(files[i].Item1).Ticks, stamps[i]);
        }
    }

    [Fact]
    public void Exchange_ReplacesAnExistingFile_AndRemovesTheOldContentUnderTheTempName()
    {
        Assert.True(OperatingSystem.IsLinux(), "the store's fast replace is Linux's renameat2");
        using var dirs = new TestDirs();
        string target = Path.Combine(dirs.Root, "s.json");
        File.WriteAllText(target, "old");
        long oldInode = Inode(target);
        string tmp = AtomicFile.TempName(target);
        File.WriteAllText(tmp, "new");
        long newInode = Inode(tmp);

        Assert.True(Native.TryExchange(tmp, target));
        Assert.Equal("new", File.ReadAllText(target));
        Assert.Equal(newInode, Inode(target)); // the temp file itself, moved, as a rename would
        Assert.NotEqual(oldInode, newInode);
        Assert.Equal(["s.json"], Directory.GetFiles(dirs.Root).Select(Path.GetFileName));
    }

    [Fact]
    public void Exchange_RefusesAMissingTargetOrAFolder_AndChangesNothing()
    {
        using var dirs = new TestDirs();
        string tmp = AtomicFile.TempName(Path.Combine(dirs.Root, "n.json"));
        File.WriteAllText(tmp, "new");
        Assert.False(Native.TryExchange(tmp, Path.Combine(dirs.Root, "n.json")));
        Assert.Equal("new", File.ReadAllText(tmp));
        Assert.False(File.Exists(Path.Combine(dirs.Root, "n.json")));

        string folder = Directory.CreateDirectory(Path.Combine(dirs.Root, "f.json")).FullName;
        File.WriteAllText(Path.Combine(folder, "inside"), "kept");
        Assert.False(Native.TryExchange(tmp, folder));
        Assert.Equal("new", File.ReadAllText(tmp));
        Assert.Equal("kept", File.ReadAllText(Path.Combine(folder, "inside")));

        // And through AtomicFile: a folder in the way fails the write as a rename does, and leaves no temp.
        Assert.ThrowsAny<IOException>(() => AtomicFile.WriteAll([(folder, "x"u8.ToArray())], durable: false));
        Assert.True(Directory.Exists(folder));
        Assert.Single(Directory.GetFiles(dirs.Root, "*" + AtomicFile.TempSuffix));
    }

    [Fact]
    public async Task AReader_NeverFindsAJournalledFileMissingOrPartial_WhileItIsReplaced()
    {
        using var dirs = new TestDirs();
        string target = Path.Combine(dirs.Root, "p.json");
        var versions = Enumerable.Range(0, 4).Select(i => Encoding.UTF8.GetBytes(new string((char)('a' + i), 5_000))).ToArray();
        AtomicFile.Write(target, versions[0], durable: false);
        using var stop = new CancellationTokenSource();
        int reads = 0;
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                byte[] seen = File.ReadAllBytes(target); // throws if the name is ever missing
                Assert.Contains(versions, v => v.AsSpan().SequenceEqual(seen));
                reads++;
            }
        });
        for (int i = 0; i < 2_000; i++)
        {
            AtomicFile.WriteAll([(target, versions[i % versions.Length])], durable: false);
        }

        await stop.CancelAsync();
        await reader;
        Assert.True(reads > 0);
        Assert.Single(Directory.GetFiles(dirs.Root));
    }

    private static long Inode(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        string output = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return long.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void OwnFolders_Create_MakesEveryMissingFolderOutermostFirst_AndMarksOnlyThose()
    {
        using var dirs = new TestDirs();
        string existing = Directory.CreateDirectory(Path.Combine(dirs.Root, "have")).FullName;
        string deep = Path.Combine(existing, "a", "b", "c");
        var made = OwnFolders.Create(deep);
        Assert.Equal([Path.Combine(existing, "a"), Path.Combine(existing, "a", "b"), deep], made);
        Assert.True(Directory.Exists(deep));
        Assert.All(made, d => Assert.True(OwnFolders.Take(d)));
        Assert.False(OwnFolders.Take(existing));
        Assert.Empty(OwnFolders.Create(deep)); // already there: nothing made, nothing marked
        Assert.False(OwnFolders.Take(deep));
    }

    [Fact]
    public void OwnFolders_Create_UnderAFile_Fails_AndMarksNothing()
    {
        using var dirs = new TestDirs();
        string blocker = Path.Combine(dirs.Root, "blocker");
        File.WriteAllText(blocker, "a file");
        string dir = Path.Combine(blocker, "sub");
        Assert.ThrowsAny<IOException>(() => OwnFolders.Create(dir));
        Assert.False(OwnFolders.Take(dir));
    }

    [Fact]
    public void WriteAll_ThatFailsOnALaterFile_LeavesTheEarlierFilesUntouched_AndNoTemp()
    {
        using var dirs = new TestDirs();
        string a = Path.Combine(dirs.Root, "a.json");
        File.WriteAllText(a, "old");
        // A folder where the second file should go makes its temp write fail before any rename happens.
        string blocker = Path.Combine(dirs.Root, "blocker");
        File.WriteAllText(blocker, "a file, not a folder");
        Assert.ThrowsAny<IOException>(() => AtomicFile.WriteAll([(a, "new"u8.ToArray()), (Path.Combine(blocker, "b.json"), "b"u8.ToArray())]));
        Assert.Equal("old", File.ReadAllText(a));
        Assert.Empty(Directory.GetFiles(dirs.Root, "*" + AtomicFile.TempSuffix, SearchOption.AllDirectories));
    }

    [Fact]
    public async Task ConcurrentWritersToOneFile_LeaveOneWholeVersion_AndNoTemp()
    {
        using var dirs = new TestDirs();
        string target = Path.Combine(dirs.Root, "x.json");
        var payloads = Enumerable.Range(0, 8).Select(i => Encoding.UTF8.GetBytes(new string((char)('a' + i), 100_000))).ToArray();
        await Task.WhenAll(payloads.Select(p => Task.Run(() =>
        {
            for (int k = 0; k < 10; k++)
            {
                AtomicFile.Write(target, p, durable: false);
            }
        })));
        Assert.Contains(payloads, p => p.AsSpan().SequenceEqual(File.ReadAllBytes(target)));
        Assert.Single(Directory.GetFiles(dirs.Root));
    }

    [Fact]
    public void CleanStaleTemps_RemovesOldTemps_KeepsFreshTempsAndData()
    {
        using var dirs = new TestDirs();
        string dir = Path.Combine(dirs.Storage, "session", "global");
        Directory.CreateDirectory(dir);
        string stale = Path.Combine(dir, "ses_a.json.123.abc" + AtomicFile.TempSuffix);
        string fresh = Path.Combine(dir, "ses_b.json.456.def" + AtomicFile.TempSuffix);
        string data = Path.Combine(dir, "ses_c.json");
        File.WriteAllText(stale, "{");
        File.WriteAllText(fresh, "{");
        File.WriteAllText(data, "{}");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - AtomicFile.StaleTempAge - TimeSpan.FromMinutes(1));
        File.SetLastWriteTimeUtc(data, DateTime.UtcNow - TimeSpan.FromDays(30));

        Assert.Equal(1, AtomicFile.CleanStaleTemps(dirs.Storage));
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(fresh));
        Assert.True(File.Exists(data));
    }

    [Fact]
    public async Task TheTempSweep_RemovesStaleTemps_AtMostOncePerInterval_AndListingIgnoresTemps()
    {
        using var dirs = new TestDirs();
        var warnings = new List<string>();
        var store = new SessionStore(new StoreLayout(dirs.DataDir), warn: warnings.Add);
        store.Initialize();
        var project = ProjectResolver.Resolve(dirs.ProjectDir);
        var s = await store.CreateSessionAsync(project, "real", null, default);
        string dir = store.Layout.SessionDir(project.Id);
        string stale = Path.Combine(dir, "ses_zz.json.1.a" + AtomicFile.TempSuffix);
        string fresh = Path.Combine(dir, "ses_yy.json.1.b" + AtomicFile.TempSuffix);
        File.WriteAllText(stale, "{\"id\":\"ses_zz\"");
        File.WriteAllText(fresh, "{\"id\":\"ses_yy\"");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - TimeSpan.FromHours(1));

        var second = new SessionStore(new StoreLayout(dirs.DataDir), warn: warnings.Add);
        second.Initialize();
        Assert.True(File.Exists(stale)); // initialize costs the same on any store: no walk of every folder
        var listed = second.ListSessions(project.Id, new SessionListQuery());
        Assert.Equal([(string)s["id"]!], listed.Select(x => (string)x["id"]!));

        Assert.Equal(1, second.SweepStaleTemps(SessionStore.TempSweepInterval));
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(fresh));
        Assert.Contains(warnings, w => w.Contains("stale temp", StringComparison.Ordinal));

        // Within the interval the walk is skipped; with none it runs.
        File.WriteAllText(stale, "{");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - TimeSpan.FromHours(1));
        Assert.Equal(0, second.SweepStaleTemps(SessionStore.TempSweepInterval));
        Assert.True(File.Exists(stale));
        Assert.Equal(1, second.SweepStaleTemps(TimeSpan.Zero));
    }

    [Fact]
    public async Task AServer_SweepsStaleTempsInTheBackground_AfterAnsweringInitialize()
    {
        using var dirs = new TestDirs();
        string dir = Path.Combine(dirs.Storage, "part", "msg_1");
        Directory.CreateDirectory(dir);
        string stale = Path.Combine(dir, "prt_1.json.1.a" + AtomicFile.TempSuffix);
        File.WriteAllText(stale, "{");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - TimeSpan.FromHours(1));

        await using var server = await ProcessServer.StartAsync(dirs);
        Assert.True(await Poll.UntilAsync(() => !File.Exists(stale)));
    }

    [Fact]
    public async Task AServerStartingAfterAKilledOne_SweepsAtOnce_EvenWithinTheDailyInterval()
    {
        using var dirs = new TestDirs();
        string stale;
        await using (var first = await ProcessServer.StartAsync(dirs))
        {
            string sid = await Conversation.NewSessionAsync(first, "killed");
            await Conversation.TurnAsync(first, sid, 1_700_000_000_000, "ask", "answer"); // journalled writes
            string marker = Path.Combine(dirs.DataDir, "opencode-rpc", "temp-sweep");
            Assert.True(await Poll.UntilAsync(() => File.Exists(marker))); // the daily sweep ran: the next start's is due only because of the kill
            stale = Path.Combine(dirs.Storage, "message", sid, "msg_x.json.1.a" + AtomicFile.TempSuffix);
            File.WriteAllText(stale, "{");
            File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - TimeSpan.FromHours(1));
            first.Process.Kill();
            await first.Process.WaitForExitAsync();
        }

        await using var second = await ProcessServer.StartAsync(dirs);
        Assert.True(await Poll.UntilAsync(() => !File.Exists(stale)));
    }

    [Fact]
    public void BulkWriter_ShowsNothingInStorageBeforeFlush_ThenEveryFileAtOnce()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string existing = Path.Combine(layout.Storage, "message", "ses_a");
        Directory.CreateDirectory(existing);
        var bulk = new BulkWriter(layout);
        string inNewFolder = layout.PartFile("msg_000000000001AAAAAAAAAAAAAA", "prt_000000000001AAAAAAAAAAAAAA");
        string inOldFolder = Path.Combine(existing, "msg_000000000001AAAAAAAAAAAAAA.json");
        bulk.WriteEach(new[] { inNewFolder, inOldFolder }, (f, w) => w.Write(f, "{}"u8), default);

        // Nothing with a .json name exists in storage/ yet: a kill here leaves no empty or short data file.
        Assert.Empty(Directory.GetFiles(layout.Storage, "*.json", SearchOption.AllDirectories));
        bulk.Flush();
        Assert.Equal("{}", File.ReadAllText(inNewFolder));
        Assert.Equal("{}", File.ReadAllText(inOldFolder));
        Assert.Empty(Directory.GetFiles(layout.Storage, "*" + AtomicFile.TempSuffix, SearchOption.AllDirectories));
        Assert.False(Directory.Exists(layout.StagingDir) && Directory.EnumerateFileSystemEntries(layout.StagingDir).Any());
    }

    [Fact]
    public void BulkWriter_Rollback_RemovesWhatItPublished_AndKeepsWhatWasThere()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string keep = Path.Combine(layout.Storage, "message", "ses_a", "msg_old.json");
        Directory.CreateDirectory(Path.GetDirectoryName(keep)!);
        File.WriteAllText(keep, "{}");
        var bulk = new BulkWriter(layout);
        string fresh = layout.PartFile("msg_000000000001AAAAAAAAAAAAAA", "prt_000000000001AAAAAAAAAAAAAA");
        bulk.Write(fresh, "{}"u8);
        bulk.Write(Path.Combine(Path.GetDirectoryName(keep)!, "msg_new.json"), "{}"u8);
        bulk.Flush();
        bulk.Rollback();
        Assert.False(Directory.Exists(Path.GetDirectoryName(fresh)));
        Assert.Equal(["msg_old.json"], Directory.GetFiles(Path.GetDirectoryName(keep)!).Select(Path.GetFileName));
    }

    [Fact]
    public void StaleStagingFolders_AreRemovedAtStart_FreshOnesKept()
    {
        using var dirs = new TestDirs();
        var layout = new StoreLayout(dirs.DataDir);
        string stale = Directory.CreateDirectory(Path.Combine(layout.StagingDir, "1-dead", "1")).Parent!.FullName;
        string fresh = Directory.CreateDirectory(Path.Combine(layout.StagingDir, "2-live")).FullName;
        File.WriteAllText(Path.Combine(stale, "1", "prt_x.json"), "");
        Directory.SetLastWriteTimeUtc(stale, DateTime.UtcNow - AtomicFile.StaleTempAge - TimeSpan.FromMinutes(1));
        new SessionStore(layout).Initialize();
        Assert.False(Directory.Exists(stale));
        Assert.True(Directory.Exists(fresh));
    }

    [Fact]
    public void Delete_MissingFileIsFine()
    {
        using var dirs = new TestDirs();
        Assert.False(AtomicFile.Delete(Path.Combine(dirs.Root, "nope.json")));
        string f = Path.Combine(dirs.Root, "yes.json");
        File.WriteAllText(f, "{}");
        Assert.True(AtomicFile.Delete(f));
        Assert.False(File.Exists(f));
    }
}
