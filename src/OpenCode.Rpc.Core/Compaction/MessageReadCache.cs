using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Sessions;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>
/// <c>session/context</c>'s reads: the session's messages from the store's read cache (<see cref="StoreReadCache"/>:
/// a stat per folder and per file while nothing changed), and each message's model conversion, kept while its info
/// and parts are the same objects. The read cache hands out the same object for a file until the file changes (a
/// re-read with equal content keeps the old object), so a warm call re-counts no tokens.
/// </summary>
internal sealed class MessageReadCache
{
    private readonly ConditionalWeakTable<JsonObject, Converted> converted = new();

    private sealed record Converted(IReadOnlyList<JsonObject> Parts, ContextMessage? Message);

    /// <summary>The messages, as shared objects: never change them.</summary>
    public IReadOnlyList<MessageWithParts> ListMessages(SessionStore store, string sessionId) => store.ListMessages(sessionId);

    /// <summary>The model conversion of <paramref name="m"/>, reused while its info and parts are the same objects.</summary>
    public ContextMessage? Convert(MessageWithParts m, string source)
    {
        if (converted.TryGetValue(m.Info, out var c) && SameParts(c.Parts, m.Parts))
        {
            return c.Message is null || c.Message.Source == source ? c.Message : c.Message with { Source = source };
        }

        var cm = ContextBuilder.Convert(m, source);
        converted.AddOrUpdate(m.Info, new Converted(m.Parts, cm));
        return cm;
    }

    private static bool SameParts(IReadOnlyList<JsonObject> a, IReadOnlyList<JsonObject> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (int i = 0; i < a.Count; i++)
        {
            if (!ReferenceEquals(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }
}
