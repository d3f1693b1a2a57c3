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
}
