using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Compaction;

public sealed class CompactionTransferTests
{
    [Fact]
    public async Task CompactedSession_ExportsAndReimportsIntact_AndIsStillACompactedSession()
    {
        await using var h = await CompactionHarness.StartAsync("{" + CompactionHarness.TinyModelConfig + "}");
        await h.BigHeadConversationAsync();
        await h.Client.CallAsync(Methods.SessionCompact, new { sessionID = h.SessionId });
        var contextBefore = await h.ContextAsync();
        var exported = await h.Client.CallAsync(Methods.SessionExport, new { sessionID = h.SessionId, format = "json" });
        string content = exported.GetProperty("content").GetString()!;

        // Import into a different data dir, as a second machine would.
        using var other = new TestDirs();
        await using var s = await InProcServer.StartAsync(other);
        var imported = await s.CallAsync(Methods.SessionImport, new { content });
        Assert.Equal(h.SessionId, imported.GetProperty("sessionID").GetString());

        var original = JsonNode.Parse((await h.MessagesAsync()).GetRawText())!;
        var copy = JsonNode.Parse((await s.CallAsync(Methods.MessageList, new { sessionID = h.SessionId })).GetRawText())!;
        Assert.True(JsonNode.DeepEquals(original, copy), "messages and parts changed in the export/import round trip");

        // the re-imported session is read as compacted: the model sees the same context
        var contextAfter = await s.CallAsync(Methods.SessionContext, new { sessionID = h.SessionId });
        Assert.Equal(contextBefore.GetProperty("total").GetInt64(), contextAfter.GetProperty("total").GetInt64());
        Assert.Equal(
            contextBefore.GetProperty("messages").GetArrayLength(),
            contextAfter.GetProperty("messages").GetArrayLength());
        Assert.Contains("What did we do so far?", contextAfter.GetRawText(), StringComparison.Ordinal);
    }
}
