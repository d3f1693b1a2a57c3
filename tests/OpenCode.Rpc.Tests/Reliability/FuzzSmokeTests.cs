using OpenCode.Rpc.Fuzz;
using Xunit.Abstractions;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>CI smoke of each fuzz target (tests/OpenCode.Rpc.Fuzz) without AFL: the corpus plus random mutations
/// for a few seconds each. Every crash it ever finds goes into <see cref="Regressions"/>.</summary>
public sealed class FuzzSmokeTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("frame")]
    [InlineData("store")]
    public void Target_SurvivesCorpusAndMutations(string target)
    {
        string crashes = Path.Combine(Path.GetTempPath(), "ocrpc-fuzz-crashes-" + Guid.NewGuid().ToString("N"));
        var r = Smoke.Run(target, Path.Combine(AppContext.BaseDirectory, "corpus", target), TimeSpan.FromSeconds(15), crashes, seed: 7);
        output.WriteLine($"{target}: {r.Executions} executions, {r.Crashes.Count} crashes");
        Assert.True(r.Executions > Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "corpus", target)).Length, "no mutation ran");
        Assert.Empty(r.Crashes);
    }

    /// <summary>Inputs that once crashed a target (none so far), kept as regression tests: add a row per crash.</summary>
    [Theory]
    [InlineData("frame", "Content-Length: 99999999999\r\n\r\n")]
    [InlineData("frame", "content-length: 2\r\n\r\n[]Content-Length:")]
    [InlineData("store", "{\"id\":1,\"id\":2}")]
    public void Regressions(string target, string input) => Targets.All[target](System.Text.Encoding.UTF8.GetBytes(input));

    /// <summary>Found by the store smoke: invalid UTF-8 inside a string parsed, then threw InvalidOperationException
    /// on first read of the value. JsJson now refuses it as a JsonException (so the store reports the file as corrupt).</summary>
    [Fact]
    public void Regression_InvalidUtf8InsideAString_IsARefusalNotACrash()
    {
        byte[] input = [.. "{\"id\":\"ses_a\",\"title\":\""u8, 0xC3, 0x28, .. "\"}"u8];
        Targets.Store(input);
        Assert.Throws<System.Text.Json.JsonException>(() => OpenCode.Rpc.Core.Json.JsJson.Parse(input));
    }

    private static readonly string ImportSeed = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "corpus", "import", "min-1msg.json"));

    /// <summary>Found by the import smoke within seconds: invalid UTF-8 inside a string passed the import parser (it
    /// used System.Text.Json directly) and threw InvalidOperationException when the validator read the value. Now a
    /// clear refusal naming UTF-8.</summary>
    [Fact]
    public void Regression_InvalidUtf8InAnImport_IsARefusalNotACrash()
    {
        byte[] seed = System.Text.Encoding.UTF8.GetBytes(ImportSeed);
        int at = ImportSeed.IndexOf("\"title\":\"", StringComparison.Ordinal) + 9;
        byte[] input = [.. seed[..at], 0xC3, 0x28, .. seed[at..]];
        Targets.Import(input);
        var ex = Assert.Throws<OpenCode.Rpc.Core.InvalidInputException>(() => OpenCode.Rpc.Core.Transfer.SessionImporter.ParseJson(input, "f.json", OpenCode.Rpc.Core.Transfer.ImportLimits.Default));
        Assert.Contains("UTF-8", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Found next to it: a lone surrogate escape, which JavaScript's JSON.parse accepts (and OpenCode writes
    /// back as "\ud800"), threw InvalidOperationException from the validator. It now imports as JavaScript reads it.</summary>
    [Fact]
    public void Regression_LoneSurrogateEscapeInAnImport_ImportsAsJavaScriptReadsIt()
    {
        string json = ImportSeed.Replace("\"title\":\"", "\"title\":\"\\ud800x", StringComparison.Ordinal);
        byte[] input = System.Text.Encoding.UTF8.GetBytes(json);
        Targets.Import(input);
        var data = OpenCode.Rpc.Core.Transfer.SessionImporter.FromJson(OpenCode.Rpc.Core.Transfer.SessionImporter.ParseJson(input, "f.json", OpenCode.Rpc.Core.Transfer.ImportLimits.Default), OpenCode.Rpc.Core.Transfer.ImportLimits.Default);
        Assert.StartsWith("\ud800x", (string?)data.Info["title"], StringComparison.Ordinal);
        Assert.Contains("\"title\": \"\\ud800x", OpenCode.Rpc.Core.Json.JsJson.ToText(data.Info), StringComparison.Ordinal);
    }
}
