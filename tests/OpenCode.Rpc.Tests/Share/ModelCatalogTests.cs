using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Json;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Share;

/// <summary>The <c>model</c> item of a share sync: OpenCode's <c>Provider.Model</c> record, built as OpenCode builds it.</summary>
public sealed class ModelCatalogTests
{
    [Fact]
    public void AModelFromOpencodeJson_IsDescribedExactlyAsTheRealOpenCodeSentItToAShare()
    {
        using var dirs = new TestDirs();
        var config = Load(dirs, File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "opencode.jsonc.used-for-fake-llm")));
        var real = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "share", "share-data-flat-array.json")))!.AsArray()
            .Single(i => i!["type"]!.GetValue<string>() == "model")!["data"]![0]!;

        var ours = ModelCatalog.Describe(config, modelsDevCache: null, "fake", "fake-model");

        // Compared as text: the same keys in the same order with the same values.
        Assert.Equal(real.ToJsonString(), ours.ToJsonString());
    }

    [Fact]
    public void AModelsDevEntry_IsTheBase_AndOpencodeJsonOverridesIt()
    {
        using var dirs = new TestDirs();
        string cache = Path.Combine(dirs.Root, "models.json");
        File.WriteAllText(cache, """
            {"anthropic":{"id":"anthropic","npm":"@ai-sdk/anthropic","name":"Anthropic","models":{"claude-sonnet-4-5":{
              "id":"claude-sonnet-4-5","name":"Claude Sonnet 4.5","family":"claude-sonnet","attachment":true,"reasoning":true,
              "tool_call":true,"temperature":true,"release_date":"2025-09-29","modalities":{"input":["text","image","pdf"],"output":["text"]},
              "cost":{"input":3,"output":15,"cache_read":0.3,"cache_write":3.75},"limit":{"context":200000,"output":64000}}}}}
            """);
        var config = Load(dirs, """{ "provider": { "anthropic": { "models": { "claude-sonnet-4-5": { "name": "Sonnet (team)" } } } } }""");

        var m = ModelCatalog.Describe(config, cache, "anthropic", "claude-sonnet-4-5");

        Assert.Equal("Sonnet (team)", m["name"]!.GetValue<string>());
        Assert.Equal("@ai-sdk/anthropic", m["api"]!["npm"]!.GetValue<string>());
        Assert.Equal("""{"text":true,"audio":false,"image":true,"video":false,"pdf":true}""", m["capabilities"]!["input"]!.ToJsonString());
        Assert.True(m["capabilities"]!["reasoning"]!.GetValue<bool>());
        Assert.Equal("""{"input":3,"output":15,"cache":{"read":0.3,"write":3.75}}""", m["cost"]!.ToJsonString());
        Assert.Equal("""{"context":200000,"output":64000}""", m["limit"]!.ToJsonString());
        Assert.Equal("2025-09-29", m["release_date"]!.GetValue<string>());
    }

    [Fact]
    public void AModelNobodyKnows_StillGetsTheWholeShape_NamedByItsId_WithKnownLimitsIfAny()
    {
        using var dirs = new TestDirs();
        var m = ModelCatalog.Describe(OpenCodeConfig.Empty, Path.Combine(dirs.Root, "absent.json"), "anthropic", "claude-sonnet-4-5-20250929");

        Assert.Equal(
            ["id", "api", "status", "name", "providerID", "capabilities", "cost", "options", "limit", "headers", "family", "release_date", "variants"],
            m.Select(kv => kv.Key));
        Assert.Equal("claude-sonnet-4-5-20250929", m["name"]!.GetValue<string>());
        Assert.Equal(200_000, JsJson.Long(m["limit"]!["context"]));
    }

    private static OpenCodeConfig Load(TestDirs dirs, string json)
    {
        string configDir = Path.Combine(dirs.Root, "config", "opencode");
        Directory.CreateDirectory(configDir);
        File.WriteAllText(Path.Combine(configDir, "opencode.jsonc"), json);
        return OpenCodeConfig.Load(new ConfigLocations(configDir), dirs.ProjectDir, null);
    }
}
