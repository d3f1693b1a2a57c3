using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace OpenCode.Rpc.Server;

/// <summary>
/// LSP framing (<c>Content-Length: N\r\n\r\n</c> + N bytes of UTF-8 JSON) that never lets a bad frame end the
/// connection. StreamJsonRpc's <see cref="HeaderDelimitedMessageHandler"/> ends the connection on the first frame it
/// cannot read; this reader answers such a frame itself with a JSON-RPC error (<c>id: null</c> unless the id could be
/// read) and goes on with the next one.
/// <list type="bullet">
/// <item>Header problems (missing, negative, non-numeric or duplicate <c>Content-Length</c>, a header block over
/// <see cref="MaxHeaderBytes"/>, a charset other than UTF-8): -32700. Where the length is unknown the stream is
/// re-synchronized at the next <c>Content-Length:</c>.</item>
/// <item>A length over the frame cap: -32600, answered at once; the declared bytes are then read and discarded
/// (never buffered), so a client that sends what it declared keeps its connection.</item>
/// <item>Invalid UTF-8, non-JSON, nesting deeper than <see cref="MaxDepth"/> (checked by a non-recursive reader, so
/// 100,000 levels cannot overflow the stack): -32700.</item>
/// <item>A JSON array (a JSON-RPC batch): one -32600 "batches are not supported" with <c>id: null</c>; nothing in
/// it runs. Any other non-object: -32600.</item>
/// <item>A truncated body (the stream ends inside it): -32700, then the connection ends as the stream did.</item>
/// </list>
/// </summary>
public sealed class LspMessageHandler : MessageHandlerBase
{
    public const int MaxHeaderBytes = 8 * 1024;

    public const int MaxDepth = 256;

    private static readonly byte[] HeaderEnd = "\r\n\r\n"u8.ToArray();
    private static readonly byte[] ContentLengthToken = "content-length:"u8.ToArray();

    private readonly Stream sending;
    private readonly Stream receiving;
    private readonly PipeReader reader;
    private readonly long maxFrameBytes;
    private readonly Action<string> log;
    private readonly ArrayBufferWriter<byte> writeBuffer = new();
    private readonly Pipe outgoing;
    private readonly Task pump;

    public LspMessageHandler(Stream sending, Stream receiving, IJsonRpcMessageFormatter formatter, long maxFrameBytes, Action<string> log)
        : base(formatter)
    {
        this.sending = sending;
        this.receiving = receiving;
        reader = PipeReader.Create(receiving, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        this.maxFrameBytes = maxFrameBytes;
        this.log = log;
        // 64 KB segments (the pool's own size; 4 KB by default): a 3 MB session list is ~50 pooled segments to write,
        // not 700, and no frame-sized buffer is allocated per answer.
        outgoing = new Pipe(new PipeOptions(pauseWriterThreshold: PauseBytes, resumeWriterThreshold: PauseBytes / 2, minimumSegmentSize: 64 * 1024, useSynchronizationContext: false));
        pump = Task.Run(PumpAsync);
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    /// <summary>Frames refused so far (for tests and logs).</summary>
    public int RejectedFrames { get; private set; }

    protected override async ValueTask<JsonRpcMessage?> ReadCoreAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var outcome = await ReadFrameAsync(cancellationToken).ConfigureAwait(false);
            if (outcome.Message is not null)
            {
                return outcome.Message;
            }

            if (outcome.Error is { } error)
            {
                RejectedFrames++;
                log($"frame refused: {error.Message}");
                await WriteErrorAsync(outcome.Id, error, cancellationToken).ConfigureAwait(false);
            }

            if (outcome.EndOfStream)
            {
                return null;
            }
        }
    }

    internal readonly record struct Outcome(JsonRpcMessage? Message, RequestId Id, JsonRpcError.ErrorDetail? Error, bool EndOfStream);

    private static Outcome Fail(int code, string kind, string message, RequestId? id = null, bool eos = false) =>
        new(null, id ?? RequestId.Null, Detail(code, kind, message), eos);

    private static JsonRpcError.ErrorDetail Detail(int code, string kind, string message) =>
        new() { Code = (JsonRpcErrorCode)code, Message = message, Data = new JsonObject { ["kind"] = kind } };

    private async ValueTask<Outcome> ReadFrameAsync(CancellationToken ct)
    {
        // 1. The header block, up to the empty line.
        ReadOnlySequence<byte> header;
        while (true)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            var reader2 = new SequenceReader<byte>(buffer);
            if (reader2.TryReadTo(out header, HeaderEnd, advancePastDelimiter: true))
            {
                // Bytes before "Content-Length:" (the tail of a frame whose length was wrong): skip them and report once.
                byte[] flat = header.Length <= MaxHeaderBytes ? header.ToArray() : [];
                int at = IndexOfIgnoreCase(flat, ContentLengthToken);
                if (at > 0 && !(at >= 2 && flat[at - 1] == '\n' && flat[at - 2] == '\r'))
                {
                    // The token is not at the start of a header line.
                    var junk = header.Slice(0, at);
                    if (!IsWhitespace(junk))
                    {
                        reader.AdvanceTo(buffer.GetPosition(at));
                        return Fail(ErrorCodes.ParseError, "FrameHeader", $"{at} bytes that are not a frame header came before the next Content-Length header; they were skipped.");
                    }

                    header = header.Slice(at);
                }

                if (header.Length > MaxHeaderBytes)
                {
                    long size = header.Length;
                    reader.AdvanceTo(reader2.Position);
                    return Fail(ErrorCodes.ParseError, "FrameHeader", $"The frame header is {size} bytes, over the {MaxHeaderBytes}-byte limit.");
                }

                var parsed = ParseHeader(header, out long length, out string? problem);
                reader.AdvanceTo(reader2.Position);
                if (!parsed)
                {
                    if (length >= 0)
                    {
                        // The length is known: skip the body, the stream stays framed.
                        bool complete = await SkipAsync(length, ct).ConfigureAwait(false);
                        return Fail(ErrorCodes.ParseError, "FrameHeader", problem!, eos: !complete);
                    }

                    // Answer before re-synchronizing: the next header may be a while coming.
                    await RefuseAsync(Detail(ErrorCodes.ParseError, "FrameHeader", problem! + " The bytes up to the next Content-Length header are skipped."), ct).ConfigureAwait(false);
                    bool found = await ResyncAsync(ct).ConfigureAwait(false);
                    return new Outcome(null, RequestId.Null, null, !found);
                }

                return await ReadBodyAsync(length, ct).ConfigureAwait(false);
            }

            if (buffer.Length > MaxHeaderBytes)
            {
                reader.AdvanceTo(buffer.End);
                await RefuseAsync(Detail(ErrorCodes.ParseError, "FrameHeader", $"No end of frame header (an empty line) within {MaxHeaderBytes} bytes; skipping to the next Content-Length header."), ct).ConfigureAwait(false);
                bool found = await ResyncAsync(ct).ConfigureAwait(false);
                return new Outcome(null, RequestId.Null, null, !found);
            }

            if (result.IsCompleted)
            {
                // Inspect before AdvanceTo: the buffer's memory goes back to the pool after it (found by the fuzz smoke).
                bool blank = buffer.IsEmpty || IsWhitespace(buffer);
                long left = buffer.Length;
                reader.AdvanceTo(buffer.End);
                if (blank)
                {
                    return new Outcome(null, RequestId.Null, null, true);
                }

                return Fail(ErrorCodes.ParseError, "FrameHeader", $"The stream ended inside a frame header ({left} bytes without the empty line that ends it).", eos: true);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private bool ParseHeader(ReadOnlySequence<byte> header, out long length, out string? problem)
    {
        length = -1;
        problem = null;
        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(header.ToArray());
        }
        catch (DecoderFallbackException)
        {
            problem = "The frame header is not ASCII text.";
            return false;
        }

        long? found = null;
        string? badLength = null;
        foreach (var line in text.Split("\r\n"))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                problem ??= $"The frame header line \"{Shorten(line)}\" is not \"Name: value\".";
                continue;
            }

            string name = line[..colon].Trim();
            string value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (found is not null || badLength is not null)
                {
                    badLength = "The frame header has more than one Content-Length.";
                }
                else if (value.Length > 0 && value.All(char.IsAsciiDigit)
                         && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
                {
                    found = n;
                }
                else if (value.StartsWith('-'))
                {
                    badLength = $"Content-Length is negative ({Shorten(value)}).";
                }
                else
                {
                    badLength = $"Content-Length \"{Shorten(value)}\" is not a non-negative integer.";
                }
            }
            else if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                int cs = value.IndexOf("charset=", StringComparison.OrdinalIgnoreCase);
                if (cs >= 0)
                {
                    string charset = value[(cs + 8)..].Split(';')[0].Trim().Trim('"');
                    if (!charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
                    {
                        problem ??= $"Content-Type charset \"{Shorten(charset)}\" is not supported; only utf-8 is.";
                    }
                }
            }

            // Other headers are ignored, as LSP allows.
        }

        if (badLength is not null)
        {
            problem = badLength;
            return false;
        }

        if (found is null)
        {
            problem = "The frame header has no Content-Length.";
            return false;
        }

        length = found.Value;
        return problem is null;
    }

    private async ValueTask<Outcome> ReadBodyAsync(long length, CancellationToken ct)
    {
        if (length > maxFrameBytes)
        {
            // Answer first, then discard what was declared without keeping it.
            await RefuseAsync(Detail(ErrorCodes.InvalidRequest, "FrameTooLarge",
                $"The frame is {length} bytes, over the {maxFrameBytes}-byte limit (serve --max-frame-bytes); it is skipped unread."), ct).ConfigureAwait(false);
            bool complete = await SkipAsync(length, ct).ConfigureAwait(false);
            return new Outcome(null, RequestId.Null, null, !complete);
        }

        var body = new byte[length];
        int filled = 0;
        while (filled < length)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            long take = Math.Min(buffer.Length, length - filled);
            buffer.Slice(0, take).CopyTo(body.AsSpan(filled));
            filled += (int)take;
            reader.AdvanceTo(buffer.GetPosition(take));
            if (filled < length && result.IsCompleted)
            {
                return Fail(ErrorCodes.ParseError, "TruncatedFrame", $"The stream ended {filled} bytes into a {length}-byte frame body.", eos: true);
            }
        }

        return Decode(body);
    }

    /// <summary>Validates a whole body before StreamJsonRpc sees it, then lets the formatter build the message.</summary>
    private Outcome Decode(byte[] body)
    {
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return Fail(ErrorCodes.ParseError, "ParseError", "The frame body is not valid UTF-8.");
        }

        if (body.AsSpan().Trim(" \t\r\n"u8).IsEmpty)
        {
            return Fail(ErrorCodes.ParseError, "ParseError", "The frame body is empty.");
        }

        var check = Inspect(body);
        if (check.Error is not null)
        {
            return check;
        }

        try
        {
            var message = Formatter.Deserialize(new ReadOnlySequence<byte>(body));
            return new Outcome(message, RequestId.NotSpecified, null, false);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or NotSupportedException or ArgumentException or OverflowException or KeyNotFoundException)
        {
            return Fail(ErrorCodes.InvalidRequest, "InvalidRequest", $"The frame is JSON but not a JSON-RPC 2.0 message: {ex.Message}", check.Id);
        }
    }

    /// <summary>One pass with <see cref="Utf8JsonReader"/> (iterative, so depth cannot overflow the stack): is it
    /// JSON, not too deep, an object; and what is its id, so an error can be addressed.</summary>
    private static Outcome Inspect(byte[] body)
    {
        var r = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
        RequestId id = RequestId.Null;
        bool hasVersion = false;
        bool hasMethod = false;
        bool hasResultOrError = false;
        try
        {
            if (!r.Read())
            {
                return Fail(ErrorCodes.ParseError, "ParseError", "The frame body is empty.");
            }

            if (r.TokenType == JsonTokenType.StartArray)
            {
                while (r.Read())
                {
                }

                return Fail(ErrorCodes.InvalidRequest, "BatchNotSupported", "JSON-RPC batches are not supported: send each request in its own frame. Nothing in the batch was run.");
            }

            if (r.TokenType != JsonTokenType.StartObject)
            {
                while (r.Read())
                {
                }

                return Fail(ErrorCodes.InvalidRequest, "InvalidRequest", $"A JSON-RPC message must be a JSON object, not {Describe(r.TokenType)}.");
            }

            while (r.Read())
            {
                if (r.CurrentDepth == 1 && r.TokenType == JsonTokenType.PropertyName)
                {
                    string name = r.GetString()!;
                    r.Read();
                    switch (name)
                    {
                        case "id":
                            id = r.TokenType switch
                            {
                                JsonTokenType.String => new RequestId(r.GetString()),
                                JsonTokenType.Number when r.TryGetInt64(out long n) => new RequestId(n),
                                _ => RequestId.Null,
                            };
                            break;
                        case "jsonrpc":
                            hasVersion = r.TokenType == JsonTokenType.String && r.ValueTextEquals("2.0"u8);
                            break;
                        case "method":
                            hasMethod = r.TokenType == JsonTokenType.String;
                            break;
                        case "result" or "error":
                            hasResultOrError = true;
                            break;
                    }

                    if (r.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    {
                        r.Skip();
                    }
                }
            }
        }
        catch (JsonException ex)
        {
            string what = r.CurrentDepth >= MaxDepth - 1 || ex.Message.Contains("depth", StringComparison.OrdinalIgnoreCase)
                ? $"The frame body nests deeper than {MaxDepth} levels."
                : $"The frame body is not valid JSON: {ex.Message}";
            return Fail(ErrorCodes.ParseError, "ParseError", what);
        }

        if (!hasVersion)
        {
            return Fail(ErrorCodes.InvalidRequest, "InvalidRequest", "The message has no \"jsonrpc\": \"2.0\" member.", id);
        }

        if (!hasMethod && !hasResultOrError)
        {
            return Fail(ErrorCodes.InvalidRequest, "InvalidRequest", "The message has no \"method\" (a request or notification) and no \"result\" or \"error\" (a response).", id);
        }

        return new Outcome(null, id, null, false);
    }

    private static string Describe(JsonTokenType t) => t switch
    {
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => t.ToString(),
    };

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private static bool IsWhitespace(ReadOnlySequence<byte> buffer)
    {
        foreach (var seg in buffer)
        {
            foreach (byte b in seg.Span)
            {
                if (b is not ((byte)' ' or (byte)'\r' or (byte)'\n' or (byte)'\t'))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes; false when the stream ended first.</summary>
    private async ValueTask<bool> SkipAsync(long count, CancellationToken ct)
    {
        while (count > 0)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            long take = Math.Min(result.Buffer.Length, count);
            reader.AdvanceTo(result.Buffer.GetPosition(take));
            count -= take;
            if (count > 0 && result.IsCompleted)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Drops bytes up to (not including) the next <c>Content-Length:</c> (any case); false at end of stream.</summary>
    private async ValueTask<bool> ResyncAsync(CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            byte[] flat = buffer.ToArray();
            int at = IndexOfIgnoreCase(flat, ContentLengthToken);
            if (at >= 0)
            {
                reader.AdvanceTo(buffer.GetPosition(at));
                return true;
            }

            if (result.IsCompleted)
            {
                reader.AdvanceTo(buffer.End);
                return false;
            }

            // Keep the tail that could be the start of the token.
            long keep = Math.Min(buffer.Length, ContentLengthToken.Length - 1);
            reader.AdvanceTo(buffer.GetPosition(buffer.Length - keep), buffer.End);
        }
    }

    private static int IndexOfIgnoreCase(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && (hay[i + j] | 0x20) == needle[j])
            {
                j++;
            }

            if (j == needle.Length)
            {
                return i;
            }
        }

        return -1;
    }

    private async ValueTask RefuseAsync(JsonRpcError.ErrorDetail error, CancellationToken ct)
    {
        RejectedFrames++;
        log($"frame refused: {error.Message}");
        await WriteErrorAsync(RequestId.Null, error, ct).ConfigureAwait(false);
    }

    private async ValueTask WriteErrorAsync(RequestId id, JsonRpcError.ErrorDetail error, CancellationToken ct)
    {
        try
        {
            await WriteAsync(new JsonRpcError { RequestId = id, Error = error }, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // The client is gone; reading will end too.
        }
    }

    protected override ValueTask WriteCoreAsync(JsonRpcMessage content, CancellationToken cancellationToken)
    {
        // Called under the base class's send lock, one message at a time. The body is serialized after a gap that
        // the header is then written into, right-aligned, so the frame is one contiguous piece. It goes into the
        // outgoing pipe, not to the stream: the pump below writes whatever frames have piled up in one write, so 64
        // answers in flight cost a handful of syscalls (and wake-ups of the client's reader), not 64.
        writeBuffer.ResetWrittenCount();
        writeBuffer.GetSpan(MaxHeadBytes);
        writeBuffer.Advance(MaxHeadBytes);
        Formatter.Serialize(writeBuffer, content);
        int bodyLength = writeBuffer.WrittenCount - MaxHeadBytes;
        var frame = MemoryMarshal.AsMemory(writeBuffer.WrittenMemory);
        int start = WriteHead(frame.Span[..MaxHeadBytes], bodyLength);
        try
        {
            outgoing.Writer.Write(frame.Span[start..]);
        }
        catch (InvalidOperationException)
        {
            // Drain already ended writing: the connection is being disposed.
            throw new ObjectDisposedException(nameof(LspMessageHandler));
        }

        return default;
    }

    protected override async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        // Completes once the pipe has room (at most PauseBytes unsent), not once the bytes are on the stream. Order is
        // kept (one FIFO), which is all the notification-before-answer guarantee needs. A failed stream write surfaces
        // here, as an IOException from the pump, and ends the connection as a direct write would.
        var result = await outgoing.Writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted)
        {
            throw new IOException("The output stream is closed.");
        }
    }

    /// <summary>Unsent bytes at which a writer waits for the pump (so a client that stops reading cannot grow
    /// memory without bound).</summary>
    private const int PauseBytes = 1 << 20;

    /// <summary>Frames that piled up, up to this size, are copied together and written with one call.</summary>
    private const int CoalesceBytes = 256 * 1024;

    /// <summary>Moves frames from the outgoing pipe to the stream, everything available per write.</summary>
    private async Task PumpAsync()
    {
        var r = outgoing.Reader;
        byte[]? scratch = null;
        try
        {
            while (true)
            {
                var result = await r.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                if (buffer.IsSingleSegment)
                {
                    await sending.WriteAsync(buffer.First).ConfigureAwait(false);
                }
                else if (buffer.Length <= CoalesceBytes)
                {
                    scratch ??= new byte[CoalesceBytes];
                    buffer.CopyTo(scratch);
                    await sending.WriteAsync(scratch.AsMemory(0, (int)buffer.Length)).ConfigureAwait(false);
                }
                else
                {
                    foreach (var segment in buffer)
                    {
                        await sending.WriteAsync(segment).ConfigureAwait(false);
                    }
                }

                if (!buffer.IsEmpty)
                {
                    await sending.FlushAsync().ConfigureAwait(false);
                }

                r.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            await r.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The writer's next flush throws this (the connection then ends).
            await r.CompleteAsync(ex).ConfigureAwait(false);
        }
    }

    /// <summary>Room for <c>Content-Length: </c> + the longest int + <c>\r\n\r\n</c>.</summary>
    private const int MaxHeadBytes = 32;

    /// <summary>Writes <c>Content-Length: N\r\n\r\n</c> at the end of <paramref name="gap"/>; returns where it starts.</summary>
    private static int WriteHead(Span<byte> gap, int bodyLength)
    {
        Span<byte> digits = stackalloc byte[11];
        Utf8Formatter.TryFormat(bodyLength, digits, out int n);
        ReadOnlySpan<byte> prefix = "Content-Length: "u8;
        int start = gap.Length - prefix.Length - n - 4;
        prefix.CopyTo(gap[start..]);
        digits[..n].CopyTo(gap[(start + prefix.Length)..]);
        "\r\n\r\n"u8.CopyTo(gap[(start + prefix.Length + n)..]);
        return start;
    }

    protected override void DisposeWriter()
    {
        Drain();
        base.DisposeWriter();
    }

    /// <summary>Ends writing and waits until every frame written so far is on the stream: a process that exits
    /// after this has sent its last answers. Bounded, because a client that stopped reading could otherwise hold the
    /// process forever. Idempotent.</summary>
    public void Drain()
    {
        outgoing.Writer.Complete();
#pragma warning disable VSTHRD002 // called from synchronous disposal; the pump needs no thread of ours to finish.
        if (!pump.Wait(DrainTimeout))
#pragma warning restore VSTHRD002
        {
            log($"the client did not read the last answers within {DrainTimeout.TotalSeconds:N0} s; they are dropped");
        }
    }

    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            reader.Complete();
            receiving.Dispose();
            sending.Dispose();
        }

        base.Dispose(disposing);
    }
}
