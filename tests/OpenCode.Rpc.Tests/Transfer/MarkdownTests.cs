using OpenCode.Rpc.Core.Transfer;
using OpenCode.Rpc.Tests.Infrastructure;
using static OpenCode.Rpc.Tests.Transfer.TransferTestKit;

namespace OpenCode.Rpc.Tests.Transfer;

/// <summary>The Markdown export against reference §7.3, rule by rule, on the real fixture session.</summary>
public sealed class MarkdownTests
{
    // The fixture's times: session created 1795468723935, updated 1795468730419 (ms since epoch).
    private static string Date(long ms) => SessionExporter.LocaleString(ms);

    [Fact]
    public async Task Markdown_AllOptions_FollowsEveryRuleOfTheReference()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, ExportFixture("fake-llm-session-with-tool.json"), FixtureProject);
        string md = await ExportAsync(store, r.SessionID, new ExportOptions(ExportFormat.Markdown, Thinking: true, ToolDetails: true, AssistantMetadata: true));
        string expected =
            // header: title, id, created, updated, rule
            "# fake llm session\n\n" +
            "**Session ID:** ses_df5b97920ffeUFbu7k46fCazeu\n" +
            $"**Created:** {Date(1795468723935)}\n" +
            $"**Updated:** {Date(1795468730419)}\n\n" +
            "---\n\n" +
            // user: "## User", each non-synthetic text part then a blank line, then the rule
            "## User\n\nsay hi\n\n---\n\n" +
            // assistant with metadata: Titlecase(agent) · modelID · ((completed-created)/1000).toFixed(1)s;
            // step-start / step-finish parts print nothing
            "## Assistant (Build · fake-model · 1.9s)\n\nFake reply.\n\n---\n\n" +
            "## User\n\nplease WRITE /tmp/ocproj now\n\n---\n\n" +
            // tool with details: name, input as JSON.stringify(input,null,2), output fenced; patch parts print nothing
            "## Assistant (Build · fake-model · 0.5s)\n\n" +
            "**Tool: write**\n\n**Input:**\n```json\n{\n  \"filePath\": \"/tmp/ocproj/hello.txt\",\n  \"content\": \"hello from fake llm\\n\"\n}\n```\n\n" +
            "**Output:**\n```\nWrote file successfully.\n```\n\n" +
            "---\n\n" +
            "## Assistant (Build · fake-model · 0.4s)\n\nDone: wrote the file.\n\n---\n\n";
        Assert.Equal(expected, md);
    }

    [Fact]
    public async Task Markdown_NoOptions_PlainHeadersAndToolNameOnly()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, ExportFixture("fake-llm-session-with-tool.json"), FixtureProject);
        string md = await ExportAsync(store, r.SessionID, new ExportOptions(ExportFormat.Markdown));
        Assert.Contains("## Assistant\n\n**Tool: write**\n\n---\n\n", md, StringComparison.Ordinal);
        Assert.DoesNotContain("**Input:**", md, StringComparison.Ordinal);
        Assert.DoesNotContain("(Build", md, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Markdown_ReasoningOnlyWithThinking_SyntheticTextNever_ErrorsWithDetails()
    {
        using var dirs = new TestDirs();
        var store = NewStore(dirs);
        var r = await ImportFileAsync(store, Data("every-field.export.json"), FixtureProject);
        string plain = await ExportAsync(store, r.SessionID, new ExportOptions(ExportFormat.Markdown));
        string full = await ExportAsync(store, r.SessionID, new ExportOptions(ExportFormat.Markdown, Thinking: true, ToolDetails: true, AssistantMetadata: true));
        Assert.DoesNotContain("_Thinking:_", plain, StringComparison.Ordinal);
        Assert.Contains("_Thinking:_\n\nthinking secret\n\n", full, StringComparison.Ordinal);
        Assert.Contains("**Tool: bash**\n\n**Input:**\n```json\n{\n  \"command\": \"rm -rf\"\n}\n```\n\n**Error:**\n```\nerr secret\n```\n\n", full, StringComparison.Ordinal);
        // a running tool with input {} still prints it (an object is truthy in JavaScript)
        Assert.Contains("**Tool: bash**\n\n**Input:**\n```json\n{}\n```\n\n", full, StringComparison.Ordinal);
        Assert.Contains("## Assistant (Build · m · 2.4s)\n\n", full, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1771046411000L, "UTC", "2/14/2026, 5:20:11 AM")] // printed by the real 1.18.33 binary (Bun), TZ=UTC
    [InlineData(1771046411000L, "America/New_York", "2/14/2026, 12:20:11 AM")] // and with TZ=America/New_York
    public void LocaleString_IsWhatBunPrintsForEnUs(long ms, string zone, string expected)
    {
        Assert.Equal(expected, SessionExporter.LocaleString(ms, TimeZoneInfo.FindSystemTimeZoneById(zone)));
    }

    [Theory]
    [InlineData(1.15, "1.1")] // node: (1.15).toFixed(1)
    [InlineData(1.25, "1.3")]
    [InlineData(1.05, "1.1")]
    [InlineData(0.45, "0.5")]
    [InlineData(1234.55, "1234.5")]
    public void ToFixed1_MatchesJavaScript(double x, string expected) => Assert.Equal(expected, SessionExporter.ToFixed1(x));

    [Theory]
    [InlineData("build", "Build")]
    [InlineData("my-agent x", "My-Agent X")]
    [InlineData("snake_case", "Snake_case")]
    public void TitleCase_IsOpenCodesLocaleTitlecase(string s, string expected) => Assert.Equal(expected, SessionExporter.TitleCase(s));
}
