using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>Hostile and broken export files given to <c>session/import</c>, one row each. The base is a real
/// OpenCode export (5 messages: text, step, tool and patch parts); a row bends it or replaces it. The store already
/// holds one session of its own (<see cref="Ctx"/>), so rows can aim at it. Each row must get the right code and a
/// message naming what was wrong, write nothing anywhere under the test's folders, and leave the server answering.</summary>
public sealed class ImportCatalogueTests
{
    /// <summary>Small caps so the limit rows stay small: 1 MiB, 500 messages, 1,000 parts (depth stays 128).</summary>
    public static readonly ImportLimits Limits = ImportLimits.Default with { MaxBytes = 1 << 20, MaxMessages = 500, MaxParts = 1000 };

    /// <summary>The ids of the session already in the store: S (session), M (its message), P (that message's part).</summary>
    public sealed record Ctx(string S, string M, string P);

    private static readonly string Base = File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "export", "fake-llm-session-with-tool.json"));

    private static JsonObject Doc() => JsonNode.Parse(Base)!.AsObject();

    private static JsonArray Messages(JsonObject d) => d["messages"]!.AsArray();

    private static JsonObject Msg(JsonObject d, int i) => Messages(d)[i]!["info"]!.AsObject();

    private static JsonObject Part(JsonObject d, int i, int j) => Messages(d)[i]!["parts"]![j]!.AsObject();

    private static byte[] Bytes(JsonNode n) => Encoding.UTF8.GetBytes(n.ToJsonString());

    private static byte[] Edit(Action<JsonObject> edit)
    {
        var d = Doc();
        edit(d);
        return Bytes(d);
    }

    /// <summary>Sets the same property on every message and part (ids in them must agree or validation stops first).</summary>
    private static void SessionIdEverywhere(JsonObject d, string id)
    {
        d["info"]!["id"] = id;
        foreach (var m in Messages(d))
        {
            m!["info"]!["sessionID"] = id;
            foreach (var p in m["parts"]!.AsArray())
            {
                p!["sessionID"] = id;
            }
        }
    }

    private static void MessageIdEverywhere(JsonObject d, int i, string id)
    {
        Msg(d, i)["id"] = id;
        foreach (var p in Messages(d)[i]!["parts"]!.AsArray())
        {
            p!["messageID"] = id;
        }
    }

    /// <summary>The base with an overlong-encoding lead byte and a bad continuation (0xC3 0x28) inside the title string.</summary>
    private static byte[] InvalidUtf8InTitle()
    {
        byte[] b = Encoding.UTF8.GetBytes(Base);
        int at = Base.IndexOf("\"title\": \"", StringComparison.Ordinal) + 10;
        return [.. b[..at], 0xC3, 0x28, .. b[at..]];
    }

    private static byte[] Parts(int count)
    {
        var d = Doc();
        var m = Messages(d)[0]!.AsObject();
        var template = Part(d, 0, 0);
        var parts = new JsonArray();
        for (int i = 0; i < count; i++)
        {
            var p = template.DeepClone().AsObject();
            p["id"] = $"prt_bulk{i:D6}";
            parts.Add(p);
        }

        m["parts"] = parts;
        return Bytes(d);
    }

    /// <summary>name → (the file's bytes, expected code, a fragment the message or data.field must contain).</summary>
    public static readonly Dictionary<string, (Func<Ctx, byte[]> Input, int Code, string Fragment)> Cases = new()
    {
        // malformed
        ["Malformed_NotJson"] = (_ => "this is not json"u8.ToArray(), ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Malformed_Empty"] = (_ => [], ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Malformed_OnlyWhitespace"] = (_ => "  \n\t "u8.ToArray(), ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Malformed_TrailingGarbage"] = (_ => [.. Encoding.UTF8.GetBytes(Base), .. "}x"u8], ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Malformed_Comment"] = (_ => [.. "// exported\n"u8, .. Encoding.UTF8.GetBytes(Base)], ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Malformed_TrailingComma"] = (_ => Encoding.UTF8.GetBytes(Base.TrimEnd().TrimEnd('}') + ",}"), ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Malformed_NullDocument"] = (_ => "null"u8.ToArray(), ErrorCodes.InvalidParams, "null"),
        ["Malformed_InvalidUtf8InAString"] = (_ => InvalidUtf8InTitle(), ErrorCodes.InvalidParams, "UTF-8"),
        ["Malformed_BinaryFile"] = (_ => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00], ErrorCodes.InvalidParams, "Invalid JSON"),

        // truncated
        ["Truncated_Half"] = (_ => Encoding.UTF8.GetBytes(Base)[..(Base.Length / 2)], ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Truncated_LastByte"] = (_ => Encoding.UTF8.GetBytes(Base.TrimEnd())[..^1], ErrorCodes.InvalidParams, "Invalid JSON"),
        ["Truncated_InsideAString"] = (_ => Encoding.UTF8.GetBytes(Base[..(Base.IndexOf("\"title\"", StringComparison.Ordinal) + 12)]), ErrorCodes.InvalidParams, "Invalid JSON"),

        // huge
        ["Huge_OverTheByteCap"] = (_ => Encoding.UTF8.GetBytes(Base.Replace("\"title\": \"", "\"title\": \"" + new string('x', (1 << 20) + 1), StringComparison.Ordinal)), ErrorCodes.LimitExceeded, "over the limit"),
        ["Huge_NestingBomb"] = (_ => Encoding.UTF8.GetBytes(new string('[', 100_000) + new string(']', 100_000)), ErrorCodes.LimitExceeded, "nests deeper"),
        ["Huge_NestingBombInAToolInput"] = (_ => Encoding.UTF8.GetBytes(Base.Replace("\"tool\": \"", "\"x\": " + new string('[', 200) + new string(']', 200) + ", \"tool\": \"", StringComparison.Ordinal)), ErrorCodes.LimitExceeded, "nests deeper"),
        ["Huge_TooManyParts"] = (_ => Parts(1001), ErrorCodes.LimitExceeded, "parts"),
        ["Huge_TooManyMessages"] = (_ => Edit(d => d["messages"] = new JsonArray(Enumerable.Range(0, 501).Select(_ => (JsonNode?)new JsonObject()).ToArray())), ErrorCodes.LimitExceeded, "messages"),

        // duplicate keys (JavaScript keeps the last one silently: a smuggling trick)
        ["DuplicateKey_Info"] = (_ => Encoding.UTF8.GetBytes("{\"info\":{},\"info\":" + Doc()["info"]!.ToJsonString() + ",\"messages\":[]}"), ErrorCodes.InvalidParams, "Invalid JSON"),
        ["DuplicateKey_SessionIdInAPart"] = (_ => Encoding.UTF8.GetBytes(Base.Replace("\"type\": \"tool\",", "\"type\": \"tool\", \"sessionID\": \"ses_other\",", StringComparison.Ordinal)), ErrorCodes.InvalidParams, "Invalid JSON"),
        ["DuplicateMessageId"] = (_ => Edit(d => MessageIdEverywhere(d, 2, (string)Msg(d, 0)["id"]!)), ErrorCodes.InvalidParams, "repeats the id"),
        ["DuplicatePartIdAcrossMessages"] = (_ => Edit(d => Part(d, 3, 0)["id"] = (string)Part(d, 1, 0)["id"]!), ErrorCodes.InvalidParams, "repeats the id"),

        // wrong types
        ["WrongType_RootIsArray"] = (_ => "[]"u8.ToArray(), ErrorCodes.InvalidParams, "must be an object"),
        ["WrongType_RootIsString"] = (_ => "\"ses_abc\""u8.ToArray(), ErrorCodes.InvalidParams, "must be an object"),
        ["WrongType_InfoIsArray"] = (_ => Edit(d => d["info"] = new JsonArray()), ErrorCodes.InvalidParams, "info"),
        ["WrongType_MessagesIsObject"] = (_ => Edit(d => d["messages"] = new JsonObject()), ErrorCodes.InvalidParams, "messages"),
        ["WrongType_MessageIsNumber"] = (_ => Edit(d => Messages(d)[1] = 7), ErrorCodes.InvalidParams, "messages"),
        ["WrongType_PartsIsString"] = (_ => Edit(d => Messages(d)[1]!["parts"] = "none"), ErrorCodes.InvalidParams, "parts"),
        ["WrongType_PartIsNull"] = (_ => Edit(d => Messages(d)[1]!["parts"]!.AsArray()[0] = null), ErrorCodes.InvalidParams, "parts"),
        ["WrongType_SessionIdIsNumber"] = (_ => Edit(d => d["info"]!["id"] = 42), ErrorCodes.InvalidParams, "id"),
        ["WrongType_TimeCreatedIsString"] = (_ => Edit(d => d["info"]!["time"]!["created"] = "yesterday"), ErrorCodes.InvalidParams, "created"),
        ["WrongType_RoleIsObject"] = (_ => Edit(d => Msg(d, 0)["role"] = new JsonObject()), ErrorCodes.InvalidParams, "role"),
        ["Missing_Info"] = (_ => Edit(d => d.Remove("info")), ErrorCodes.InvalidParams, "info"),
        ["Missing_Messages"] = (_ => Edit(d => d.Remove("messages")), ErrorCodes.InvalidParams, "messages"),
        ["Missing_PartType"] = (_ => Edit(d => Part(d, 1, 0).Remove("type")), ErrorCodes.InvalidParams, "type"),

        // ids that would escape the storage folder or are not storage names
        ["Id_SessionTraversal"] = (_ => Edit(d => SessionIdEverywhere(d, "ses_../../../../tmp/x")), ErrorCodes.InvalidParams, "id"),
        ["Id_SessionBareTraversal"] = (_ => Edit(d => SessionIdEverywhere(d, "../../etc/passwd")), ErrorCodes.InvalidParams, "id"),
        ["Id_SessionAbsolutePath"] = (_ => Edit(d => SessionIdEverywhere(d, "/tmp/evil")), ErrorCodes.InvalidParams, "id"),
        ["Id_SessionNul"] = (_ => Edit(d => SessionIdEverywhere(d, "ses_a\u0000b")), ErrorCodes.InvalidParams, "id"),
        ["Id_SessionUnicodeLookalike"] = (_ => Edit(d => SessionIdEverywhere(d, "ses_\u0430bc")), ErrorCodes.InvalidParams, "id"),
        ["Id_SessionOverlong"] = (_ => Edit(d => SessionIdEverywhere(d, "ses_" + new string('a', 65))), ErrorCodes.InvalidParams, "id"),
        ["Id_MessageSlash"] = (_ => Edit(d => MessageIdEverywhere(d, 1, "msg_/x")), ErrorCodes.InvalidParams, "id"),
        ["Id_MessageDotDot"] = (_ => Edit(d => MessageIdEverywhere(d, 1, "msg_..")), ErrorCodes.InvalidParams, "id"),
        ["Id_MessageWrongPrefix"] = (_ => Edit(d => MessageIdEverywhere(d, 1, "ses_abc")), ErrorCodes.InvalidParams, "id"),
        ["Id_PartBackslash"] = (_ => Edit(d => Part(d, 3, 0)["id"] = "prt_a\\..\\b"), ErrorCodes.InvalidParams, "id"),
        ["Id_PartDeviceName"] = (_ => Edit(d => Part(d, 3, 0)["id"] = "NUL"), ErrorCodes.InvalidParams, "id"),
        ["Id_SessionPrefixOnly"] = (_ => Edit(d => SessionIdEverywhere(d, "ses_")), ErrorCodes.InvalidParams, "id"),

        // mixed session ids
        ["Mixed_MessageOfAnotherSession"] = (c => Edit(d => Msg(d, 2)["sessionID"] = c.S), ErrorCodes.InvalidParams, "sessionID"),
        ["Mixed_PartOfAnotherSession"] = (c => Edit(d => Part(d, 3, 1)["sessionID"] = c.S), ErrorCodes.InvalidParams, "sessionID"),
        ["Mixed_SessionIdMismatchEverywhereButInfo"] = (_ => Edit(d => d["info"]!["id"] = "ses_somebodyelse1"), ErrorCodes.InvalidParams, "sessionID"),

        // parts pointing at other messages
        ["PartPointsAtAnotherMessageOfTheSession"] = (_ => Edit(d => Part(d, 1, 0)["messageID"] = (string)Msg(d, 0)["id"]!), ErrorCodes.InvalidParams, "messageID"),
        ["PartPointsAtAMessageOfAnotherSession"] = (c => Edit(d => Part(d, 1, 0)["messageID"] = c.M), ErrorCodes.InvalidParams, "messageID"),
        ["PartPointsAtAMessageNotInTheFile"] = (_ => Edit(d => Part(d, 1, 0)["messageID"] = "msg_nowhere1"), ErrorCodes.InvalidParams, "messageID"),
        ["MessageIdOwnedByAnotherSession"] = (c => Edit(d => MessageIdEverywhere(d, 1, c.M)), ErrorCodes.Conflict, "already belongs to session"),
    };

    public static IEnumerable<object[]> Names => Cases.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Names))]
    public async Task HostileImportFile_AnswersErrorWritesNothingAndKeepsServing(string name)
    {
        var (input, code, fragment) = Cases[name];
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs, options: new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: dirs.ConfigDir, ImportLimits: Limits));
        var ctx = await SeedAsync(wire);
        string file = Path.Combine(dirs.Root, "import.json");
        await File.WriteAllBytesAsync(file, input(ctx));
        var before = Tree(dirs);

        var answer = await wire.RequestAsync(10, Methods.SessionImport, new JsonObject { ["path"] = file }.ToJsonString());

        AssertRefused(name, answer, code, fragment);
        Assert.Equal(before, Tree(dirs));
        await AssertServingAsync(wire, ctx);
    }

    /// <summary>The same checks through <c>content</c> (the export text itself), for rows that are valid text.</summary>
    [Theory]
    [InlineData("DuplicateKey_Info")]
    [InlineData("Mixed_PartOfAnotherSession")]
    [InlineData("Id_SessionTraversal")]
    [InlineData("Huge_NestingBomb")]
    [InlineData("MessageIdOwnedByAnotherSession")]
    public async Task HostileImportContent_AnswersErrorWritesNothingAndKeepsServing(string name)
    {
        var (input, code, fragment) = Cases[name];
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs, options: new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: dirs.ConfigDir, ImportLimits: Limits));
        var ctx = await SeedAsync(wire);
        var before = Tree(dirs);

        var answer = await wire.RequestAsync(10, Methods.SessionImport, new JsonObject { ["content"] = Encoding.UTF8.GetString(input(ctx)) }.ToJsonString());

        AssertRefused(name, answer, code, fragment);
        Assert.Equal(before, Tree(dirs));
        await AssertServingAsync(wire, ctx);
    }

    /// <summary>The base file itself imports: the rows fail for what they changed, not for something else.</summary>
    [Fact]
    public async Task TheUnbentBaseFile_Imports()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs, options: new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: dirs.ConfigDir, ImportLimits: Limits));
        var answer = await wire.RequestAsync(10, Methods.SessionImport, new JsonObject { ["content"] = Base }.ToJsonString());
        Assert.Equal(5, answer.GetProperty("result").GetProperty("messages").GetInt32());
    }

    internal static async Task<Ctx> SeedAsync(RawWire wire)
    {
        string s = await StoreCatalogueTests.Id(wire, 1, Methods.SessionCreate, """{"title":"already here"}""");
        string m = await StoreCatalogueTests.Id(wire, 2, Methods.MessageUpdate, new JsonObject { ["info"] = Build.User(s, 1_700_000_000_000) }.ToJsonString());
        string p = await StoreCatalogueTests.Id(wire, 3, Methods.PartUpdate, new JsonObject { ["part"] = Build.Text(s, m, "mine") }.ToJsonString());
        return new Ctx(s, m, p);
    }

    internal static void AssertRefused(string name, JsonElement answer, int code, string fragment)
    {
        Assert.True(answer.TryGetProperty("error", out var err), $"{name} succeeded: {answer}");
        Assert.True(code == err.GetProperty("code").GetInt32(), $"{name}: expected code {code}, got {err}");
        string message = err.GetProperty("message").GetString()!;
        string? field = err.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Object && d.TryGetProperty("field", out var f) ? f.GetString() : null;
        Assert.True(message.Contains(fragment, StringComparison.OrdinalIgnoreCase) || (field ?? string.Empty).Contains(fragment, StringComparison.OrdinalIgnoreCase), $"{name}: neither message nor field names {fragment}: {err}");
        Assert.DoesNotContain("   at ", message); // never a stack trace
        Assert.True(message.Length < 2_000, $"{name}: the message is not a sentence: {message.Length} characters");
    }

    internal static async Task AssertServingAsync(RawWire wire, Ctx ctx)
    {
        var next = await wire.RequestAsync(11, Methods.MessageList, $$"""{"sessionID":"{{ctx.S}}"}""");
        var parts = next.GetProperty("result").EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray()).Select(p => p.GetProperty("id").GetString()).ToList();
        Assert.Equal([ctx.P], parts); // the session that was already there is intact, and the server answers
    }

    /// <summary>Every file and folder under the test's root (data, project, config, anything an escaping id could
    /// reach), with content hashes, except the lock stripe files (created by taking a lock, not data), the write journal
    /// (it holds acknowledged writes until a checkpoint, which may run at any moment) and the input.</summary>
    internal static Dictionary<string, string> Tree(TestDirs dirs)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFileSystemEntries(dirs.Root, "*", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(dirs.Root, path);
            if (rel.StartsWith(Path.Combine("data", "opencode-rpc", "locks"), StringComparison.Ordinal)
                || rel.StartsWith(Path.Combine("data", "opencode-rpc", "journal"), StringComparison.Ordinal) || rel == "import.json")
            {
                continue;
            }

            map[rel] = Directory.Exists(path) ? "dir" : Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
        }

        return map;
    }
}
