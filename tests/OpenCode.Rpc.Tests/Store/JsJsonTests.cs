using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;

namespace OpenCode.Rpc.Tests.Store;

public sealed class JsJsonTests
{
    public static TheoryData<string> FixtureFiles()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(Samples.FixtureStorage, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(Samples.FixtureStorage, f));
        }

        return data;
    }

    [Fact]
    public void FixtureStore_HasTheFilesWeExpect()
    {
        // 1 project, 1 session, 5 messages, 12 parts and the migration marker
        Assert.Equal(20, FixtureFiles().Count);
    }

    [Theory]
    [MemberData(nameof(FixtureFiles))]
    public void FixtureFile_ParsedAndWrittenBack_IsByteIdentical(string relative)
    {
        byte[] original = File.ReadAllBytes(Path.Combine(Samples.FixtureStorage, relative));
        byte[] written = JsJson.ToBytes(JsJson.Parse(original));
        Assert.Equal(Encoding.UTF8.GetString(original), Encoding.UTF8.GetString(written));
        Assert.Equal(original, written);
    }

    [Theory]
    [InlineData(0.0, "0")]
    [InlineData(1e21, "1e+21")]
    [InlineData(1e20, "100000000000000000000")]
    [InlineData(1.5e-7, "1.5e-7")]
    [InlineData(0.000001, "0.000001")]
    [InlineData(0.1, "0.1")]
    [InlineData(0.1 + 0.2, "0.30000000000000004")]
    [InlineData(123456789012345680000.0, "123456789012345680000")]
    [InlineData(1795468724363.0, "1795468724363")]
    [InlineData(-1.5, "-1.5")]
    [InlineData(0.0123, "0.0123")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(double.NaN, "null")]
    [InlineData(double.PositiveInfinity, "null")]
    public void FormatNumber_MatchesJavaScript(double value, string expected) => Assert.Equal(expected, JsJson.FormatNumber(value));

    [Fact]
    public void NegativeZero_IsWrittenAs0() => Assert.Equal("0", JsJson.FormatNumber(-0.0));

    [Theory]
    [InlineData("0", "0")]
    [InlineData("-0", "0")]
    [InlineData("1e21", "1e+21")]
    [InlineData("1.5e-7", "1.5e-7")]
    [InlineData("0.1", "0.1")]
    [InlineData("123456789012345680000", "123456789012345680000")]
    [InlineData("1795468724363", "1795468724363")]
    [InlineData("1.0", "1")]
    [InlineData("1E3", "1000")]
    [InlineData("9007199254740993", "9007199254740992")]
    [InlineData("-9007199254740993", "-9007199254740992")]
    [InlineData("100000000000000000000000000000", "1e+29")]
    public void ParsedNumbers_AreWrittenAsJavaScriptWouldPrintThem(string json, string expected) =>
        Assert.Equal(expected, JsJson.ToText(JsJson.Parse(json)));

    [Fact]
    public void Strings_EscapeOnlyWhatJavaScriptEscapes_AndWriteUnicodeRaw()
    {
        string s = "q\"b\\s/\u001f\u0000\b\f\n\r\t\u007f é 日本語 😀 \u2028";
        string expected = "\"q\\\"b\\\\s/\\u001f\\u0000\\b\\f\\n\\r\\t\u007f é 日本語 😀 \u2028\"";
        Assert.Equal(Encoding.UTF8.GetBytes(expected), JsJson.ToBytes(JsonValue.Create(s)));
    }

    // Built in code: xunit's theory-data serializer would mangle lone surrogates.
    [Fact]
    public void LoneSurrogates_AreEscapedLowercase()
    {
        Assert.Equal("\"\\ud800\"", JsJson.ToText(JsonValue.Create("\ud800")));
        Assert.Equal("\"a\\udc00b\"", JsJson.ToText(JsonValue.Create("a\udc00b")));
        Assert.Equal("\"\\udbff\\ud800\"", JsJson.ToText(JsonValue.Create("\udbff\ud800")));
    }

    [Theory]
    [InlineData("\"\\ud800\"")]
    [InlineData("{\n  \"t\": \"a\\udc00b\\ud83d\"\n}")]
    [InlineData("\"\\u00e9\\u65e5\\ud83d\\ude00\"", "\"é日😀\"")]
    public void EscapedText_RoundTripsAsJavaScriptWouldWriteIt(string json, string? expected = null) =>
        Assert.Equal(expected ?? json, JsJson.ToText(JsJson.Parse(json)));

    [Fact]
    public void ObjectsAndArrays_AreIndentedLikeJsonStringifyWith2Spaces_NoTrailingNewline()
    {
        var node = JsJson.Parse("{\"b\":1,\"a\":{},\"c\":[],\"d\":[1,{\"x\":null}],\"e\":true}");
        const string expected = "{\n  \"b\": 1,\n  \"a\": {},\n  \"c\": [],\n  \"d\": [\n    1,\n    {\n      \"x\": null\n    }\n  ],\n  \"e\": true\n}";
        Assert.Equal(expected, JsJson.ToText(node));
    }

    [Theory]
    [InlineData("{\"a\":1,\"a\":2}")]
    [InlineData("{\"x\":{\"a\":1,\"b\":2,\"a\":3}}")]
    [InlineData("[{\"id\":\"ses_a\",\"id\":\"ses_b\"}]")]
    public void DuplicateKeys_AreRejected(string json)
    {
        Assert.ThrowsAny<JsonException>(() => JsJson.Parse(json));
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("")]
    [InlineData("{\"a\":1,}")]
    [InlineData("// c\n{}")]
    public void MalformedJson_IsAJsonException(string json) => Assert.ThrowsAny<JsonException>(() => JsJson.Parse(json));

    [Fact]
    public void InvalidUtf8_IsAJsonException()
    {
        Assert.ThrowsAny<JsonException>(() => JsJson.Parse(new byte[] { (byte)'"', 0xFF, 0xFE, (byte)'"' }));
        Assert.ThrowsAny<JsonException>(() => JsJson.Parse([.. "{\"id\":\"ses_a\",\"title\":\""u8, 0xC3, 0x28, .. "\"}"u8]));
    }

    /// <summary>Characters that exercise every escape rule: quotes, backslash, slash, controls, DEL, 2- and 3-byte
    /// UTF-8, U+2028, a surrogate pair, and lone high and low surrogates.</summary>
    private static readonly string[] Tricky = ["a", "Z", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\u0000", "\u0001", "\u001b", "\u001f", "\u007f", "é", "ü", "✓", "\u2028", "😀", "\ud800", "\udc00", "<", "&", "'"];

    /// <summary>The same string spelled every way JSON allows: raw UTF-8, System.Text.Json's escaping (uppercase
    /// hex, HTML-safe), and every character as a lowercase \uXXXX escape.</summary>
    private static IEnumerable<string> Spellings(string s)
    {
        var raw = new StringBuilder("\"");
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                raw.Append(c).Append(s[++i]); // a pair stays raw UTF-8
            }
            else
            {
                raw.Append(c switch
                {
                    '"' => "\\\"",
                    '\\' => "\\\\",
                    < ' ' => $"\\u{(int)c:x4}",
                    _ when char.IsSurrogate(c) => $"\\u{(int)c:x4}",
                    _ => c.ToString(),
                });
            }
        }

        yield return raw.Append('"').ToString();
        yield return "\"" + string.Concat(s.Select(c => $"\\u{(int)c:x4}")) + "\"";
        yield return "\"" + string.Concat(s.Select(c => c == '/' ? "\\/" : $"\\u{(int)c:X4}")) + "\"";
        if (!s.Any(char.IsSurrogate) || s.Zip(s.Skip(1)).Count(p => char.IsHighSurrogate(p.First) && char.IsLowSurrogate(p.Second)) * 2 == s.Count(char.IsSurrogate))
        {
            yield return JsonSerializer.Serialize(s);
        }
    }

    /// <summary>A string read from a file is written straight from its parsed bytes (no .NET string is built, so a
    /// 2 MB tool output costs no 4 MB string); that writer must give exactly the bytes the string writer gives, for
    /// every spelling of every string. 3,000 random strings, fixed seed.</summary>
    [Fact]
    public void ParsedString_WrittenFromItsBytes_EqualsTheDecodedStringWritten()
    {
        var rng = new Random(20261124);
        for (int n = 0; n < 3000; n++)
        {
            string s = string.Concat(Enumerable.Range(0, rng.Next(0, 12)).Select(_ => Tricky[rng.Next(Tricky.Length)]));
            byte[] expected = JsJson.ToBytes(JsonValue.Create(s));
            foreach (var spelling in Spellings(s))
            {
                byte[] json = Encoding.UTF8.GetBytes("{\"k\":" + spelling + "}");
                Assert.True(expected.AsSpan().SequenceEqual(JsJson.ToBytes(JsJson.Parse(json)!["k"])), $"Parse of {spelling}");
                Assert.True(expected.AsSpan().SequenceEqual(JsJson.ToBytes(JsJson.ParseOwned(json)!["k"])), $"ParseOwned of {spelling}");
                using var doc = JsJson.ParseDocument(json);
                var fromDoc = new System.Buffers.ArrayBufferWriter<byte>();
                JsJson.Write(fromDoc, doc.RootElement.GetProperty("k"), 0);
                Assert.True(expected.AsSpan().SequenceEqual(fromDoc.WrittenSpan), $"ParseDocument of {spelling}");
            }
        }
    }

    /// <summary>Strings longer than the writer's 8 KiB slice, with a surrogate pair across the slice boundary, come out
    /// whole, from a .NET string and from parsed bytes alike.</summary>
    [Theory]
    [InlineData(8191)]
    [InlineData(8192)]
    [InlineData(70_000)]
    public void LongString_WithAPairAcrossTheSliceBoundary_IsWrittenWhole(int prefix)
    {
        string s = new string('a', prefix) + "😀" + new string('é', 9000) + "\"\n" + new string('x', 65_537);
        byte[] expected = Encoding.UTF8.GetBytes("\"" + s.Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"");
        Assert.Equal(expected, JsJson.ToBytes(JsonValue.Create(s)));
        byte[] file = Encoding.UTF8.GetBytes("[" + JsonSerializer.Serialize(s) + "]");
        Assert.Equal(expected, JsJson.ToBytes(JsJson.ParseOwned(file)!.AsArray()[0]));
    }

    /// <summary>The CLI's export writes parsed documents instead of nodes: the same text must come out either way, at
    /// any depth, escaped keys and every spelling of a number included.</summary>
    [Theory]
    [InlineData("{\"b\":1,\"a\":{},\"c\":[],\"d\":[1,{\"x\":null}],\"e\":true,\"f\":false}")]
    [InlineData("{\"k\\u00e9y\\n\\/\":\"v\\ud800\\u00e9\",\"n\":[0,-0,1.0,1E3,1.5e-7,9007199254740993,-9007199254740993,100000000000000000000000000000,1e400,18446744073709551615]}")]
    [InlineData("[[[]],{\"a\":[{}]},\"\\ud83d\\ude00\"]")]
    [InlineData("\ufeff{\"bom\":1}")]
    public void ParsedDocument_IsWrittenLikeTheSameTextParsedIntoNodes(string json)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(json);
        foreach (int depth in new[] { 0, 4 })
        {
            var fromNodes = new System.Buffers.ArrayBufferWriter<byte>();
            JsJson.Write(fromNodes, JsJson.ParseOwned(utf8), depth);
            using var doc = JsJson.ParseDocument(utf8);
            var fromDoc = new System.Buffers.ArrayBufferWriter<byte>();
            JsJson.Write(fromDoc, doc.RootElement, depth);
            Assert.Equal(Encoding.UTF8.GetString(fromNodes.WrittenSpan), Encoding.UTF8.GetString(fromDoc.WrittenSpan));
        }
    }

    [Theory]
    [MemberData(nameof(FixtureFiles))]
    public void FixtureFile_AsADocument_IsWrittenBackByteIdentical(string relative)
    {
        byte[] original = File.ReadAllBytes(Path.Combine(Samples.FixtureStorage, relative));
        using var doc = JsJson.ParseDocument(original);
        var written = new System.Buffers.ArrayBufferWriter<byte>();
        JsJson.Write(written, doc.RootElement, 0);
        Assert.Equal(Encoding.UTF8.GetString(original), Encoding.UTF8.GetString(written.WrittenSpan));
    }

    [Fact]
    public void ParseDocument_RefusesWhatParseRefuses()
    {
        Assert.ThrowsAny<JsonException>(() => JsJson.ParseDocument(Encoding.UTF8.GetBytes("{\"a\":1,\"a\":2}")));
        Assert.ThrowsAny<JsonException>(() => JsJson.ParseDocument([(byte)'"', 0xFF, 0xFE, (byte)'"']));
        Assert.ThrowsAny<JsonException>(() => JsJson.ParseDocument(Encoding.UTF8.GetBytes(new string('[', JsJson.MaxDepth + 1))));
        Assert.ThrowsAny<JsonException>(() => JsJson.ParseDocument([]));
    }

    /// <summary>Fork writes each copy as its source with new ids, without cloning: the bytes must be those of a clone
    /// after the same assignments, whether a key exists (kept in place) or not (appended, in assignment order).</summary>
    [Theory]
    [InlineData("{\"id\":\"prt_1\",\"sessionID\":\"ses_a\",\"messageID\":\"msg_a\",\"type\":\"text\",\"text\":\"h\u00e9\\n\\ud800\",\"time\":{\"start\":1.5}}")]
    [InlineData("{\"type\":\"compaction\",\"tail_start_id\":\"msg_old\",\"id\":\"prt_1\",\"extra\":[1,{\"a\":null}]}")]
    [InlineData("{}")]
    public void ToBytesWith_EqualsAssigningIntoAClone(string json)
    {
        var source = JsJson.ParseOwned(Encoding.UTF8.GetBytes(json))!.AsObject();
        string before = JsJson.ToText(source);
        (string, string)[] set = [("id", "prt_new"), ("sessionID", "ses_new"), ("messageID", "msg_new"), ("tail_start_id", "msg_new0")];
        var clone = source.DeepClone().AsObject();
        foreach (var (k, v) in set)
        {
            clone[k] = v;
        }

        Assert.Equal(JsJson.ToBytes(clone), JsJson.ToBytesWith(source, set));
        Assert.Equal(before, JsJson.ToText(source)); // the source is not touched
    }
}
