using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Core.Json;

/// <summary>
/// Reads and writes JSON exactly as OpenCode's <c>JSON.stringify(value, null, 2)</c> does, so the store
/// stays byte-compatible: 2-space indentation, keys in insertion order, raw UTF-8 (JavaScript escapes only
/// quotes, backslashes, control characters and lone surrogates), JavaScript number formatting, and no
/// trailing newline. System.Text.Json's own writer escapes non-ASCII and formats numbers differently,
/// which is why this writer exists.
/// </summary>
public static class JsJson
{
    /// <summary>Deep enough for any tool input a model produces, shallow enough to stop a nesting bomb.</summary>
    public const int MaxDepth = 256;

    private static readonly JsonNodeOptions NodeOptions = new() { PropertyNameCaseInsensitive = false };
    private static readonly JsonDocumentOptions DocOptions = new()
    {
        MaxDepth = MaxDepth,
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowDuplicateProperties = false,
    };

    /// <summary>Parses UTF-8 JSON. Throws <see cref="JsonException"/> (with line and byte position) on bad input,
    /// including duplicate keys, which JavaScript would silently collapse.</summary>
    public static JsonNode? Parse(ReadOnlySpan<byte> utf8) => Parse(utf8, MaxDepth);

    /// <summary>As <see cref="Parse(ReadOnlySpan{byte})"/>, with another nesting cap (an import has its own).</summary>
    public static JsonNode? Parse(ReadOnlySpan<byte> utf8, int maxDepth)
    {
        if (utf8.Length >= 3 && utf8[0] == 0xEF && utf8[1] == 0xBB && utf8[2] == 0xBF)
        {
            utf8 = utf8[3..];
        }

        // System.Text.Json decodes strings lazily, so invalid UTF-8 inside a string would only surface later, as an
        // InvalidOperationException in whatever code first reads the value (a list, a writer). Refuse it here.
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
        {
            throw new JsonException("The text is not valid UTF-8.");
        }

        try
        {
            // AllowDuplicateProperties=false: a duplicate key (a classic smuggling trick) is an error here,
            // where JavaScript would silently keep the last one.
            return Materialize(JsonNode.Parse(utf8, NodeOptions, maxDepth == MaxDepth ? DocOptions : DocOptions with { MaxDepth = maxDepth }));
        }
        catch (ArgumentException ex)
        {
            throw new JsonException(ex.Message, ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new JsonException(ex.Message, ex);
        }
    }

    public static JsonNode? Parse(string json) => Parse(Encoding.UTF8.GetBytes(json));

    /// <summary>As <see cref="Parse(ReadOnlySpan{byte})"/>, over an array the caller hands over and never changes
    /// again: the parsed nodes read their strings from it instead of from a copy. A store file is parsed this way,
    /// so reading a 2 MB part costs one 2 MB buffer, not two.</summary>
    public static JsonNode? ParseOwned(byte[] utf8)
    {
        var memory = CheckedText(utf8);

        try
        {
            var root = JsonDocument.Parse(memory, DocOptions).RootElement;
            return Materialize(root.ValueKind switch
            {
                JsonValueKind.Object => JsonObject.Create(root, NodeOptions),
                JsonValueKind.Array => JsonArray.Create(root, NodeOptions),
                JsonValueKind.Null => null,
                _ => JsonValue.Create(root, NodeOptions),
            });
        }
        catch (ArgumentException ex)
        {
            throw new JsonException(ex.Message, ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new JsonException(ex.Message, ex);
        }
    }

    /// <summary>The text of a file without its byte order mark, refused unless it is valid UTF-8 (System.Text.Json decodes
    /// strings lazily, so invalid UTF-8 would only surface in whatever code first reads the value).</summary>
    private static ReadOnlyMemory<byte> CheckedText(byte[] utf8)
    {
        var memory = utf8.AsMemory();
        if (memory.Length >= 3 && utf8[0] == 0xEF && utf8[1] == 0xBB && utf8[2] == 0xBF)
        {
            memory = memory[3..];
        }

        if (!System.Text.Unicode.Utf8.IsValid(memory.Span))
        {
            throw new JsonException("The text is not valid UTF-8.");
        }

        return memory;
    }

    /// <summary>Parses an object; anything else is a <see cref="JsonException"/>.</summary>
    public static JsonObject ParseObject(ReadOnlySpan<byte> utf8) =>
        Parse(utf8) as JsonObject ?? throw new JsonException("Expected a JSON object.");

    // JsonObject builds its dictionary lazily on first access, which is not thread-safe. Cached store
    // objects are read by many requests at once, so build every level eagerly right after parsing.
    // It also replaces strings System.Text.Json cannot decode: JSON.stringify writes a lone surrogate as "\ud800",
    // which JavaScript reads back, but JsonElement.GetString throws on it (at whatever point first reads the value).
    // Such a string is decoded here by hand into a .NET string holding the same lone surrogate, which the writer
    // escapes back exactly as JavaScript did.
    private static JsonNode? Materialize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                List<(string Key, JsonNode Value)>? fixes = null;
                foreach (var kv in obj)
                {
                    var m = Materialize(kv.Value);
                    if (!ReferenceEquals(m, kv.Value))
                    {
                        (fixes ??= []).Add((kv.Key, m!));
                    }
                }

                foreach (var (key, value) in fixes ?? [])
                {
                    obj[key] = value;
                }

                break;
            case JsonArray arr:
                for (int i = 0; i < arr.Count; i++)
                {
                    var item = arr[i];
                    var m = Materialize(item);
                    if (!ReferenceEquals(m, item))
                    {
                        arr[i] = m;
                    }
                }

                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String && v.TryGetValue(out JsonElement el):
                var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(el);
                if (HasLoneSurrogateEscape(raw))
                {
                    return JsonValue.Create(UnescapeLoose(Encoding.UTF8.GetString(raw)));
                }

                break;
        }

        return node;
    }

    /// <summary>Whether a raw JSON string token escapes a surrogate that is not half of a pair (<c>"\ud800"</c>), which
    /// <see cref="JsonElement.GetString"/> refuses. Scans the bytes instead of decoding them: decoding a 2 MB tool
    /// output just to find out allocated a 4 MB string per read.</summary>
    private static bool HasLoneSurrogateEscape(ReadOnlySpan<byte> raw)
    {
        int i = raw.IndexOf("\\u"u8);
        if (i < 0)
        {
            return false;
        }

        bool pendingHigh = false;
        for (; i < raw.Length; i++)
        {
            if (raw[i] != '\\')
            {
                if (pendingHigh)
                {
                    return true;
                }

                continue;
            }

            if (raw[i + 1] != 'u')
            {
                if (pendingHigh)
                {
                    return true;
                }

                i++; // a two-character escape (\\ included), skipped whole
                continue;
            }

            int cu = Hex4(raw.Slice(i + 2, 4));
            i += 5;
            if (char.IsHighSurrogate((char)cu))
            {
                if (pendingHigh)
                {
                    return true;
                }

                pendingHigh = true;
            }
            else if (char.IsLowSurrogate((char)cu))
            {
                if (!pendingHigh)
                {
                    return true;
                }

                pendingHigh = false;
            }
            else if (pendingHigh)
            {
                return true;
            }
        }

        return pendingHigh;
    }

    /// <summary>The value of the 4 hex digits of a <c>\uXXXX</c> escape (the parser has checked they are hex digits).</summary>
    private static int Hex4(ReadOnlySpan<byte> hex)
    {
        int v = 0;
        foreach (byte b in hex[..4])
        {
            v = (v << 4) + (b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10);
        }

        return v;
    }

    /// <summary>Decodes a JSON string literal (with its quotes) as JavaScript's JSON.parse does, lone surrogates included.</summary>
    private static string UnescapeLoose(string literal)
    {
        var sb = new StringBuilder(literal.Length);
        for (int i = 1; i < literal.Length - 1; i++)
        {
            char c = literal[i];
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }

            char e = literal[++i];
            switch (e)
            {
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'u':
                    sb.Append((char)int.Parse(literal.AsSpan(i + 1, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                    i += 4;
                    break;
                default: sb.Append(e); break; // \" \\ \/
            }
        }

        return sb.ToString();
    }

    /// <summary>Serializes as <c>JSON.stringify(node, null, 2)</c> would, to UTF-8 bytes.</summary>
    public static byte[] ToBytes(JsonNode? node, bool indented = true)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        Write(buffer, node, indented);
        return buffer.WrittenSpan.ToArray();
    }

    public static string ToText(JsonNode? node, bool indented = true) => Encoding.UTF8.GetString(ToBytes(node, indented));

    /// <summary>
    /// The bytes <see cref="ToBytes"/> gives for a copy of <paramref name="obj"/> after <c>copy[key] = value</c> for each
    /// of <paramref name="set"/> in turn (distinct keys): a key that exists keeps its place, a new one is appended. A
    /// fork writes thousands of objects that differ from their source only in their ids; this spares cloning each.
    /// </summary>
    public static byte[] ToBytesWith(JsonObject obj, params (string Key, string Value)[] set)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        new Writer(buffer, indented: true).ObjectWith(obj, set);
        return buffer.WrittenSpan.ToArray();
    }

    public static void Write(IBufferWriter<byte> output, JsonNode? node, bool indented = true)
    {
        var w = new Writer(output, indented);
        w.Value(node, 0);
    }

    /// <summary>Writes a value with its nested lines indented by <paramref name="depth"/> levels; used by
    /// streaming exporters that emit an outer envelope themselves.</summary>
    public static void Write(IBufferWriter<byte> output, JsonNode? node, int depth, bool indented = true)
    {
        var w = new Writer(output, indented);
        w.Value(node, depth);
    }

    /// <summary>
    /// Parses a store file into a document instead of nodes, with the checks of <see cref="ParseOwned"/> (UTF-8, depth,
    /// duplicate keys). A document is one pass over the bytes and a pooled index of them; nodes are an object per value.
    /// A one-pass writer (the CLI's export) writes it with <see cref="Write(IBufferWriter{byte}, JsonElement, int)"/>
    /// and disposes it. The document reads <paramref name="utf8"/> in place: never change the array afterwards.
    /// </summary>
    public static JsonDocument ParseDocument(byte[] utf8)
    {
        var memory = CheckedText(utf8);

        try
        {
            return JsonDocument.Parse(memory, DocOptions);
        }
        catch (ArgumentException ex)
        {
            throw new JsonException(ex.Message, ex);
        }
    }

    /// <summary>Writes a parsed element exactly as <see cref="Write(IBufferWriter{byte}, JsonNode?, int, bool)"/> writes the
    /// same text parsed into nodes: keys in their order, strings and integers copied from the source bytes (escapes
    /// rewritten the JavaScript way), other numbers formatted as JavaScript does.</summary>
    public static void Write(IBufferWriter<byte> output, JsonElement element, int depth)
    {
        var w = new Writer(output, indented: true);
        w.Element(element, depth);
    }

    /// <summary>A JSON number as double, whether the node was parsed (JsonElement-backed) or built from a CLR value.</summary>
    public static double? Number(JsonNode? n)
    {
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number)
        {
            return null;
        }

        if (v.TryGetValue(out double d))
        {
            return d;
        }

        if (v.TryGetValue(out long l))
        {
            return l;
        }

        if (v.TryGetValue(out int i))
        {
            return i;
        }

        return v.TryGetValue(out decimal m) ? (double)m : double.TryParse(v.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out d) ? d : null;
    }

    /// <summary>A JSON number as a whole number (truncated), or null when the node is not a number.</summary>
    public static long? Long(JsonNode? n) => Number(n) is double d ? (long)d : null;

    /// <summary>Formats a double the way JavaScript's <c>Number.prototype.toString</c> does.</summary>
    public static string FormatNumber(double d)
    {
        if (double.IsNaN(d) || double.IsInfinity(d))
        {
            return "null"; // JSON.stringify writes non-finite numbers as null
        }

        if (d == 0)
        {
            return "0";
        }

        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        string digits;
        int n; // position of the decimal point relative to the first significant digit
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            string mant = r[..e];
            int exp = int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            int dot = mant.IndexOf('.');
            digits = dot >= 0 ? mant.Remove(dot, 1) : mant;
            n = (dot >= 0 ? dot : mant.Length) + exp;
        }
        else
        {
            int dot = r.IndexOf('.');
            string intPart = dot >= 0 ? r[..dot] : r;
            string frac = dot >= 0 ? r[(dot + 1)..] : string.Empty;
            digits = intPart + frac;
            n = intPart.Length;
        }

        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
        {
            lead++;
        }

        digits = digits[lead..];
        n -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            return "0";
        }

        int k = digits.Length;
        var sb = new StringBuilder(32);
        if (d < 0)
        {
            sb.Append('-');
        }

        if (k <= n && n <= 21)
        {
            sb.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
        }
        else if (-6 < n && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            int exp = n - 1;
            sb.Append(digits[0]);
            if (k > 1)
            {
                sb.Append('.').Append(digits, 1, k - 1);
            }

            sb.Append('e').Append(exp >= 0 ? '+' : '-').Append(Math.Abs(exp).ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    private ref struct Writer(IBufferWriter<byte> output, bool indented)
    {
        private readonly IBufferWriter<byte> output = output;
        private readonly bool indented = indented;

        public void Value(JsonNode? node, int depth)
        {
            switch (node)
            {
                case null:
                    Raw("null"u8);
                    break;
                case JsonObject obj:
                    Object(obj, depth);
                    break;
                case JsonArray arr:
                    Array(arr, depth);
                    break;
                case JsonValue val:
                    Scalar(val);
                    break;
            }
        }

        public void Element(JsonElement el, int depth)
        {
            switch (el.ValueKind)
            {
                case JsonValueKind.Object:
                    bool first = true;
                    foreach (var prop in el.EnumerateObject())
                    {
                        Raw(first ? "{"u8 : ","u8);
                        first = false;
                        NewLine(depth + 1);
                        RawString(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8PropertyName(prop), quoted: false);
                        Raw(": "u8);
                        Element(prop.Value, depth + 1);
                    }

                    if (first)
                    {
                        Raw("{}"u8);
                        return;
                    }

                    NewLine(depth);
                    Raw("}"u8);
                    break;
                case JsonValueKind.Array:
                    if (el.GetArrayLength() == 0)
                    {
                        Raw("[]"u8);
                        return;
                    }

                    Raw("["u8);
                    bool head = true;
                    foreach (var item in el.EnumerateArray())
                    {
                        if (!head)
                        {
                            Raw(","u8);
                        }

                        head = false;
                        NewLine(depth + 1);
                        Element(item, depth + 1);
                    }

                    NewLine(depth);
                    Raw("]"u8);
                    break;
                case JsonValueKind.String:
                    RawString(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(el));
                    break;
                case JsonValueKind.Number:
                    // The node writer's order of tries: a whole number within 2^53 as it is (JSON has no leading zeros,
                    // so its text is the number's own, "-0" aside), anything else through a double.
                    var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(el);
                    if (el.TryGetInt64(out long l) && Math.Abs(l) <= (1L << 53))
                    {
                        Raw(l == 0 ? "0"u8 : raw);
                    }
                    else
                    {
                        Ascii(FormatNumber(el.TryGetDouble(out var d) ? d : double.PositiveInfinity));
                    }

                    break;
                case JsonValueKind.True:
                    Raw("true"u8);
                    break;
                case JsonValueKind.False:
                    Raw("false"u8);
                    break;
                default:
                    Raw("null"u8);
                    break;
            }
        }

        private void Object(JsonObject obj, int depth)
        {
            if (obj.Count == 0)
            {
                Raw("{}"u8);
                return;
            }

            Raw("{"u8);
            bool first = true;
            foreach (var kv in obj)
            {
                if (!first)
                {
                    Raw(","u8);
                }

                first = false;
                NewLine(depth + 1);
                String(kv.Key);
                Raw(indented ? ": "u8 : ":"u8);
                Value(kv.Value, depth + 1);
            }

            NewLine(depth);
            Raw("}"u8);
        }

        public void ObjectWith(JsonObject obj, (string Key, string Value)[] set)
        {
            if (obj.Count == 0 && set.Length == 0)
            {
                Raw("{}"u8);
                return;
            }

            Raw("{"u8);
            bool first = true;
            foreach (var kv in obj)
            {
                int at = set.Length - 1;
                while (at >= 0 && !string.Equals(set[at].Key, kv.Key, StringComparison.Ordinal))
                {
                    at--;
                }

                Member(ref first, kv.Key);
                if (at >= 0)
                {
                    String(set[at].Value);
                }
                else
                {
                    Value(kv.Value, 1);
                }
            }

            foreach (var (key, value) in set)
            {
                if (!obj.ContainsKey(key))
                {
                    Member(ref first, key);
                    String(value);
                }
            }

            NewLine(0);
            Raw("}"u8);
        }

        /// <summary>The separator, line and key of a member of a top-level object.</summary>
        private void Member(ref bool first, string key)
        {
            if (!first)
            {
                Raw(","u8);
            }

            first = false;
            NewLine(1);
            String(key);
            Raw(indented ? ": "u8 : ":"u8);
        }

        private void Array(JsonArray arr, int depth)
        {
            if (arr.Count == 0)
            {
                Raw("[]"u8);
                return;
            }

            Raw("["u8);
            for (int i = 0; i < arr.Count; i++)
            {
                if (i > 0)
                {
                    Raw(","u8);
                }

                NewLine(depth + 1);
                Value(arr[i], depth + 1);
            }

            NewLine(depth);
            Raw("]"u8);
        }

        private void Scalar(JsonValue val)
        {
            switch (val.GetValueKind())
            {
                case JsonValueKind.String when val.TryGetValue(out JsonElement el):
                    // Straight from the parsed bytes: no .NET string of a 2 MB tool output is ever built to write it.
                    RawString(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(el));
                    break;
                case JsonValueKind.String:
                    String(val.GetValue<string>());
                    break;
                case JsonValueKind.True:
                    Raw("true"u8);
                    break;
                case JsonValueKind.False:
                    Raw("false"u8);
                    break;
                case JsonValueKind.Number:
                    Number(val);
                    break;
                case JsonValueKind.Null:
                    Raw("null"u8);
                    break;
                default:
                    // A JsonValue wrapping an object/array element (rare: built from a JsonElement) is written
                    // through a node re-parse so its keys keep their order.
                    Value(JsonNode.Parse(val.ToJsonString()), 0);
                    break;
            }
        }

        private void Number(JsonValue val)
        {
            if (val.TryGetValue(out long l))
            {
                // Integers within 2^53 print the same in JavaScript; larger ones lose precision there, too.
                if (Math.Abs(l) <= (1L << 53))
                {
                    Ascii(l.ToString(CultureInfo.InvariantCulture));
                    return;
                }
            }

            if (val.TryGetValue(out int i))
            {
                Ascii(i.ToString(CultureInfo.InvariantCulture));
                return;
            }

            double d;
            if (val.TryGetValue(out JsonElement el))
            {
                d = el.TryGetDouble(out var dd) ? dd : double.PositiveInfinity;
            }
            else if (val.TryGetValue(out double dv))
            {
                d = dv;
            }
            else if (val.TryGetValue(out decimal m))
            {
                d = (double)m;
            }
            else if (val.TryGetValue(out float f))
            {
                d = f;
            }
            else if (val.TryGetValue(out ulong ul))
            {
                d = ul;
            }
            else
            {
                d = double.Parse(val.ToJsonString(), CultureInfo.InvariantCulture);
            }

            Ascii(FormatNumber(d));
        }

        private void NewLine(int depth)
        {
            if (!indented)
            {
                return;
            }

            int n = 1 + (depth * 2);
            var span = output.GetSpan(n);
            span[0] = (byte)'\n';
            span.Slice(1, depth * 2).Fill((byte)' ');
            output.Advance(n);
        }

        private void Raw(ReadOnlySpan<byte> bytes)
        {
            var span = output.GetSpan(bytes.Length);
            bytes.CopyTo(span);
            output.Advance(bytes.Length);
        }

        private void Ascii(string s)
        {
            var span = output.GetSpan(s.Length);
            for (int i = 0; i < s.Length; i++)
            {
                span[i] = (byte)s[i];
            }

            output.Advance(s.Length);
        }

        private void String(string s)
        {
            Raw("\""u8);
            StringBody(s);
            Raw("\""u8);
        }

        /// <summary>The characters of a string, escaped as JSON.stringify does. Worst case: every UTF-16 unit becomes a
        /// 6-byte escape. A long string (a tool's 2 MB output) goes in slices, so the buffer asked of the writer stays
        /// small: asking for 6x the whole string made each big part a fresh 12 MB allocation.</summary>
        private void StringBody(scoped ReadOnlySpan<char> s)
        {
            const int Slice = 8 * 1024;
            int i = 0;
            while (i < s.Length)
            {
                int end = Math.Min(s.Length, i + Slice);
                if (end < s.Length && char.IsHighSurrogate(s[end - 1]))
                {
                    end--; // a surrogate pair stays in one slice
                }

                var span = output.GetSpan((end - i) * 6);
                int p = 0;
                for (; i < end; i++)
                {
                    char c = s[i];
                    if (c < 0x80)
                    {
                        switch (c)
                        {
                            case '"': span[p++] = (byte)'\\'; span[p++] = (byte)'"'; break;
                            case '\\': span[p++] = (byte)'\\'; span[p++] = (byte)'\\'; break;
                            case '\b': span[p++] = (byte)'\\'; span[p++] = (byte)'b'; break;
                            case '\f': span[p++] = (byte)'\\'; span[p++] = (byte)'f'; break;
                            case '\n': span[p++] = (byte)'\\'; span[p++] = (byte)'n'; break;
                            case '\r': span[p++] = (byte)'\\'; span[p++] = (byte)'r'; break;
                            case '\t': span[p++] = (byte)'\\'; span[p++] = (byte)'t'; break;
                            default:
                                if (c < 0x20)
                                {
                                    p += EscapeU(span[p..], c);
                                }
                                else
                                {
                                    span[p++] = (byte)c;
                                }

                                break;
                        }
                    }
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                    {
                        int cp = char.ConvertToUtf32(c, s[i + 1]);
                        i++;
                        span[p++] = (byte)(0xF0 | (cp >> 18));
                        span[p++] = (byte)(0x80 | ((cp >> 12) & 0x3F));
                        span[p++] = (byte)(0x80 | ((cp >> 6) & 0x3F));
                        span[p++] = (byte)(0x80 | (cp & 0x3F));
                    }
                    else if (char.IsSurrogate(c))
                    {
                        // Well-formed JSON.stringify (ES2019) escapes lone surrogates with lowercase hex.
                        p += EscapeU(span[p..], c);
                    }
                    else if (c < 0x800)
                    {
                        span[p++] = (byte)(0xC0 | (c >> 6));
                        span[p++] = (byte)(0x80 | (c & 0x3F));
                    }
                    else
                    {
                        span[p++] = (byte)(0xE0 | (c >> 12));
                        span[p++] = (byte)(0x80 | ((c >> 6) & 0x3F));
                        span[p++] = (byte)(0x80 | (c & 0x3F));
                    }
                }

                output.Advance(p);
            }
        }

        /// <summary>
        /// Writes a parsed string token (raw JSON, quotes included, valid UTF-8) exactly as <see cref="String"/> writes
        /// the decoded string, without decoding it: the source's escapes are rewritten the JavaScript way (<c>\/</c>
        /// and <c>\u00e9</c> become the character, controls take their short or lowercase <c>\u00XX</c> form, an
        /// escaped pair becomes its 4-byte UTF-8, a lone surrogate stays <c>\udXXX</c>); the rest is copied, in slices.
        /// Unescaped bytes need no change: JSON forbids raw controls in strings and the text is valid UTF-8.
        /// </summary>
        private void RawString(ReadOnlySpan<byte> raw, bool quoted = true)
        {
            // A property name comes without its quotes (JsonMarshal.GetRawUtf8PropertyName), a value with them.
            var body = quoted ? raw[1..^1] : raw;
            Raw("\""u8);
            int i = 0;
            while (i < body.Length)
            {
                int bs = body[i..].IndexOf((byte)'\\');
                if (bs < 0)
                {
                    Copy(body[i..]);
                    break;
                }

                Copy(body.Slice(i, bs));
                i += bs;
                byte e = body[i + 1];
                if (e != 'u')
                {
                    // \" \\ \b \f \n \r \t are written the same way by JavaScript; \/ is just a slash.
                    Copy(e == '/' ? "/"u8 : body.Slice(i, 2));
                    i += 2;
                    continue;
                }

                int cu = Hex4(body.Slice(i + 2, 4));
                i += 6;
                if (char.IsHighSurrogate((char)cu) && i + 6 <= body.Length && body[i] == '\\' && body[i + 1] == 'u'
                    && Hex4(body.Slice(i + 2, 4)) is int low && char.IsLowSurrogate((char)low))
                {
                    i += 6;
                    int cp = char.ConvertToUtf32((char)cu, (char)low);
                    var span = output.GetSpan(4);
                    span[0] = (byte)(0xF0 | (cp >> 18));
                    span[1] = (byte)(0x80 | ((cp >> 12) & 0x3F));
                    span[2] = (byte)(0x80 | ((cp >> 6) & 0x3F));
                    span[3] = (byte)(0x80 | (cp & 0x3F));
                    output.Advance(4);
                    continue;
                }

                // One UTF-16 unit: String() writes it, escapes included, exactly as JavaScript would.
                Span<char> one = [(char)cu];
                StringBody(one);
            }

            Raw("\""u8);
        }

        /// <summary>Copies bytes that need no change, at most 64 KiB per buffer asked of the writer.</summary>
        private void Copy(ReadOnlySpan<byte> bytes)
        {
            while (bytes.Length > 0)
            {
                int n = Math.Min(bytes.Length, 64 * 1024);
                Raw(bytes[..n]);
                bytes = bytes[n..];
            }
        }

        private static int EscapeU(Span<byte> dest, char c)
        {
            const string hex = "0123456789abcdef";
            dest[0] = (byte)'\\';
            dest[1] = (byte)'u';
            dest[2] = (byte)hex[(c >> 12) & 0xF];
            dest[3] = (byte)hex[(c >> 8) & 0xF];
            dest[4] = (byte)hex[(c >> 4) & 0xF];
            dest[5] = (byte)hex[c & 0xF];
            return 6;
        }
    }
}
