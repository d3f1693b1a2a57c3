using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Transfer.TransferTestKit;

namespace OpenCode.Rpc.Tests.Transfer;

/// <summary><c>--from-opencode-db</c> / <c>session/importDatabase</c> on a database rebuilt from the real 1.18.33 dump.</summary>
public sealed class DatabaseImportTests
{
    /// <summary>Executes sqlite-dump.sql through Microsoft.Data.Sqlite (the sqlite3 CLI may be missing).</summary>
    public static string BuildFixtureDb(string dir)
    {
        string path = Path.Combine(dir, "opencode.db");
        using (var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "sqlite-dump.sql"));
            cmd.ExecuteNonQuery();
        }

        return path;
    }

    [Fact]
    public async Task ImportDatabase_Rpc_BringsEverySession_ReportsProgress_AndLeavesTheDbUntouched()
    {
        using var dirs = new TestDirs();
        string db = BuildFixtureDb(dirs.Root);
        byte[] hash = SHA256.HashData(await File.ReadAllBytesAsync(db));
        await using var server = await InProcServer.StartAsync(dirs);
        var r = await server.CallAsync(Methods.SessionImportDatabase, new { path = db, workDoneToken = "tok-1" });

        Assert.Equal(13, r.GetProperty("sessions").GetInt32()); // 14 rows; one has the id "ses_../../etc"
        Assert.Equal(16, r.GetProperty("messages").GetInt32());
        Assert.Equal(19, r.GetProperty("parts").GetInt32());
        var skipped = r.GetProperty("skipped").EnumerateArray().ToList();
        Assert.Equal("ses_../../etc", Assert.Single(skipped).GetProperty("sessionID").GetString());
        Assert.Equal(hash, SHA256.HashData(await File.ReadAllBytesAsync(db)));

        var progress = server.Received.Where(f => f.TryGetProperty("method", out var m) && m.GetString() == "$/progress")
            .Select(f => f.GetProperty("params")).ToList();
        Assert.All(progress, p => Assert.Equal("tok-1", p.GetProperty("token").GetString()));
        Assert.Equal("begin", progress[0].GetProperty("value").GetProperty("kind").GetString());
        Assert.Equal("end", progress[^1].GetProperty("value").GetProperty("kind").GetString());
        Assert.Equal(14, progress.Count(p => p.GetProperty("value").GetProperty("kind").GetString() == "report"));
        Assert.Equal(100, progress[^2].GetProperty("value").GetProperty("percentage").GetInt32());

        // Folded back exactly as OpenCode's own export prints it.
        var export = await server.CallAsync(Methods.SessionExport, new { sessionID = "ses_df5bd1602ffe7PW8nTkdnDCX6s" });
        Assert.Equal(await File.ReadAllTextAsync(ExportFixture("http-session-2user-msgs.json")), export.GetProperty("content").GetString());
    }

    [Fact]
    public async Task ImportDatabase_Twice_IsIdempotent_AndCliExitsNonZeroNamingTheSkippedSession()
    {
        using var dirs = new TestDirs();
        string db = BuildFixtureDb(dirs.Root);
        string[] args = ["import", "--from-opencode-db", db, "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir];
        var first = await ProcessServer.RunCliAsync(args);
        var files = dirs.StorageFiles().Select(f => (f, File.ReadAllText(Path.Combine(dirs.Storage, f)))).ToList();
        var second = await ProcessServer.RunCliAsync(args);
        Assert.Equal(files, dirs.StorageFiles().Select(f => (f, File.ReadAllText(Path.Combine(dirs.Storage, f)))).ToList());
        foreach (var run in new[] { first, second })
        {
            Assert.Equal(1, run.Code);
            Assert.Equal("Imported 13 sessions, 16 messages, 19 parts\n", run.Stdout);
            Assert.Contains("Skipped session ses_../../etc:", run.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ImportDatabase_MissingFile_IsAClearError()
    {
        using var dirs = new TestDirs();
        await using var server = await InProcServer.StartAsync(dirs);
        var err = await server.ErrorAsync(Methods.SessionImportDatabase, new { path = Path.Combine(dirs.Root, "nope.db") });
        Assert.Equal(ErrorCodes.InvalidParams, err.Code);
        Assert.StartsWith("No OpenCode database at ", err.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dirs.Root, "nope.db"))); // read-only: never created
    }

    [Fact]
    public async Task ImportDatabase_EveryFixtureRow_FoldsBackIntoTheJson()
    {
        using var dirs = new TestDirs();
        string db = BuildFixtureDb(dirs.Root);
        await using var server = await InProcServer.StartAsync(dirs);
        await server.CallAsync(Methods.SessionImportDatabase, new { path = db });
        var store = server.Server.Context.Store;
        using var rows = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(RepoPaths.Fixtures, "sqlite-rows-part.json")));
        foreach (var row in rows.RootElement.EnumerateArray())
        {
            string sid = row.GetProperty("session_id").GetString()!;
            string mid = row.GetProperty("message_id").GetString()!;
            string pid = row.GetProperty("id").GetString()!;
            var part = store.GetMessage(sid, mid).Parts.Single(p => (string?)p["id"] == pid);
            var data = System.Text.Json.Nodes.JsonNode.Parse(row.GetProperty("data").GetString()!)!.AsObject();
            data["id"] = pid;
            data["sessionID"] = sid;
            data["messageID"] = mid;
            Assert.Equal(data.ToJsonString(), part.ToJsonString());
        }
    }
}
