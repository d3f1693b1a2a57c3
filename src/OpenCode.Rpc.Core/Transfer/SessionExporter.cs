using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Core.Transfer;

public enum ExportFormat
{
    Json,
    Markdown,
}

/// <summary>What to export and how. The three Markdown switches are OpenCode's <c>/export</c> dialog options.</summary>
public sealed record ExportOptions(
    ExportFormat Format = ExportFormat.Json,
    bool Sanitize = false,
    bool Thinking = false,
    bool ToolDetails = false,
    bool AssistantMetadata = false);

/// <summary>
/// Writes a session as OpenCode's export JSON (<c>opencode export</c>) or as its Markdown transcript
/// (<c>/export</c>, reference §7.3). Both stream: the session's message infos are read up front (small), then
/// one message's parts at a time are read, written and dropped, so a 200 MB session never sits in memory.
/// </summary>
public static partial class SessionExporter
{
    /// <summary>Flush to the stream whenever this much is buffered.</summary>
    private const int FlushThreshold = 64 * 1024;

    /// <summary>The default file name: OpenCode's <c>session-&lt;first 8 chars of id&gt;.md</c> for Markdown; the
    /// whole id for JSON (8 characters of a descending id are shared by every session made in the same ~hour).</summary>
    public static string DefaultFileName(string sessionId, ExportFormat format) => format == ExportFormat.Markdown
        ? $"session-{sessionId[..Math.Min(8, sessionId.Length)]}.md"
        : $"{sessionId}.json";

    /// <summary>Writes the export to <paramref name="output"/> and flushes it. The session must exist
    /// (<see cref="NotFoundException"/> otherwise, before a byte is written).</summary>
    public static async Task ExportAsync(SessionStore store, string sessionId, ExportOptions options, Stream output, CancellationToken ct)
    {
        var info = store.GetSession(sessionId);
        var writer = PipeWriter.Create(output, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024, leaveOpen: true));
        try
        {
            if (options.Format == ExportFormat.Json && !options.Sanitize && !store.CachesReads)
            {
                // A one-shot export (the CLI) reads every file once: straight from parsed documents to the output,
                // without building the nodes a server's read cache keeps.
                var docs = store.ReadMessageDocuments(sessionId);
                var ahead = new PartsAhead<JsonDocument>(docs.Count, i => docs[i].Id!, id => (store.ReadPartDocuments(id, out long b), b), ct);
                await WriteJsonAsync(info, docs, ahead, static (w, m) => WriteDocument(w, m.Document, 3), static (w, p) => WriteDocument(w, p, 4), writer, ct).ConfigureAwait(false);
            }
            else
            {
                var messages = store.ReadMessageInfosShared(sessionId); // shared: the sanitizer works on clones
                if (options.Format == ExportFormat.Markdown)
                {
                    await WriteMarkdownAsync(store, info, messages, options, writer, ct).ConfigureAwait(false);
                }
                else
                {
                    await WriteJsonAsync(store, info, messages, options.Sanitize, writer, ct).ConfigureAwait(false);
                }
            }

            await writer.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            await writer.CompleteAsync().ConfigureAwait(false);
        }

        await output.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The parts of <paramref name="messages"/>, read ahead through the store's read cache.</summary>
    private static PartsAhead<JsonObject> CachedPartsAhead(SessionStore store, List<JsonObject> messages, CancellationToken ct) =>
        new(messages.Count, i => messages[i]["id"]!.GetValue<string>(), id => (store.ReadPartsShared(id, out long b), b), ct);

    private static void WriteDocument(PipeWriter w, JsonDocument doc, int depth)
    {
        JsJson.Write(w, doc.RootElement, depth);
        doc.Dispose(); // written once: its pooled index goes back now
    }

    /// <summary>The export as a string: the same writer, into memory (the RPC result carries it as one string).</summary>
    public static async Task<string> ExportToStringAsync(SessionStore store, string sessionId, ExportOptions options, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        await ExportAsync(store, sessionId, options, ms, ct).ConfigureAwait(false);
        return Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length);
    }

    // ------------------------------------------------------------------ JSON

    // JSON.stringify({info, messages:[{info, parts}]}, null, 2) + EOL, written piecewise: the envelope here, each
    // stored object through JsJson at its nesting depth.
    private static Task WriteJsonAsync(SessionStore store, JsonObject info, List<JsonObject> messages, bool sanitize, PipeWriter w, CancellationToken ct)
    {
        if (sanitize)
        {
            info = (JsonObject)info.DeepClone();
            ExportSanitizer.Session(info);
        }

        // Nodes: the sanitizer edits clones of them, and a server's read cache holds them already parsed.
        var ahead = CachedPartsAhead(store, messages, ct);
        return WriteJsonAsync(info, messages, ahead, (w, m) =>
        {
            if (sanitize)
            {
                m = (JsonObject)m.DeepClone();
                ExportSanitizer.Message(m);
            }

            JsJson.Write(w, m, 3);
        }, (w, p) =>
        {
            if (sanitize)
            {
                p = (JsonObject)p.DeepClone();
                ExportSanitizer.Part(p);
            }

            JsJson.Write(w, p, 4);
        }, w, ct);
    }

    private static async Task WriteJsonAsync<TMessage, TPart>(
        JsonObject info, IReadOnlyList<TMessage> messages, PartsAhead<TPart> ahead, Action<PipeWriter, TMessage> writeInfo, Action<PipeWriter, TPart> writePart, PipeWriter w, CancellationToken ct)
    {
        Raw(w, "{\n  \"info\": "u8);
        JsJson.Write(w, info, 1);
        if (messages.Count == 0)
        {
            Raw(w, ",\n  \"messages\": []\n}\n"u8);
            return;
        }

        Raw(w, ",\n  \"messages\": [\n"u8);
        for (int i = 0; i < messages.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var parts = await ahead.GetAsync(i).ConfigureAwait(false);
            Raw(w, "    {\n      \"info\": "u8);
            writeInfo(w, messages[i]);
            if (parts.Count == 0)
            {
                Raw(w, ",\n      \"parts\": []\n    }"u8);
            }
            else
            {
                Raw(w, ",\n      \"parts\": [\n"u8);
                for (int j = 0; j < parts.Count; j++)
                {
                    Raw(w, "        "u8);
                    writePart(w, parts[j]);
                    Raw(w, j + 1 < parts.Count ? ",\n"u8 : "\n"u8);
                }

                Raw(w, "      ]\n    }"u8);
            }

            Raw(w, i + 1 < messages.Count ? ",\n"u8 : "\n"u8);
            if (w.UnflushedBytes >= FlushThreshold)
            {
                await w.FlushAsync(ct).ConfigureAwait(false);
            }
        }

        Raw(w, "  ]\n}\n"u8);
    }

    /// <summary>
    /// Reads the parts of the messages ahead of the writer: a window of messages at a time, on every core, the next
    /// window while the current one is written. A long session is thousands of small part folders; read one after
    /// another between writes, their syscalls paced the whole export. A window holds up to 16 messages and about
    /// <see cref="WindowBytes"/> of part files at the heaviest message's weight so far, and at most two are held, so a
    /// session of huge tool outputs still streams in a few MB.
    /// </summary>
    private sealed class PartsAhead<T>(int messageCount, Func<int, string> messageId, Func<string, (IReadOnlyList<T> Parts, long Bytes)> read, CancellationToken ct)
    {
        private const int MaxWindow = 16;
        private const long WindowBytes = 2 << 20;
        private Window? current;
        private Task<Window>? next;
        private long heaviest; // the most part bytes one message has had so far

        public async ValueTask<IReadOnlyList<T>> GetAsync(int i)
        {
            if (current is null || i >= current.Start + current.Parts.Length)
            {
                current = next is not null ? await next.ConfigureAwait(false) : Read(i, 1);
                heaviest = Math.Max(heaviest, current.Heaviest);
                int following = current.Start + current.Parts.Length;
                // Windows start at one message and double while messages stay light; one heavy message (a big tool
                // output) shrinks them to what fits in WindowBytes at that weight.
                int count = (int)Math.Min(current.Parts.Length * 2L, Math.Clamp(WindowBytes / Math.Max(1, heaviest), 1, MaxWindow));
                next = following < messageCount ? Task.Run(() => Read(following, count), ct) : null;
            }

            return current.Parts[i - current.Start];
        }

        private Window Read(int start, int count)
        {
            var parts = new IReadOnlyList<T>[Math.Min(count, messageCount - start)];
            var bytes = new long[parts.Length];
            IoParallel.For(parts.Length, k => (parts[k], bytes[k]) = read(messageId(start + k)), ct);
            return new Window(start, parts, bytes.Max());
        }

        private sealed record Window(int Start, IReadOnlyList<T>[] Parts, long Heaviest);
    }

    private static void Raw(PipeWriter w, ReadOnlySpan<byte> bytes)
    {
        var span = w.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        w.Advance(bytes.Length);
    }

    private static void Text(PipeWriter w, string s) => Encoding.UTF8.GetBytes(s, w);

    // ------------------------------------------------------------------ Markdown (reference §7.3)

    private static async Task WriteMarkdownAsync(SessionStore store, JsonObject info, List<JsonObject> messages, ExportOptions o, PipeWriter w, CancellationToken ct)
    {
        var sb = new StringBuilder();
        sb.Append("# ").Append(Str(info, "title")).Append("\n\n");
        sb.Append("**Session ID:** ").Append(Str(info, "id")).Append('\n');
        sb.Append("**Created:** ").Append(LocaleString(Num(info["time"]?["created"]))).Append('\n');
        sb.Append("**Updated:** ").Append(LocaleString(Num(info["time"]?["updated"]))).Append("\n\n");
        sb.Append("---\n\n");
        Text(w, sb.ToString());
        var ahead = CachedPartsAhead(store, messages, ct);
        for (int i = 0; i < messages.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var m = messages[i];
            var parts = await ahead.GetAsync(i).ConfigureAwait(false);
            sb.Clear();
            FormatMessage(sb, m, parts, o);
            sb.Append("---\n\n");
            Text(w, sb.ToString());
            if (w.UnflushedBytes >= FlushThreshold)
            {
                await w.FlushAsync(ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One message: its header, then each part (OpenCode's <c>formatMessage</c>).</summary>
    public static void FormatMessage(StringBuilder sb, JsonObject m, IReadOnlyList<JsonObject> parts, ExportOptions o)
    {
        if (Str(m, "role") == "user")
        {
            sb.Append("## User\n\n");
        }
        else if (!o.AssistantMetadata)
        {
            sb.Append("## Assistant\n\n");
        }
        else
        {
            // duration only when both times are set (and non-zero: JavaScript tests them for truthiness)
            double created = Num(m["time"]?["created"]);
            double completed = Num(m["time"]?["completed"]);
            string duration = created != 0 && completed != 0 ? ToFixed1((completed - created) / 1000) + "s" : string.Empty;
            sb.Append("## Assistant (").Append(TitleCase(Str(m, "agent"))).Append(" · ").Append(Str(m, "modelID"));
            if (duration.Length > 0)
            {
                sb.Append(" · ").Append(duration);
            }

            sb.Append(")\n\n");
        }

        foreach (var p in parts)
        {
            FormatPart(sb, p, o);
        }
    }

    private static void FormatPart(StringBuilder sb, JsonObject p, ExportOptions o)
    {
        switch (Str(p, "type"))
        {
            case "text" when !IsTrue(p["synthetic"]):
                sb.Append(JsString(p["text"])).Append("\n\n");
                break;
            case "reasoning" when o.Thinking:
                sb.Append("_Thinking:_\n\n").Append(JsString(p["text"])).Append("\n\n");
                break;
            case "tool":
                sb.Append("**Tool: ").Append(JsString(p["tool"])).Append("**\n");
                var state = p["state"] as JsonObject;
                string status = state is null ? string.Empty : Str(state, "status");
                if (o.ToolDetails && state?["input"] is { } input && IsTruthy(input))
                {
                    sb.Append("\n**Input:**\n```json\n").Append(JsJson.ToText(input)).Append("\n```\n");
                }

                if (o.ToolDetails && status == "completed" && state!["output"] is { } output && IsTruthy(output))
                {
                    sb.Append("\n**Output:**\n```\n").Append(JsString(output)).Append("\n```\n");
                }

                if (o.ToolDetails && status == "error" && state!["error"] is { } error && IsTruthy(error))
                {
                    sb.Append("\n**Error:**\n```\n").Append(JsString(error)).Append("\n```\n");
                }

                sb.Append('\n');
                break;
        }
    }

    /// <summary><c>new Date(ms).toLocaleString()</c> as Bun/Node print it for en-US, in the local time zone:
    /// <c>2/14/2026, 5:20:11 AM</c> (a plain space before AM/PM, as the real binary prints).</summary>
    public static string LocaleString(double ms, TimeZoneInfo? zone = null)
    {
        if (double.IsNaN(ms) || double.IsInfinity(ms) || Math.Abs(ms) > 8.64e15)
        {
            return "Invalid Date";
        }

        var t = TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Truncate(ms)), zone ?? TimeZoneInfo.Local);
        return t.ToString("M/d/yyyy, h:mm:ss tt", CultureInfo.InvariantCulture);
    }

    /// <summary>JavaScript's <c>Number.prototype.toFixed(1)</c>: the exact binary value rounded, ties up.</summary>
    public static string ToFixed1(double x)
    {
        if (double.IsNaN(x) || double.IsInfinity(x) || Math.Abs(x) >= 1e15)
        {
            return x.ToString("F1", CultureInfo.InvariantCulture);
        }

        decimal d = ExactDecimal(x);
        return Math.Round(d, 1, MidpointRounding.AwayFromZero).ToString("0.0", CultureInfo.InvariantCulture);
    }

    private static decimal ExactDecimal(double x)
    {
        // x = mantissa * 2^exponent exactly; build it in decimal (exact for |x| < 1e15 and the exponents used here).
        long bits = BitConverter.DoubleToInt64Bits(x);
        bool negative = bits < 0;
        int exponent = (int)((bits >> 52) & 0x7FF);
        long mantissa = bits & 0xFFFFFFFFFFFFFL;
        if (exponent == 0)
        {
            exponent++;
        }
        else
        {
            mantissa |= 1L << 52;
        }

        exponent -= 1075;
        decimal result = mantissa;
        // Scale by powers of two; decimal keeps 28-29 significant digits, far more than toFixed(1) needs.
        while (exponent > 0)
        {
            result *= 2;
            exponent--;
        }

        while (exponent < 0 && result != 0)
        {
            result /= 2;
            exponent++;
        }

        return negative ? -result : result;
    }

    /// <summary>OpenCode's <c>Locale.titlecase</c>: <c>str.replace(/\b\w/g, c =&gt; c.toUpperCase())</c>.</summary>
    public static string TitleCase(string s) => WordStart().Replace(s, c => c.Value.ToUpperInvariant());

    [GeneratedRegex(@"\b[A-Za-z0-9_]", RegexOptions.ECMAScript)]
    private static partial Regex WordStart();

    private static string Str(JsonObject o, string key) => o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : string.Empty;

    /// <summary>How a template literal prints a value: strings as they are, <c>undefined</c> when missing.</summary>
    private static string JsString(JsonNode? n) => n switch
    {
        null => "undefined",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => JsJson.FormatNumber(v.GetValue<double>()),
        JsonValue v => v.ToJsonString(),
        JsonArray a => string.Join(",", a.Select(JsString)),
        _ => "[object Object]",
    };

    private static double Num(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : 0;

    private static bool IsTrue(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.True;

    private static bool IsTruthy(JsonNode n) => n switch
    {
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>().Length > 0,
            JsonValueKind.Number => v.GetValue<double>() is not (0 or double.NaN),
            JsonValueKind.True => true,
            _ => false,
        },
        _ => true,
    };
}
