using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>Hostile params, one row each, against a real in-proc server holding one session with one message and
/// one part. Each must get the right code and a message naming the field, write nothing, and leave the server
/// answering. <c>{S}</c>, <c>{M}</c>, <c>{P}</c> in a row's params are replaced by the real ids. Add a row to add a case
/// (import, share and revert cases go here once those methods are on main).</summary>
public sealed class ParamsCatalogueTests
{
    private static readonly string Long = "ses_" + new string('a', 65);

    /// <summary>name → (method, params JSON, expected code, fragment of the message or of data.field).</summary>
    public static readonly Dictionary<string, (string Method, string Params, int Code, string Fragment)> Cases = new()
    {
        // wrong types
        ["Get_SessionIdIsNumber"] = (Methods.SessionGet, """{"sessionID":5}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_SessionIdIsObject"] = (Methods.SessionGet, """{"sessionID":{"id":"{S}"}}""", ErrorCodes.InvalidParams, "sessionID"),
        ["List_LimitIsString"] = (Methods.SessionList, """{"limit":"ten"}""", ErrorCodes.InvalidParams, "limit"),
        ["List_LimitNegative"] = (Methods.SessionList, """{"limit":-1}""", ErrorCodes.InvalidParams, "limit"),
        ["List_LimitOverMax"] = (Methods.SessionList, """{"limit":100001}""", ErrorCodes.InvalidParams, "limit"),
        ["List_LimitFraction"] = (Methods.SessionList, """{"limit":1.5}""", ErrorCodes.InvalidParams, "limit"),
        ["List_ArchivedIsString"] = (Methods.SessionList, """{"archived":"yes"}""", ErrorCodes.InvalidParams, "archived"),
        ["Create_TitleIsArray"] = (Methods.SessionCreate, """{"title":["a"]}""", ErrorCodes.InvalidParams, "title"),
        ["Update_TitleTooLong"] = (Methods.SessionUpdate, "{\"sessionID\":\"{S}\",\"title\":\"" + new string('t', 1025) + "\"}", ErrorCodes.InvalidParams, "title"),
        ["Update_ArchivedIsNumber"] = (Methods.SessionUpdate, """{"sessionID":"{S}","archived":1}""", ErrorCodes.InvalidParams, "archived"),
        ["MessageUpdate_InfoIsString"] = (Methods.MessageUpdate, """{"info":"x"}""", ErrorCodes.InvalidParams, "info"),
        ["PartUpdate_PartIsArray"] = (Methods.PartUpdate, """{"part":[]}""", ErrorCodes.InvalidParams, "part"),
        ["PartUpdate_DeltaIsNumber"] = (Methods.PartUpdate, """{"part":{"id":"{P}","sessionID":"{S}","messageID":"{M}","type":"text","text":"x"},"delta":3}""", ErrorCodes.InvalidParams, "delta"),
        ["Fork_InclusiveIsString"] = (Methods.SessionFork, """{"sessionID":"{S}","messageID":"{M}","inclusive":"yes"}""", ErrorCodes.InvalidParams, "inclusive"),
        ["Search_QueryIsNumber"] = (Methods.SessionSearch, """{"query":1}""", ErrorCodes.InvalidParams, "query"),

        // missing fields
        ["Get_MissingSessionId"] = (Methods.SessionGet, "{}", ErrorCodes.InvalidParams, "sessionID"),
        ["MessageGet_MissingMessageId"] = (Methods.MessageGet, """{"sessionID":"{S}"}""", ErrorCodes.InvalidParams, "messageID"),
        ["PartRemove_MissingPartId"] = (Methods.PartRemove, """{"sessionID":"{S}","messageID":"{M}"}""", ErrorCodes.InvalidParams, "partID"),
        ["MessageUpdate_MissingInfo"] = (Methods.MessageUpdate, "{}", ErrorCodes.InvalidParams, "info"),
        ["MessageUpdate_InfoMissingRole"] = (Methods.MessageUpdate, """{"info":{"sessionID":"{S}","time":{"created":1}}}""", ErrorCodes.InvalidParams, "role"),
        ["MessageUpdate_InfoMissingSessionId"] = (Methods.MessageUpdate, """{"info":{"role":"user","time":{"created":1}}}""", ErrorCodes.InvalidParams, "sessionID"),
        ["PartUpdate_MissingType"] = (Methods.PartUpdate, """{"part":{"sessionID":"{S}","messageID":"{M}","text":"x"}}""", ErrorCodes.InvalidParams, "type"),
        ["Fork_MissingSessionId"] = (Methods.SessionFork, "{}", ErrorCodes.InvalidParams, "sessionID"),
        ["Search_MissingQuery"] = (Methods.SessionSearch, "{}", ErrorCodes.InvalidParams, "query"),

        // unknown fields
        ["Get_TypoSessionId"] = (Methods.SessionGet, """{"sessionId":"{S}"}""", ErrorCodes.InvalidParams, "sessionId"),
        ["List_UnknownField"] = (Methods.SessionList, """{"limt":3}""", ErrorCodes.InvalidParams, "limt"),
        ["Fork_UnknownField"] = (Methods.SessionFork, """{"sessionID":"{S}","at":"{M}"}""", ErrorCodes.InvalidParams, "at"),

        // hostile ids
        ["Get_Traversal"] = (Methods.SessionGet, """{"sessionID":"ses_../../etc/passwd"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_BareTraversal"] = (Methods.SessionGet, """{"sessionID":"../../../x"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_Nul"] = (Methods.SessionGet, """{"sessionID":"ses_abc\u0000def"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_Unicode"] = (Methods.SessionGet, """{"sessionID":"ses_Ä\u202Eabc"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_ReservedDeviceName"] = (Methods.SessionGet, """{"sessionID":"CON"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_DeviceNameWithExtension"] = (Methods.SessionGet, """{"sessionID":"ses_nul.json"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_OverLengthLimit"] = (Methods.SessionGet, "{\"sessionID\":\"" + Long + "\"}", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_Empty"] = (Methods.SessionGet, """{"sessionID":""}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_Whitespace"] = (Methods.SessionGet, """{"sessionID":" ses_abc"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_WrongPrefix"] = (Methods.SessionGet, """{"sessionID":"msg_abc"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_Slash"] = (Methods.SessionGet, """{"sessionID":"ses_a/b"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_Backslash"] = (Methods.SessionGet, """{"sessionID":"ses_a\\b"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_AbsolutePath"] = (Methods.SessionGet, """{"sessionID":"/etc/passwd"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Get_UnknownButValid"] = (Methods.SessionGet, """{"sessionID":"ses_doesnotexist1"}""", ErrorCodes.SessionNotFound, "ses_doesnotexist1"),
        ["MessageGet_TraversalMessageId"] = (Methods.MessageGet, """{"sessionID":"{S}","messageID":"msg_../x"}""", ErrorCodes.InvalidParams, "messageID"),
        ["MessageList_TraversalBefore"] = (Methods.MessageList, """{"sessionID":"{S}","before":"../msg"}""", ErrorCodes.InvalidParams, "before"),
        ["MessageRemove_NulMessageId"] = (Methods.MessageRemove, """{"sessionID":"{S}","messageID":"msg_\u0000"}""", ErrorCodes.InvalidParams, "messageID"),
        ["PartRemove_TraversalPartId"] = (Methods.PartRemove, """{"sessionID":"{S}","messageID":"{M}","partID":"prt_../../x"}""", ErrorCodes.InvalidParams, "partID"),
        ["MessageUpdate_TraversalSessionId"] = (Methods.MessageUpdate, """{"info":{"sessionID":"ses_../../x","role":"user","time":{"created":1},"agent":"build","model":{"providerID":"a","modelID":"b"}}}""", ErrorCodes.InvalidParams, "sessionID"),
        ["MessageUpdate_TraversalId"] = (Methods.MessageUpdate, """{"info":{"id":"msg_../x","sessionID":"{S}","role":"user","time":{"created":1},"agent":"build","model":{"providerID":"a","modelID":"b"}}}""", ErrorCodes.InvalidParams, "id"),
        ["PartUpdate_TraversalMessageId"] = (Methods.PartUpdate, """{"part":{"sessionID":"{S}","messageID":"msg_..","type":"text","text":"x"}}""", ErrorCodes.InvalidParams, "messageID"),
        ["PartUpdate_OverlongPartId"] = (Methods.PartUpdate, "{\"part\":{\"id\":\"prt_" + new string('a', 65) + "\",\"sessionID\":\"{S}\",\"messageID\":\"{M}\",\"type\":\"text\",\"text\":\"x\"}}", ErrorCodes.InvalidParams, "id"),

        // fork of hostile ids
        ["Fork_TraversalSessionId"] = (Methods.SessionFork, """{"sessionID":"ses_../../x"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Fork_NulSessionId"] = (Methods.SessionFork, """{"sessionID":"ses_a\u0000"}""", ErrorCodes.InvalidParams, "sessionID"),
        ["Fork_OverlongSessionId"] = (Methods.SessionFork, "{\"sessionID\":\"" + Long + "\"}", ErrorCodes.InvalidParams, "sessionID"),
        ["Fork_TraversalMessageId"] = (Methods.SessionFork, """{"sessionID":"{S}","messageID":"msg_/../../x"}""", ErrorCodes.InvalidParams, "messageID"),
        ["Fork_DeviceNameMessageId"] = (Methods.SessionFork, """{"sessionID":"{S}","messageID":"NUL"}""", ErrorCodes.InvalidParams, "messageID"),
        ["Fork_UnknownSession"] = (Methods.SessionFork, """{"sessionID":"ses_nosuchsession"}""", ErrorCodes.SessionNotFound, "ses_nosuchsession"),
        ["Fork_UnknownMessage"] = (Methods.SessionFork, """{"sessionID":"{S}","messageID":"msg_nosuchmessage"}""", ErrorCodes.MessageNotFound, "msg_nosuchmessage"),
    };

    public static IEnumerable<object[]> Names => Cases.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Names))]
    public async Task HostileParams_AnswersErrorWritesNothingAndKeepsServing(string name)
    {
        var (method, template, code, fragment) = Cases[name];
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs);
        var s = (await wire.RequestAsync(1, Methods.SessionCreate, """{"title":"T"}""")).GetProperty("result").GetProperty("id").GetString()!;
        var user = Build.User(s, 1_700_000_000_000);
        var m = (await wire.RequestAsync(2, Methods.MessageUpdate, new JsonObject { ["info"] = user }.ToJsonString())).GetProperty("result").GetProperty("id").GetString()!;
        var p = (await wire.RequestAsync(3, Methods.PartUpdate, new JsonObject { ["part"] = Build.Text(s, m, "hi") }.ToJsonString())).GetProperty("result").GetProperty("id").GetString()!;
        var before = Snapshot(dirs);

        var answer = await wire.RequestAsync(10, method, template.Replace("{S}", s).Replace("{M}", m).Replace("{P}", p));

        Assert.True(answer.TryGetProperty("error", out var err), $"{name} succeeded: {answer}");
        Assert.Equal(code, err.GetProperty("code").GetInt32());
        string message = err.GetProperty("message").GetString()!;
        string? field = err.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Object && d.TryGetProperty("field", out var f) ? f.GetString() : null;
        Assert.True(message.Contains(fragment, StringComparison.OrdinalIgnoreCase) || (field ?? string.Empty).Contains(fragment, StringComparison.OrdinalIgnoreCase), $"{name}: neither message nor field names {fragment}: {err}");
        Assert.DoesNotContain("   at ", message); // never a stack trace
        Assert.Equal(before, Snapshot(dirs));
        var next = await wire.RequestAsync(11, Methods.SessionGet, $$"""{"sessionID":"{{s}}"}""");
        Assert.True(next.TryGetProperty("result", out _), next.ToString());
    }

    /// <summary>Every storage file with its bytes: "nothing written" means this is equal before and after.</summary>
    internal static Dictionary<string, string> Snapshot(TestDirs dirs) =>
        dirs.StorageFiles().ToDictionary(f => f, f => Convert.ToBase64String(File.ReadAllBytes(Path.Combine(dirs.Storage, f))));
}
