using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Core.Transfer;
using PolyType;
using StreamJsonRpc;

namespace OpenCode.Rpc.Server;

/// <summary>Export and import: JSON and Markdown export, import from a file, content or share link, and import of
/// a real OpenCode database with <c>$/progress</c>.</summary>
[GenerateShape(IncludeMethods = MethodShapeFlags.PublicInstance)]
public sealed partial class TransferTarget(ServerContext ctx)
{
    [JsonRpcMethod(Methods.SessionExport, UseSingleObjectParameterDeserialization = true)]
    public async Task<SessionExportResult> ExportAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionExportParams);
        var format = q.Format switch
        {
            null or "json" => ExportFormat.Json,
            "markdown" => ExportFormat.Markdown,
            _ => throw new InvalidInputException("format", "must be \"json\" or \"markdown\""),
        };
        var options = new ExportOptions(format, q.Sanitize ?? false, q.Thinking ?? false, q.ToolDetails ?? false, q.AssistantMetadata ?? false);
        string content = await SessionExporter.ExportToStringAsync(ctx.Store, q.SessionID, options, ct).ConfigureAwait(false);
        return new SessionExportResult(content, SessionExporter.DefaultFileName(q.SessionID, format));
    }

    [JsonRpcMethod(Methods.SessionImport, UseSingleObjectParameterDeserialization = true)]
    public async Task<SessionImportResult> ImportAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionImportParams);
        int given = (q.Path is null ? 0 : 1) + (q.Url is null ? 0 : 1) + (q.Content is null ? 0 : 1);
        if (given != 1)
        {
            throw new InvalidInputException("params", "must have exactly one of path, url or content", "Give exactly one of path, url or content.");
        }

        var project = ctx.Project;
        var limits = ctx.Options.ImportLimits ?? ImportLimits.Default;
        ImportResult r;
        if (q.Url is not null)
        {
            using var http = ShareClient.CreateHttpClient();
            string baseUrl = OpenCodeConfig.Load(ctx.Options.ConfigLocations, project.Directory, project.IsGit ? project.Worktree : null).ShareBaseUrl;
            var data = await ShareClient.FetchAsync(http, q.Url, baseUrl, limits, ct).ConfigureAwait(false);
            r = await SessionImporter.WriteAsync(ctx.Store, data, project, ct).ConfigureAwait(false);
        }
        else if (q.Path is not null)
        {
            string path = Path.IsPathRooted(q.Path) ? q.Path : Path.Combine(project.Directory, q.Path);
            byte[] bytes = await SessionImporter.ReadFileAsync(path, limits, ct).ConfigureAwait(false);
            r = await SessionImporter.ImportJsonAsync(ctx.Store, bytes, path, project, limits, ct).ConfigureAwait(false);
        }
        else
        {
            r = await SessionImporter.ImportJsonAsync(ctx.Store, Encoding.UTF8.GetBytes(q.Content!), "content", project, limits, ct).ConfigureAwait(false);
        }

        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return new SessionImportResult(r.SessionID, r.Session, r.Messages, r.Parts);
    }

    /// <summary>Progress goes out as LSP <c>$/progress</c> notifications that this server sends itself through its
    /// ordered notification queue (begin, one report per session, end), so they arrive before the reply.</summary>
    [JsonRpcMethod(Methods.SessionImportDatabase, UseSingleObjectParameterDeserialization = true)]
    public async Task<SessionImportDatabaseResult> ImportDatabaseAsync(JsonElement p = default, CancellationToken ct = default)
    {
        var q = ParamsBinder.Bind(p, ProtocolJsonContext.Default.SessionImportDatabaseParams);
        _ = ctx.Project; // the lifecycle gate: initialized
        string path = q.Path is { Length: > 0 } given
            ? (Path.IsPathRooted(given) ? given : Path.Combine(ctx.Project.Directory, given))
            : OpenCodeDbImporter.DefaultPath(ctx.Options.DataDir);
        JsonNode? token = q.WorkDoneToken is { ValueKind: JsonValueKind.String or JsonValueKind.Number } t ? JsonNode.Parse(t.GetRawText()) : null;
        var progress = token is null ? null : WorkDoneProgress.For<DbImportProgress>(new WorkDoneProgress(ctx, token), (wp, pr) =>
        {
            if (pr.SessionID is null)
            {
                wp.Begin("Importing OpenCode sessions", $"0/{pr.Total} sessions");
            }
            else
            {
                wp.Report($"{pr.Done}/{pr.Total} sessions", pr.Total == 0 ? 100 : pr.Done * 100 / pr.Total);
            }
        });
        DbImportResult r;
        try
        {
            r = await OpenCodeDbImporter.ImportAsync(ctx.Store, path, ctx.Options.ImportLimits ?? ImportLimits.Default, progress, ct).ConfigureAwait(false);
        }
        finally
        {
            if (token is not null)
            {
                ctx.Notify(Methods.Progress, new JsonObject { ["token"] = token.DeepClone(), ["value"] = new JsonObject { ["kind"] = "end" } });
            }
        }

        await ctx.FlushNotificationsAsync().ConfigureAwait(false);
        return new SessionImportDatabaseResult(r.Sessions, r.Messages, r.Parts, r.Skipped.Select(s => new SessionImportSkip(s.SessionID, s.Reason)).ToList());
    }
}
