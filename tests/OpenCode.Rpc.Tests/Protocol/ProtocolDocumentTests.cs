using System.Text.Json;
using System.Text.Json.Nodes;
using NJsonSchema;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Protocol;

/// <summary>Holds the server to protocol/opencode-rpc.openrpc.json in both directions: the methods it serves and the
/// ones documented are the same set, and every example runs against a real in-proc server and validates.</summary>
public sealed class ProtocolDocumentTests
{
    private static readonly Lazy<JsonObject> Doc = new(LoadDocument);

    public static IEnumerable<object[]> ExampleMethods() => Methods()
        .Where(m => !IsNotification(m) && (string?)m["x-direction"] != "server-to-client" && m["x-example-skip"] is null && m["examples"] is JsonArray { Count: > 0 })
        .Select(m => new object[] { (string)m["name"]! });

    [Fact]
    public void EveryServedMethodIsDocumented_AndEveryDocumentedMethodIsServed()
    {
        var documented = Methods()
            .Where(m => (string?)m["x-direction"] != "server-to-client" && m["x-builtin"] is null)
            .Select(m => (string)m["name"]!)
            .ToHashSet(StringComparer.Ordinal);
        var served = RpcServer.KnownMethods.ToHashSet(StringComparer.Ordinal);
        Assert.Empty(served.Except(documented));
        Assert.Empty(documented.Except(served));
    }

    [Fact]
    public void EveryNotificationTheServerSendsIsDocumented_AndNoOther()
    {
        // Server-to-client requests (compaction/summarize) are documented too, but they are neither served nor notifications.
        var documented = Methods().Where(m => (string?)m["x-direction"] == "server-to-client" && IsNotification(m)).Select(m => (string)m["name"]!).Order().ToList();
        Assert.Equal(Notifications.All.Order().ToList(), documented);
        Assert.All(Methods().Where(m => (string?)m["x-direction"] == "server-to-client" && !IsNotification(m)), m => Assert.True(m["result"] is JsonObject, $"{m["name"]} is a server-to-client request without a result"));
    }

    [Fact]
    public void EveryMethodHasAnExample_AndEveryExampleMatchesItsSchemas()
    {
        foreach (var m in Methods())
        {
            string name = (string)m["name"]!;
            var examples = m["examples"] as JsonArray;
            Assert.True(examples is { Count: > 0 }, $"{name} has no example");
            foreach (var e in examples!)
            {
                foreach (var param in (JsonArray)e!["params"]!)
                {
                    string pname = (string)param!["name"]!;
                    var decl = ((JsonArray)m["params"]!).FirstOrDefault(x => (string?)x!["name"] == pname);
                    Assert.True(decl is not null, $"{name}: example param {pname} is not declared");
                    AssertValid(decl!["schema"]!, param["value"], $"{name} example param {pname}");
                }

                if (e["result"] is JsonObject r && m["result"] is JsonObject decl2 && m["x-example-skip"] is null)
                {
                    AssertValid(decl2["schema"]!, r["value"], $"{name} example result");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(ExampleMethods))]
    public async Task Example_RunsAgainstARealServer_AndTheResultMatchesTheSchema(string method)
    {
        var m = Methods().Single(x => (string?)x["name"] == method);
        using var dirs = new TestDirs();
        await SeedAsync(dirs);
        await using var s = await InProcServer.StartAsync(dirs);
        foreach (var e in (JsonArray)m["examples"]!)
        {
            var args = new JsonObject();
            foreach (var param in (JsonArray)e!["params"]!)
            {
                args[(string)param!["name"]!] = param["value"]?.DeepClone();
            }

            var result = await s.CallAsync(method, JsonDocument.Parse(args.ToJsonString()).RootElement);
            AssertValid(m["result"]!["schema"]!, JsonNode.Parse(result.GetRawText()), $"{method} actual result");
        }
    }

    /// <summary>Writes the document's example objects into the store, as the examples expect.</summary>
    private static async Task SeedAsync(TestDirs dirs)
    {
        var fixture = (JsonObject)Doc.Value["x-example-fixture"]!;
        var store = new SessionStore(new StoreLayout(dirs.DataDir));
        store.Initialize();
        store.WriteSessionFile("global", (JsonObject)fixture["session"]!.DeepClone());
        foreach (var mp in (JsonArray)fixture["messages"]!)
        {
            await store.UpdateMessageAsync((JsonObject)mp!["info"]!.DeepClone(), CancellationToken.None);
            foreach (var part in (JsonArray)mp["parts"]!)
            {
                await store.UpdatePartAsync((JsonObject)part!.DeepClone(), null, CancellationToken.None);
            }
        }
    }

    private static void AssertValid(JsonNode schema, JsonNode? value, string what)
    {
        // NJsonSchema resolves local refs under "definitions": move the document's component schemas there.
        // A bare {"$ref"} at the root is not resolved, so wrap the schema in allOf.
        var root = new JsonObject { ["allOf"] = new JsonArray(schema.DeepClone()), ["definitions"] = Doc.Value["components"]!["schemas"]!.DeepClone() };
        string text = root.ToJsonString().Replace("#/components/schemas/", "#/definitions/", StringComparison.Ordinal);
        var js = JsonSchema.FromJsonAsync(text).GetAwaiter().GetResult();
        var errors = js.Validate(value?.ToJsonString() ?? "null");
        Assert.True(errors.Count == 0, $"{what} does not match its schema: {string.Join("; ", errors.Select(x => x.ToString()))}");
    }

    private static bool IsNotification(JsonObject m) => (bool?)m["x-notification"] == true;

    private static IEnumerable<JsonObject> Methods() => ((JsonArray)Doc.Value["methods"]!).Select(x => (JsonObject)x!);

    /// <summary>The main document plus protocol/pending/*.json (methods written on a branch and not yet folded in).</summary>
    private static JsonObject LoadDocument()
    {
        var doc = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Protocol, "opencode-rpc.openrpc.json")))!.AsObject();
        string pending = Path.Combine(RepoPaths.Protocol, "pending");
        if (Directory.Exists(pending))
        {
            foreach (var f in Directory.EnumerateFiles(pending, "*.json").Order(StringComparer.Ordinal))
            {
                var extra = JsonNode.Parse(File.ReadAllText(f))!.AsObject();
                foreach (var m in (JsonArray)extra["methods"]!)
                {
                    ((JsonArray)doc["methods"]!).Add(m!.DeepClone());
                }

                if (extra["components"]?["schemas"] is JsonObject schemas)
                {
                    foreach (var (k, v) in schemas)
                    {
                        doc["components"]!["schemas"]![k] = v!.DeepClone();
                    }
                }
            }
        }

        return doc;
    }
}
