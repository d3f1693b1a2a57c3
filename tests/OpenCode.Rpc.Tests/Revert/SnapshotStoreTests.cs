using System.Diagnostics;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Snapshots;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Revert;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SnapshotStoreTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static SnapshotStore StoreFor(TestDirs dirs, SnapshotOptions? options = null) =>
        SnapshotStore.ForProject(new StoreLayout(dirs.DataDir), ProjectResolver.Resolve(dirs.ProjectDir), options);

    [Fact]
    public async Task Track_GitProject_UsesOpenCodesShadowDir_AndNeverTouchesUserGit()
    {
        using var dirs = new TestDirs(git: true);
        var project = ProjectResolver.Resolve(dirs.ProjectDir);
        string gitDir = Path.Combine(dirs.ProjectDir, ".git");
        var before = Directory.EnumerateFiles(gitDir, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "new.txt"), "x");
        var store = StoreFor(dirs);
        string hash = await store.TrackAsync(default);
        Assert.Equal(Path.Combine(dirs.DataDir, "snapshot", project.Id), store.GitDir);
        Assert.Matches("^[0-9a-f]{40}$", hash);
        var after = Directory.EnumerateFiles(gitDir, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.All(before, kv => Assert.Equal(kv.Value, after[kv.Key]));
        Assert.Contains("autocrlf = false", File.ReadAllText(Path.Combine(store.GitDir, "config")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Track_NonGitProject_GetsItsOwnShadowRepoPerDirectory()
    {
        using var dirs = new TestDirs();
        var store = StoreFor(dirs);
        await store.TrackAsync(default);
        string expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(dirs.ProjectDir)));
        Assert.Equal(Path.Combine(dirs.DataDir, "snapshot", "global", expected), store.GitDir);
        Assert.False(Directory.Exists(Path.Combine(dirs.ProjectDir, ".git")));
    }

    [Fact]
    public async Task Track_HonoursGitignoreAndInfoExclude_AndSkipsBigUntrackedFiles()
    {
        using var dirs = new TestDirs(git: true);
        string p = dirs.ProjectDir;
        File.WriteAllText(Path.Combine(p, ".gitignore"), "*.log\n");
        File.WriteAllText(Path.Combine(p, ".git", "info", "exclude"), "secret.txt\n");
        File.WriteAllText(Path.Combine(p, "app.log"), "ignored");
        File.WriteAllText(Path.Combine(p, "secret.txt"), "excluded");
        File.WriteAllBytes(Path.Combine(p, "big.bin"), new byte[5000]);
        File.WriteAllBytes(Path.Combine(p, "tracked-big.bin"), new byte[6000]);
        RevertHarness.CommitAll(p); // tracked-big.bin and big.bin are now tracked by the user's git…
        using (var repo = new LibGit2Sharp.Repository(p))
        {
            LibGit2Sharp.Commands.Remove(repo, "big.bin", removeFromWorkingDirectory: false); // …and big.bin is untracked again
        }

        File.WriteAllText(Path.Combine(p, "small.txt"), "kept");
        var store = StoreFor(dirs, new SnapshotOptions { MaxUntrackedFileBytes = 1000 });
        using var lease = await store.AcquireAsync(default);
        string tree = await lease.TrackAsync(default);
        Assert.Null(lease.Entry(tree, "app.log"));
        Assert.Null(lease.Entry(tree, "secret.txt"));
        Assert.Null(lease.Entry(tree, "big.bin"));
        Assert.NotNull(lease.Entry(tree, "tracked-big.bin"));
        Assert.NotNull(lease.Entry(tree, "small.txt"));
    }

    [Fact]
    public async Task Track_HugeNonGitTree_FailsWithAClearError()
    {
        using var dirs = new TestDirs();
        for (int i = 0; i < 30; i++)
        {
            File.WriteAllText(Path.Combine(dirs.ProjectDir, $"f{i}.txt"), "x");
        }

        var store = StoreFor(dirs, new SnapshotOptions { MaxFiles = 20 });
        var ex = await Assert.ThrowsAsync<SnapshotTooLargeException>(() => store.TrackAsync(default));
        Assert.Equal(ErrorKind.LimitExceeded, ex.Kind);
        Assert.Contains("too large to snapshot", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lock_TwoStoresOnOneProject_TakeTurns()
    {
        using var dirs = new TestDirs(git: true);
        var a = StoreFor(dirs);
        var b = StoreFor(dirs);
        var lease = await a.AcquireAsync(default);
        var second = b.TrackAsync(default);
        await Task.Delay(500);
        Assert.False(second.IsCompleted);
        lease.Dispose();
        Assert.Matches("^[0-9a-f]{40}$", await second.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Lock_IsHeldAcrossProcesses()
    {
        using var dirs = new TestDirs(git: true);
        var store = StoreFor(dirs);
        Directory.CreateDirectory(Path.GetDirectoryName(store.LockFile)!);
        string marker = Path.Combine(dirs.Root, "locked");
        // Another process holds the lock until we delete the marker file.
        using var holder = Process.Start(new ProcessStartInfo("flock", [store.LockFile, "sh", "-c", $"touch '{marker}.held'; while [ ! -e '{marker}' ]; do sleep 0.05; done"]))!;
        while (!File.Exists(marker + ".held"))
        {
            await Task.Delay(20);
        }

        var track = store.TrackAsync(default);
        await Task.Delay(500);
        Assert.False(track.IsCompleted);
        File.WriteAllText(marker, "go");
        await holder.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Matches("^[0-9a-f]{40}$", await track.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task GitTrack_WaitsForAnIndexLockHeldByAnotherGit()
    {
        using var dirs = new TestDirs(git: true);
        var store = StoreFor(dirs, new SnapshotOptions { StatCache = false });
        await store.TrackAsync(default);
        string lockFile = Path.Combine(store.GitDir, "index.lock");
        File.WriteAllText(lockFile, string.Empty); // OpenCode's git add, mid-flight
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "changed.txt"), "a change to add");
        var track = store.TrackAsync(default);
        await Task.Delay(400);
        Assert.False(track.IsCompleted);
        File.Delete(lockFile);
        Assert.Matches("^[0-9a-f]{40}$", await track.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task WarmTrack_NeverWaitsForNorTouchesTheShadowIndex_WhileAnotherGitHoldsItsLock()
    {
        using var dirs = new TestDirs(git: true);
        var store = StoreFor(dirs);
        await store.TrackAsync(default);
        string index = Path.Combine(store.GitDir, "index");
        byte[] indexBefore = File.ReadAllBytes(index);
        string lockFile = index + ".lock";
        File.WriteAllText(lockFile, string.Empty); // OpenCode's git add, mid-flight
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "changed.txt"), "a change to add");
        string warm = await store.TrackAsync(default).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(indexBefore, File.ReadAllBytes(index));
        File.Delete(lockFile);
        var git = new SnapshotStore(Path.Combine(dirs.Root, "git-only"), store.WorkTree, Path.Combine(dirs.Root, "locks"), store.UserGitDir, store.Options with { StatCache = false });
        Assert.Equal(await git.TrackAsync(default), warm);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task WarmTrack_GivesTheSameTreeAsAFullGitAdd_AfterEveryKindOfChange(bool git, bool inotify)
    {
        using var dirs = new TestDirs(git);
        string p = dirs.ProjectDir;
        string P(string rel) => Path.Combine(p, rel);
        File.WriteAllText(P(".gitignore"), "build/\n*.log\n");
        Directory.CreateDirectory(P("src/deep"));
        for (int i = 0; i < 20; i++)
        {
            File.WriteAllText(P($"src/f{i}.txt"), $"file {i}\n");
        }

        File.WriteAllText(P("src/deep/d.txt"), "deep\n");
        string outside = Path.Combine(dirs.Root, "outside");
        Directory.CreateDirectory(Path.Combine(outside, "incoming", "sub"));
        File.WriteAllText(Path.Combine(outside, "incoming", "sub", "i.txt"), "moved in\n");
        var store = StoreFor(dirs, new SnapshotOptions { MaxUntrackedFileBytes = 3000, Inotify = inotify });
        await store.TrackAsync(default);
        var mutations = new List<(string What, Action Do)>
        {
            ("same size", () => File.WriteAllText(P("src/f1.txt"), "same size\n")),
            ("new size", () => File.WriteAllText(P("src/f2.txt"), "a longer content than before\n")),
            ("delete", () => File.Delete(P("src/f3.txt"))),
            ("chmod +x", () => File.SetUnixFileMode(P("src/f4.txt"), (UnixFileMode)0b111_101_101)),
            ("new nested folder", () => { Directory.CreateDirectory(P("new/dir")); File.WriteAllText(P("new/dir/n.txt"), "n\n"); }),
            ("ignored output", () => { Directory.CreateDirectory(P("build")); File.WriteAllText(P("build/out.o"), "o"); File.WriteAllText(P("x.log"), "log"); }),
            ("big untracked", () => File.WriteAllBytes(P("big.bin"), new byte[5000])),
            ("symlink", () => File.CreateSymbolicLink(P("link"), "src/f5.txt")),
            ("folder move", () => Directory.Move(P("src/deep"), P("moved"))),
            ("big shrinks", () => File.WriteAllBytes(P("big.bin"), new byte[10])),
            ("same size again", () => File.WriteAllText(P("src/f1.txt"), "same size again!\n")),
            ("rename", () => File.Move(P("src/f6.txt"), P("src/f6-renamed.txt"))),
            ("file becomes folder", () => { File.Delete(P("src/f7.txt")); Directory.CreateDirectory(P("src/f7.txt")); File.WriteAllText(P("src/f7.txt/inner.txt"), "inner\n"); }),
            ("folder becomes file", () => { Directory.Delete(P("new/dir"), true); File.WriteAllText(P("new/dir"), "now a file\n"); }),
            ("symlink retargeted", () => { File.Delete(P("link")); File.CreateSymbolicLink(P("link"), "src/f8.txt"); }),
            ("new file in an ignored folder", () => File.WriteAllText(P("build/more.o"), "more")),
            ("folder moved out", () => Directory.Move(P("moved"), Path.Combine(outside, "moved-out"))),
            ("folder moved in", () => Directory.Move(Path.Combine(outside, "incoming"), P("incoming"))),
            ("small new file grows past the limit", () => { File.WriteAllText(P("grow.txt"), "small\n"); }),
            ("…and grows", () => File.WriteAllBytes(P("grow.txt"), new byte[4000])),
            ("empty file", () => File.WriteAllBytes(P("empty.txt"), [])),
            (".gitignore changes", () => File.WriteAllText(P(".gitignore"), "build/\n")),
            (".gitattributes normalizes a new CRLF file", () => { File.WriteAllText(P(".gitattributes"), "*.txt text\n"); File.WriteAllText(P("crlf.txt"), "a\r\nb\r\n"); }),
            ("a change after attributes", () => File.WriteAllText(P("src/f9.txt"), "x\r\ny\r\n")),
            ("folder deleted", () => Directory.Delete(P("incoming"), true)),
        };
        if (!inotify)
        {
            // A file linked from outside and written through that link raises no event in the worktree's folders;
            // the walk sees it at once, inotify only at the model's periodic full walk (see WorktreeModel).
            mutations.Add(("a hard link made outside", () => Run("ln", P("src/f10.txt"), Path.Combine(outside, "hard.txt"))));
            mutations.Add(("written through the outside link", () => File.AppendAllText(Path.Combine(outside, "hard.txt"), "appended from outside\n")));
        }

        int round = 0;
        foreach (var (what, mutate) in mutations)
        {
            mutate();
            string warm = await store.TrackAsync(default);

            // A brand-new shadow repo with the engine off: a plain git add -A + git write-tree.
            var fresh = new SnapshotStore(Path.Combine(dirs.Root, $"fresh{round++}"), store.WorkTree, Path.Combine(dirs.Root, "locks"), store.UserGitDir, store.Options with { StatCache = false });
            string full = await fresh.TrackAsync(default);
            Assert.True(full == warm, $"after \"{what}\": git wrote {full}, the warm track {warm}");
        }

        var model = WorktreeModel.For(store);
        Assert.NotNull(model); // every change above is one the in-process engine handles itself (rules changes reload it)
        Assert.Equal(inotify, model.Watching);
        output.WriteLine($"{model.EventTracks} tracks from inotify events, {model.FullWalks} full walks, {model.FilesHashed} files hashed");
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task WarmTrack_OfOneChangedFileAmongHundreds_HashesOnlyThatFile_WithoutWalkingOrAskingGit()
    {
        using var dirs = new TestDirs(git: true);
        for (int d = 0; d < 10; d++)
        {
            Directory.CreateDirectory(Path.Combine(dirs.ProjectDir, $"d{d}"));
            for (int f = 0; f < 30; f++)
            {
                File.WriteAllText(Path.Combine(dirs.ProjectDir, $"d{d}", $"f{f}.txt"), $"{d}/{f}\n");
            }
        }

        var store = StoreFor(dirs);
        await store.TrackAsync(default);
        var model = WorktreeModel.For(store)!;
        Assert.True(model.Watching, "inotify is not available here");
        var (hashed, walks, checks, events) = (model.FilesHashed, model.FullWalks, model.IgnoreChecks, model.EventTracks);

        File.WriteAllText(Path.Combine(dirs.ProjectDir, "d3", "f7.txt"), "changed\n");
        string warm = await store.TrackAsync(default);

        Assert.Same(model, WorktreeModel.For(store));
        Assert.Equal(1, model.FilesHashed - hashed);
        Assert.Equal(0, model.FullWalks - walks);
        Assert.Equal(0, model.IgnoreChecks - checks);
        Assert.Equal(1, model.EventTracks - events);
        using var lease = await store.AcquireAsync(default);
        Assert.Equal("changed\n", System.Text.Encoding.UTF8.GetString(lease.ReadBlob(lease.Entry(warm, "d3/f7.txt")!.Oid)));

        // Nothing changed: nothing hashed, same tree.
        Assert.Equal(warm, await lease.TrackAsync(default));
        Assert.Equal(1, model.FilesHashed - hashed);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task FirstTrackAfterARestart_StartsFromTheShadowIndex_AndSeesWhatChangedMeanwhile()
    {
        using var dirs = new TestDirs(git: true);
        for (int f = 0; f < 50; f++)
        {
            // Files from an hour ago: fresher ones are "racy" (changed too close to the index write) and re-read.
            File.WriteAllText(Path.Combine(dirs.ProjectDir, $"f{f}.txt"), $"{f}\n");
            File.SetLastWriteTimeUtc(Path.Combine(dirs.ProjectDir, $"f{f}.txt"), DateTime.UtcNow.AddHours(-1));
        }

        var store = StoreFor(dirs);
        await store.TrackAsync(default);
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "f1.txt"), "warm change\n");
        await store.TrackAsync(default);

        // A new process: no model in memory; the shadow index is what git wrote at the first track.
        WorktreeModel.Reset();
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "f2.txt"), "changed while no sidecar ran\n");
        File.Delete(Path.Combine(dirs.ProjectDir, "f3.txt"));
        string restarted = await store.TrackAsync(default);
        var model = WorktreeModel.For(store);
        Assert.NotNull(model);
        Assert.Equal(1, model.FullWalks);
        Assert.True(model.FilesHashed <= 3, $"the restart re-hashed {model.FilesHashed} files, not just the changed ones");

        var git = new SnapshotStore(Path.Combine(dirs.Root, "git-only"), store.WorkTree, Path.Combine(dirs.Root, "locks"), store.UserGitDir, store.Options with { StatCache = false });
        Assert.Equal(await git.TrackAsync(default), restarted);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Restart_OnAShadowIndexOpenCodeWroteAsVersion4WithItsExtensions_StartsFromIt()
    {
        using var dirs = new TestDirs(git: true);
        for (int d = 0; d < 4; d++)
        {
            Directory.CreateDirectory(Path.Combine(dirs.ProjectDir, $"dir{d}", "sub"));
            for (int f = 0; f < 10; f++)
            {
                string path = Path.Combine(dirs.ProjectDir, $"dir{d}", f % 2 == 0 ? "sub" : ".", $"file-with-a-long-shared-prefix-{f}.txt");
                File.WriteAllText(path, $"{d}/{f}\n");
                File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours(-1));
            }
        }

        var store = StoreFor(dirs);
        await store.TrackAsync(default);

        // The newest OpenCode's settings on a shared shadow repo: index v4 (prefix-compressed paths), untracked cache.
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "dir1", "added-by-opencode.txt"), "x\n");
        foreach (var f in new[] { "dir1/added-by-opencode.txt", "README.md" })
        {
            File.SetLastWriteTimeUtc(Path.Combine(dirs.ProjectDir, f), DateTime.UtcNow.AddHours(-1)); // not racy
        }
        foreach (string[] args in (string[][])[["update-index", "--index-version", "4", "--untracked-cache"], ["-c", "core.untrackedCache=true", "add", "-A"], ["status", "--porcelain"]])
        {
            var psi = new ProcessStartInfo("git", args) { WorkingDirectory = dirs.ProjectDir, RedirectStandardError = true, RedirectStandardOutput = true };
            psi.Environment["GIT_DIR"] = store.GitDir;
            psi.Environment["GIT_WORK_TREE"] = dirs.ProjectDir;
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
        }

        Assert.Equal(4u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(File.ReadAllBytes(Path.Combine(store.GitDir, "index")).AsSpan(4)));
        WorktreeModel.Reset();
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "dir2", "sub", "file-with-a-long-shared-prefix-4.txt"), "changed after\n");
        string ours = await store.TrackAsync(default);
        var model = WorktreeModel.For(store);
        Assert.NotNull(model); // the v4 index was read, not refused
        Assert.Equal(1, model.FilesHashed); // only the file changed since git wrote the index
        var gitOnly = new SnapshotStore(Path.Combine(dirs.Root, "git-only"), store.WorkTree, Path.Combine(dirs.Root, "locks"), store.UserGitDir, store.Options with { StatCache = false });
        Assert.Equal(await gitOnly.TrackAsync(default), ours);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task FirstTrack_InProcess_IsGitsTree_InOnePack_WithAnIndexGitTrustsAsItsOwn(bool git)
    {
        using var dirs = new TestDirs(git);
        string P(string rel) => Path.Combine(dirs.ProjectDir, rel);
        File.WriteAllText(P(".gitignore"), "build/\n");
        Directory.CreateDirectory(P("build"));
        File.WriteAllText(P("build/out.o"), "ignored");
        for (int d = 0; d < 5; d++)
        {
            Directory.CreateDirectory(P($"src/d{d}"));
            for (int f = 0; f < 20; f++)
            {
                File.WriteAllText(P($"src/d{d}/f{f}.txt"), $"{d}/{f}\n");
            }
        }

        File.WriteAllText(P("run.sh"), "#!/bin/sh\n");
        File.SetUnixFileMode(P("run.sh"), (UnixFileMode)0b111_101_101);
        File.WriteAllBytes(P("empty"), []);
        File.CreateSymbolicLink(P("link"), "src/d0/f0.txt");
        foreach (var f in Directory.EnumerateFileSystemEntries(dirs.ProjectDir, "*", SearchOption.AllDirectories).Where(f => !f.Contains("/.git", StringComparison.Ordinal) && new FileInfo(f).LinkTarget is null))
        {
            File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddHours(-1)); // not racy: git may trust every entry's stat data
        }

        var store = StoreFor(dirs);
        string ours = await store.TrackAsync(default);
        var model = WorktreeModel.For(store);
        Assert.NotNull(model);
        Assert.Equal(1, model.FullWalks);

        var gitOnly = new SnapshotStore(Path.Combine(dirs.Root, "git-only"), store.WorkTree, Path.Combine(dirs.Root, "locks"), store.UserGitDir, store.Options with { StatCache = false });
        Assert.Equal(await gitOnly.TrackAsync(default), ours);

        // One pack holds every object; no loose object was written.
        string objects = Path.Combine(store.GitDir, "objects");
        Assert.Single(Directory.EnumerateFiles(Path.Combine(objects, "pack"), "pack-*.pack"));
        Assert.Single(Directory.EnumerateFiles(Path.Combine(objects, "pack"), "pack-*.idx"));
        Assert.Empty(Directory.EnumerateDirectories(objects).Where(d => Path.GetFileName(d).Length == 2).SelectMany(Directory.EnumerateFiles));

        // git reads the pack, and finds the index's stat data so clean it hashes nothing: its own add changes nothing.
        string Git(params string[] args)
        {
            var psi = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dirs.ProjectDir };
            psi.Environment["GIT_DIR"] = store.GitDir;
            psi.Environment["GIT_WORK_TREE"] = dirs.ProjectDir;
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }

            using var p = Process.Start(psi)!;
            string o = p.StandardOutput.ReadToEnd();
            string e = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"git {string.Join(' ', args)}: {e}");
            return o;
        }

        Git("fsck", "--full", "--no-dangling");
        Git("diff-files", "--quiet");
        string staged = Git("ls-files", "-s");
        Git("add", "-A");
        Assert.Equal(staged, Git("ls-files", "-s"));
        Assert.Equal(ours, Git("write-tree").Trim());
    }

    [Fact]
    public async Task InProcessDiffs_MatchTheGitCli_ForEveryKindOfChange()
    {
        using var dirs = new TestDirs(git: true);
        string P(string rel) => Path.Combine(dirs.ProjectDir, rel);
        Directory.CreateDirectory(P("src/deep"));
        File.WriteAllText(P("src/a.txt"), "one\ntwo\nthree\n");
        File.WriteAllText(P("src/b.txt"), "b\n");
        File.WriteAllText(P("src/deep/c.txt"), "c\n");
        File.WriteAllText(P("src/mode.sh"), "#!/bin/sh\n");
        File.WriteAllBytes(P("bin.dat"), [0, 1, 2, 3]);
        File.WriteAllText(P("x"), "x is a file\n");
        File.WriteAllText(P("a*b.txt"), "a star\n");
        File.WriteAllText(P("ab.txt"), "ab\n");
        File.WriteAllText(P("tolink.txt"), "a file that becomes a symlink\n");
        var store = StoreFor(dirs);
        using var lease = await store.AcquireAsync(default);
        string from = await lease.TrackAsync(default);

        File.WriteAllText(P("src/a.txt"), "one\n2\nthree\nfour\n");
        File.Delete(P("src/b.txt"));
        File.Move(P("src/deep/c.txt"), P("src/deep/renamed.txt"));
        File.SetUnixFileMode(P("src/mode.sh"), (UnixFileMode)0b111_101_101);
        File.WriteAllBytes(P("bin.dat"), [0, 9, 9]);
        File.Delete(P("x"));
        Directory.CreateDirectory(P("x"));
        File.WriteAllText(P("x/inside.txt"), "now a folder\n");
        File.WriteAllText(P("a*b.txt"), "a star, changed\n");
        File.CreateSymbolicLink(P("link"), "src/a.txt");
        File.WriteAllText(P("new.txt"), "new\n");
        File.Delete(P("tolink.txt"));
        File.CreateSymbolicLink(P("tolink.txt"), "ab.txt");
        string to = await lease.TrackAsync(default);

        string Git(params string[] args)
        {
            var psi = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.Environment["GIT_DIR"] = store.GitDir;
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }

            using var p = Process.Start(psi)!;
            string o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return o;
        }

        var names = Git("diff-tree", "-r", "-z", "--no-renames", "--name-only", from, to).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(names, await lease.ChangedAsync(from, to, default));

        var status = Git("diff-tree", "-r", "-z", "--no-renames", "--name-status", from, to).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var numstat = Git("diff-tree", "-r", "-z", "--no-renames", "--numstat", from, to).Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(r => r.Split('\t', 3)).ToDictionary(f => f[2], f => (int.TryParse(f[0], out int a) ? a : 0, int.TryParse(f[1], out int d) ? d : 0));
        var full = await lease.DiffFullAsync(from, to, default);
        Assert.Equal(status.Length / 2, full.Count);
        for (int i = 0; i < full.Count; i++)
        {
            Assert.Equal(status[(2 * i) + 1], full[i].File);
            Assert.Equal(status[2 * i][0] switch { 'A' => "added", 'D' => "deleted", _ => "modified" }, full[i].Status);
            Assert.Equal(numstat[full[i].File], (full[i].Additions, full[i].Deletions));
        }

        // The text is git's but for the abbreviation of ids on "index" lines, which git grows with the object count.
        static string Normalize(string d) => string.Join('\n', d.Trim().Split('\n').Select(l => l.StartsWith("index ", StringComparison.Ordinal) ? System.Text.RegularExpressions.Regex.Replace(l, "[0-9a-f]{7,40}", "ID") : l));
        string gitText = Git("diff", "--no-ext-diff", "--no-renames", "--no-color", from, to, "--", ".");
        Assert.Equal(Normalize(gitText), Normalize(await lease.DiffTextAsync(from, to, default)));
    }

    private static void Run(string exe, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(exe, args))!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void WorktreeFiles_RefusesEveryWayOut()
    {
        using var dirs = new TestDirs();
        string outside = Path.Combine(dirs.Root, "outside");
        Directory.CreateDirectory(outside);
        Directory.CreateSymbolicLink(Path.Combine(dirs.ProjectDir, "link"), outside);
        var w = new WorktreeFiles(dirs.ProjectDir);
        Assert.Null(w.Relative(Path.Combine(dirs.ProjectDir, "..", "outside", "x")));
        Assert.Null(w.Relative("../outside/x"));
        Assert.Null(w.Relative(Path.Combine(outside, "x")));
        Assert.Null(w.Relative(Path.Combine(dirs.ProjectDir, "link", "x")));
        Assert.Null(w.Relative(Path.Combine(dirs.ProjectDir, ".git", "config")));
        Assert.Null(w.Relative(dirs.ProjectDir));
        Assert.Equal("a/b.txt", w.Relative(Path.Combine(dirs.ProjectDir, "a", "b.txt")));
    }

    [Fact]
    public void Config_MergesGlobalAndProject_JsoncWithCommentsAndTrailingCommas()
    {
        using var dirs = new TestDirs(git: true);
        string global = RevertHarness.NewConfigDir(dirs);
        File.WriteAllText(Path.Combine(global, "opencode.json"), "{\"snapshot\": false, \"share\": \"manual\", \"compaction\": {\"auto\": false, \"prune\": true}}");
        var project = ProjectResolver.Resolve(dirs.ProjectDir);
        var loc = new ConfigLocations(global);
        Assert.False(OpenCodeConfig.Load(loc, project.Directory, project.Worktree).Snapshot);

        File.WriteAllText(Path.Combine(dirs.ProjectDir, "opencode.jsonc"), "{\n // mine\n \"snapshot\": true, /* block */\n \"compaction\": {\"auto\": true,},\n}");
        var merged = OpenCodeConfig.Load(loc, project.Directory, project.Worktree);
        Assert.True(merged.Snapshot);
        Assert.Equal("manual", (string?)merged.Raw["share"]);
        Assert.True((bool)merged.Raw["compaction"]!["auto"]!);
        Assert.True((bool)merged.Raw["compaction"]!["prune"]!);
        Assert.Equal(2, merged.Sources.Count);

        File.WriteAllText(Path.Combine(dirs.ProjectDir, "opencode.json"), "{ nope");
        var ex = Assert.Throws<ConfigInvalidException>(() => OpenCodeConfig.Load(loc, project.Directory, project.Worktree));
        Assert.Contains("opencode.json", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_DefaultsToSnapshotOn_WithNoFiles()
    {
        using var dirs = new TestDirs();
        var cfg = OpenCodeConfig.Load(new ConfigLocations(Path.Combine(dirs.Root, "no-config")), dirs.ProjectDir, null);
        Assert.True(cfg.Snapshot);
        Assert.Empty(cfg.Sources);
    }
}
