using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Server;

/// <summary>
/// LSP work-done progress (<c>$/progress {token, value}</c>) for one token: begin, reports, end. Sent through the
/// connection's ordered notification queue on the reporting thread; <see cref="System.Progress{T}"/> would post to the
/// thread pool, which can reorder reports.
/// </summary>
internal sealed class WorkDoneProgress(ServerContext ctx, JsonNode token) : IProgress<string>
{
    public void Begin(string title, string? message = null)
    {
        var value = new JsonObject { ["kind"] = "begin", ["title"] = title, ["cancellable"] = true };
        if (message is not null)
        {
            value["message"] = message;
            value["percentage"] = 0;
        }

        Send(value);
    }

    public void Report(string value) => Report(value, null);

    public void Report(string message, int? percentage)
    {
        var value = new JsonObject { ["kind"] = "report", ["message"] = message };
        if (percentage is int p)
        {
            value["percentage"] = p;
        }

        Send(value);
    }

    public void End() => Send(new JsonObject { ["kind"] = "end" });

    /// <summary>Adapts a core progress type to this token, synchronously (no reordering).</summary>
    public static IProgress<T> For<T>(WorkDoneProgress target, Action<WorkDoneProgress, T> report) => new Adapter<T>(target, report);

    private void Send(JsonObject value) => ctx.Notify(Notifications.Progress, new JsonObject { ["token"] = token.DeepClone(), ["value"] = value });

    private sealed class Adapter<T>(WorkDoneProgress target, Action<WorkDoneProgress, T> report) : IProgress<T>
    {
        public void Report(T value) => report(target, value);
    }
}
