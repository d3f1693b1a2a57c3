using System.Text;
using System.Text.Json;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>Hostile frames, one row each: the right error code, a message naming what was wrong, nothing written,
/// and the server answers the next request. Add a row to <see cref="Cases"/> to add a case.</summary>
public sealed class FrameCatalogueTests
{
    private const long SmallCap = 1 << 20;

    private static string Req(string method, string paramsJson = "{}", string id = "7") =>
        $$"""{"jsonrpc":"2.0","id":{{id}},"method":"{{method}}","params":{{paramsJson}}}""";

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    private static byte[] Deep(int depth) => Encoding.ASCII.GetBytes(new string('[', depth) + new string(']', depth));

    /// <summary>name → (bytes to send, expected code, fragment the message must contain, the expected error id or null).</summary>
    public static readonly Dictionary<string, (Func<byte[]> Bytes, int Code, string Fragment, long? Id)> Cases = new()
    {
        ["MissingContentLength"] = (() => Ascii("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + Req(Methods.SessionList)), ErrorCodes.ParseError, "no Content-Length", null),
        ["NegativeContentLength"] = (() => Ascii("Content-Length: -5\r\n\r\n{}"), ErrorCodes.ParseError, "negative", null),
        ["NonNumericContentLength"] = (() => Ascii("Content-Length: abc\r\n\r\n{}"), ErrorCodes.ParseError, "not a non-negative integer", null),
        ["HexContentLength"] = (() => Ascii("Content-Length: 0x10\r\n\r\n{}"), ErrorCodes.ParseError, "not a non-negative integer", null),
        ["OverflowingContentLength"] = (() => Ascii("Content-Length: 99999999999999999999999\r\n\r\n{}"), ErrorCodes.ParseError, "not a non-negative integer", null),
        ["DuplicateContentLength"] = (() => Ascii("Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"), ErrorCodes.ParseError, "more than one Content-Length", null),
        ["HeaderLineWithoutColon"] = (() => Ascii("Content-Length 2\r\n\r\n{}"), ErrorCodes.ParseError, "no Content-Length", null),
        ["HeaderTooLong"] = (() => Ascii("X-Junk: " + new string('a', 10_000) + "\r\n"), ErrorCodes.ParseError, "within 8192 bytes", null),
        ["UnsupportedCharset"] = (() => RawWire.Frame(Req(Methods.SessionList)) is var f ? [.. Ascii("Content-Type: application/json; charset=utf-16\r\n"), .. f] : [], ErrorCodes.ParseError, "charset", null),
        ["FrameOverCap"] = (() => RawWire.Frame(Req(Methods.SessionCreate, "{\"title\":\"" + new string('x', 2 << 20) + "\"}")), ErrorCodes.InvalidRequest, "over the 1048576-byte limit", null),
        ["InvalidUtf8"] = (() => RawWire.Frame([.. Encoding.ASCII.GetBytes("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"session/create\",\"params\":{\"title\":\""), 0xC3, 0x28, 0xFF, .. Encoding.ASCII.GetBytes("\"}}")]), ErrorCodes.ParseError, "not valid UTF-8", null),
        ["NotJson"] = (() => RawWire.Frame("hello, server"), ErrorCodes.ParseError, "not valid JSON", null),
        ["TruncatedJson"] = (() => RawWire.Frame("{\"jsonrpc\":\"2.0\",\"id\":7,"), ErrorCodes.ParseError, "not valid JSON", null),
        ["TrailingGarbage"] = (() => RawWire.Frame(Req(Methods.SessionList) + " }"), ErrorCodes.ParseError, "not valid JSON", null),
        ["Depth100000"] = (() => RawWire.Frame(Deep(100_000)), ErrorCodes.ParseError, "deeper than 256", null),
        ["Depth300InParams"] = (() => RawWire.Frame("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"session/create\",\"params\":{\"title\":" + new string('[', 300) + new string(']', 300) + "}}"), ErrorCodes.ParseError, "deeper than 256", null),
        ["Batch"] = (() => RawWire.Frame("[" + Req(Methods.SessionCreate) + "," + Req(Methods.SessionCreate, id: "8") + "]"), ErrorCodes.InvalidRequest, "batches are not supported", null),
        ["EmptyBatch"] = (() => RawWire.Frame("[]"), ErrorCodes.InvalidRequest, "batches are not supported", null),
        ["NumberBody"] = (() => RawWire.Frame("42"), ErrorCodes.InvalidRequest, "must be a JSON object", null),
        ["NullBody"] = (() => RawWire.Frame("null"), ErrorCodes.InvalidRequest, "must be a JSON object", null),
        ["EmptyBody"] = (() => Ascii("Content-Length: 0\r\n\r\n"), ErrorCodes.ParseError, "empty", null),
        ["MissingJsonRpcVersion"] = (() => RawWire.Frame("{\"id\":7,\"method\":\"session/create\",\"params\":{}}"), ErrorCodes.InvalidRequest, "\"jsonrpc\": \"2.0\"", 7),
        ["WrongJsonRpcVersion"] = (() => RawWire.Frame("{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"session/create\",\"params\":{}}"), ErrorCodes.InvalidRequest, "\"jsonrpc\": \"2.0\"", 7),
        ["MethodNotString"] = (() => RawWire.Frame("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":5,\"params\":{}}"), ErrorCodes.InvalidRequest, "no \"method\"", 7),
        ["JunkBeforeHeader"] = (() => [.. Ascii("garbage!!"), .. RawWire.Frame(Req(Methods.SessionList, id: "8"))], ErrorCodes.ParseError, "not a frame header", null),
        ["UnknownMethod"] = (() => RawWire.Frame(Req("session/explode")), ErrorCodes.MethodNotFound, "session/explode", 7),
        ["InitializedWithId"] = (() => RawWire.Frame(Req(Methods.Initialized)), ErrorCodes.InvalidRequest, "is a notification", 7),
        ["ExitWithId"] = (() => RawWire.Frame(Req(Methods.Exit)), ErrorCodes.InvalidRequest, "is a notification", 7),
        ["PositionalParams"] = (() => RawWire.Frame(Req(Methods.SessionGet, "[\"ses_abc\"]")), ErrorCodes.InvalidParams, "params", 7),
        ["ParamsNotObject"] = (() => RawWire.Frame(Req(Methods.SessionCreate, "\"title\"")), ErrorCodes.InvalidRequest, "not a JSON-RPC 2.0 message", 7),
    };

    public static IEnumerable<object[]> Names => Cases.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Names))]
    public async Task HostileFrame_AnswersErrorWritesNothingAndKeepsServing(string name)
    {
        var (bytes, code, fragment, id) = Cases[name];
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs, SmallCap);
        var before = dirs.StorageFiles();

        await wire.SendAsync(bytes());
        var err = await wire.NextErrorAsync();

        Assert.Equal(code, err.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains(fragment, err.GetProperty("error").GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
        var gotId = err.GetProperty("id");
        if (id is null)
        {
            Assert.Equal(JsonValueKind.Null, gotId.ValueKind);
        }
        else
        {
            Assert.Equal(id.Value, gotId.GetInt64());
        }

        var next = await wire.RequestAsync(99, Methods.SessionList);
        Assert.True(next.TryGetProperty("result", out _), next.ToString());
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task ContentTypeHeader_IsAcceptedAsInLsp()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs);
        string body = Req(Methods.SessionList, id: "5");
        await wire.SendAsync($"Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{body}");
        var r = await wire.ReadUntilAsync(f => f.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.Number && i.GetInt32() == 5);
        Assert.True(r.TryGetProperty("result", out _), r.ToString());
    }

    [Fact]
    public async Task TwoGigabyteLength_IsRefusedAtOnceWithoutWaitingForTheBody()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.ProcessAsync(dirs);
        var before = dirs.StorageFiles();
        // The error arrives before a single body byte is sent: the server did not try to buffer 2 GB first.
        await wire.SendAsync("Content-Length: 2147483648\r\n\r\n");
        var err = await wire.NextErrorAsync();
        Assert.Equal(ErrorCodes.InvalidRequest, err.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("2147483648 bytes, over the 67108864-byte limit", err.GetProperty("error").GetProperty("message").GetString());
        Assert.True(wire.Process!.WorkingSet64 < 1L << 30, $"working set {wire.Process.WorkingSet64}");
        wire.CloseInput();
        Assert.True(wire.Process.WaitForExit(30_000));
        Assert.Equal(0, wire.Process.ExitCode);
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task OverCapFrame_OverARealProcess_IsSkippedAndTheNextRequestAnswered()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.ProcessAsync(dirs, maxFrameBytes: 1 << 20);
        var before = dirs.StorageFiles();
        await wire.SendAsync(RawWire.Frame(Req(Methods.SessionCreate, "{\"title\":\"" + new string('x', 3 << 20) + "\"}")));
        var err = await wire.NextErrorAsync();
        Assert.Equal(ErrorCodes.InvalidRequest, err.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("over the 1048576-byte limit", err.GetProperty("error").GetProperty("message").GetString());
        var next = await wire.RequestAsync(99, Methods.SessionList);
        Assert.True(next.TryGetProperty("result", out _), next.ToString());
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task TwoHundredMegabyteString_IsRefusedByTheFrameCap()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs);
        var before = dirs.StorageFiles();
        var head = Encoding.ASCII.GetBytes("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"session/create\",\"params\":{\"title\":\"");
        var tail = Encoding.ASCII.GetBytes("\"}}");
        long len = head.Length + (200L << 20) + tail.Length;
        await wire.SendAsync($"Content-Length: {len}\r\n\r\n");
        var err = await wire.NextErrorAsync();
        Assert.Equal(ErrorCodes.InvalidRequest, err.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("over the 67108864-byte limit", err.GetProperty("error").GetProperty("message").GetString());
        await wire.SendAsync(head);
        var chunk = new byte[1 << 20];
        Array.Fill(chunk, (byte)'a');
        for (int i = 0; i < 200; i++)
        {
            await wire.SendAsync(chunk);
        }

        await wire.SendAsync(tail);
        var next = await wire.RequestAsync(99, Methods.SessionList);
        Assert.True(next.TryGetProperty("result", out _), next.ToString());
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task TruncatedBodyAtEndOfStream_IsReportedAndTheProcessExitsCleanly()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.ProcessAsync(dirs);
        var before = dirs.StorageFiles();
        await wire.SendAsync("Content-Length: 100\r\n\r\n{\"jsonrpc\":\"2.0\"");
        wire.CloseInput();
        var err = await wire.NextErrorAsync();
        Assert.Equal(ErrorCodes.ParseError, err.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("ended 16 bytes into a 100-byte frame body", err.GetProperty("error").GetProperty("message").GetString());
        Assert.True(wire.Process!.WaitForExit(30_000));
        Assert.Equal(0, wire.Process.ExitCode);
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task TruncatedBodyFollowedByFrames_ResynchronizesAtALaterHeader()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.InProcAsync(dirs);
        var before = dirs.StorageFiles();
        // Declares 60 bytes but sends 16: the server's body swallows the start of the next frame.
        await wire.SendAsync([.. Encoding.ASCII.GetBytes("Content-Length: 60\r\n\r\n{\"jsonrpc\":\"2.0\""), .. RawWire.Frame(Req(Methods.SessionList, id: "50"))]);
        var err = await wire.NextErrorAsync();
        Assert.Equal(ErrorCodes.ParseError, err.GetProperty("error").GetProperty("code").GetInt32());
        var next = await wire.RequestAsync(99, Methods.SessionList);
        Assert.True(next.TryGetProperty("result", out _), next.ToString());
        Assert.Equal(before, dirs.StorageFiles());
    }

    [Fact]
    public async Task EveryHostileFrameInOneStream_OverARealProcess_ServerSurvivesThemAll()
    {
        using var dirs = new TestDirs();
        await using var wire = await RawWire.ProcessAsync(dirs, maxFrameBytes: SmallCap);
        var before = dirs.StorageFiles();
        long id = 100;
        foreach (var (name, c) in Cases)
        {
            await wire.SendAsync(c.Bytes());
            var err = await wire.NextErrorAsync();
            Assert.True(c.Code == err.GetProperty("error").GetProperty("code").GetInt32(), $"{name}: {err}");
            var next = await wire.RequestAsync(++id, Methods.SessionList);
            Assert.True(next.TryGetProperty("result", out _), $"{name}: {next}");
        }

        Assert.Equal(before, dirs.StorageFiles());
        Assert.False(wire.Process!.HasExited);
    }
}
