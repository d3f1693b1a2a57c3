using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using OpenCode.Rpc.Core.Projects;
using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Core.Storage;
using OpenCode.Rpc.Core.Transfer;
using Spectre.Console;

namespace OpenCode.Rpc.Cli;

/// <summary><c>export</c> and <c>import</c>, with OpenCode's messages, over the same core as the RPC methods.</summary>
public static class TransferCommands
{
    public static Command CreateExport()
    {
        var id = new Argument<string?>("sessionID") { Description = "session id to export (a picker opens on a terminal without it)", Arity = ArgumentArity.ZeroOrOne };
        var format = new Option<string>("--format") { Description = "json (OpenCode's export) or markdown (its /export transcript)", DefaultValueFactory = _ => "json" };
        format.AcceptOnlyFromAmong("json", "markdown");
        var sanitize = new Option<bool>("--sanitize") { Description = "redact sensitive transcript and file data (json)" };
        var output = new Option<string?>("--output", "-o") { Description = "write to FILE instead of stdout" };
        var thinking = new Option<bool>("--thinking") { Description = "markdown: include reasoning" };
        var toolDetails = new Option<bool>("--tool-details") { Description = "markdown: include tool input and output" };
        var metadata = new Option<bool>("--assistant-metadata") { Description = "markdown: agent, model and duration in headers" };
        var cmd = new Command("export", "export session data as JSON or Markdown") { id, format, sanitize, output, thinking, toolDetails, metadata };
        cmd.SetAction((pr, ct) => CliApp.GuardAsync(async () =>
        {
            var store = SessionCommands.OpenStore(pr);
            string? sessionId = pr.GetValue(id);
            if (sessionId is null)
            {
                if (Console.IsInputRedirected || Console.IsErrorRedirected)
                {
                    await Console.Error.WriteLineAsync("Error: No session ID given, and there is no terminal to pick one on. Pass a session ID (see `opencode-rpc session list`).").ConfigureAwait(false);
                    return 1;
                }

                var project = ProjectResolver.Resolve(CliApp.ProjectDir(pr));
                sessionId = await PickAsync(store.ListSessions(project.Id, new SessionListQuery(IncludeArchived: true)), ct).ConfigureAwait(false);
                if (sessionId is null)
                {
                    await Console.Error.WriteLineAsync("No sessions found").ConfigureAwait(false);
                    return 1;
                }
            }

            await Console.Error.WriteLineAsync($"Exporting session: {sessionId}").ConfigureAwait(false);
            var fmt = pr.GetValue(format) == "markdown" ? ExportFormat.Markdown : ExportFormat.Json;
            var options = new ExportOptions(fmt, pr.GetValue(sanitize), pr.GetValue(thinking), pr.GetValue(toolDetails), pr.GetValue(metadata));
            _ = store.GetSession(sessionId); // "Session not found" before any output file is created
            if (pr.GetValue(output) is { Length: > 0 } file)
            {
                string full = Path.GetFullPath(file);
                string tmp = $"{full}.{Environment.ProcessId}{AtomicFile.TempSuffix}";
                try
                {
                    await using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                    {
                        await SessionExporter.ExportAsync(store, sessionId, options, fs, ct).ConfigureAwait(false);
                    }

                    File.Move(tmp, full, overwrite: true);
                }
                catch
                {
                    File.Delete(tmp);
                    throw;
                }
            }
            else
            {
                // Every byte reaches a pipe before the process exits (OpenCode's own export truncates at 64 KiB
                // multiples there): the stream is flushed and closed before we return.
                await using var stdout = Console.OpenStandardOutput();
                await SessionExporter.ExportAsync(store, sessionId, options, stdout, ct).ConfigureAwait(false);
                await stdout.FlushAsync(ct).ConfigureAwait(false);
            }

            return 0;
        }));
        return cmd;
    }

    /// <summary>OpenCode's picker: newest updated first, the title, then <c>&lt;updated&gt; • &lt;last 8 of id&gt;</c>.</summary>
    private static async Task<string?> PickAsync(IReadOnlyList<JsonObject> sessions, CancellationToken ct)
    {
        if (sessions.Count == 0)
        {
            return null;
        }

        // stdout may be a file or a pipe (that is where the export goes); the prompt lives on stderr and stdin,
        // which the caller checked are a terminal, so interaction is forced on rather than guessed from stdout.
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Error),
            Interactive = InteractionSupport.Yes,
            Ansi = AnsiSupport.Yes,
        });
        var prompt = new SelectionPrompt<JsonObject>()
            .Title("Export session")
            .PageSize(15)
            .EnableSearch()
            .UseConverter(s =>
            {
                string sid = (string?)s["id"] ?? string.Empty;
                string title = (string?)s["title"] ?? string.Empty;
                string hint = $"{SessionExporter.LocaleString(SessionStore.Updated(s))} • {sid[Math.Max(0, sid.Length - 8)..]}";
                return $"{Markup.Escape(title)} [dim]{Markup.Escape(hint)}[/]";
            })
            .AddChoices(sessions);
        var chosen = await prompt.ShowAsync(console, ct).ConfigureAwait(false);
        return (string?)chosen["id"];
    }

    public static Command CreateImport()
    {
        var file = new Argument<string?>("file") { Description = "path to an export JSON file, or a share URL", Arity = ArgumentArity.ZeroOrOne };
        var fromDb = new Option<string?>("--from-opencode-db")
        {
            Description = "import every session of a real OpenCode >= 1.2 database (default <data>/opencode.db), read-only",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var maxBytes = new Option<long>("--max-import-bytes")
        {
            Description = "largest import accepted, in bytes",
            DefaultValueFactory = _ => ImportLimits.DefaultMaxBytes,
        };
        var configDir = CliApp.NewConfigDirOption();
        var cmd = new Command("import", "import session data from a JSON file, a share URL or OpenCode's database") { file, fromDb, maxBytes, configDir };
        cmd.SetAction((pr, ct) => CliApp.GuardAsync(async () =>
        {
            var store = SessionCommands.OpenStore(pr);
            var limits = ImportLimits.Default with { MaxBytes = pr.GetValue(maxBytes) };
            if (pr.GetResult(fromDb) is not null)
            {
                string db = pr.GetValue(fromDb) is { Length: > 0 } given ? Path.GetFullPath(given) : OpenCodeDbImporter.DefaultPath(CliApp.DataDir(pr));
                return await ImportDatabaseAsync(store, db, limits, ct).ConfigureAwait(false);
            }

            string arg = pr.GetValue(file) ?? throw new InvalidInputException("file", "is required", "Give an export file or a share URL to import (or --from-opencode-db).");
            var project = ProjectResolver.Resolve(CliApp.ProjectDir(pr));
            ImportResult r;
            if (ShareClient.IsUrl(arg))
            {
                using var http = ShareClient.CreateHttpClient();
                var data = await ShareClient.FetchAsync(http, arg, CliApp.Config(pr, configDir, project).ShareBaseUrl, limits, ct).ConfigureAwait(false);
                r = await SessionImporter.WriteAsync(store, data, project, ct).ConfigureAwait(false);
            }
            else
            {
                byte[] bytes = await SessionImporter.ReadFileAsync(arg, limits, ct).ConfigureAwait(false);
                r = await SessionImporter.ImportJsonAsync(store, bytes, arg, project, limits, ct).ConfigureAwait(false);
            }

            SessionCommands.WriteStdout($"Imported session: {r.SessionID}\n");
            return 0;
        }));
        return cmd;
    }

    private static async Task<int> ImportDatabaseAsync(SessionStore store, string db, ImportLimits limits, CancellationToken ct)
    {
        await Console.Error.WriteLineAsync($"Importing sessions from {db}").ConfigureAwait(false);
        DbImportResult r;
        if (!Console.IsErrorRedirected)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            r = await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async pctx =>
                {
                    var task = pctx.AddTask("sessions");
                    var progress = new InlineProgress(p =>
                    {
                        task.MaxValue = Math.Max(1, p.Total);
                        task.Value = p.Done;
                        task.Description = $"sessions {p.Done}/{p.Total}";
                    });
                    return await OpenCodeDbImporter.ImportAsync(store, db, limits, progress, ct).ConfigureAwait(false);
                }).ConfigureAwait(false);
        }
        else
        {
            r = await OpenCodeDbImporter.ImportAsync(store, db, limits, null, ct).ConfigureAwait(false);
        }

        foreach (var s in r.Skipped)
        {
            await Console.Error.WriteLineAsync($"Skipped session {s.SessionID}: {s.Reason}").ConfigureAwait(false);
        }

        SessionCommands.WriteStdout($"Imported {r.Sessions} sessions, {r.Messages} messages, {r.Parts} parts\n");
        if (r.Skipped.Count > 0)
        {
            await Console.Error.WriteLineAsync($"Error: {r.Skipped.Count} session(s) could not be imported (listed above).").ConfigureAwait(false);
            return 1;
        }

        return 0;
    }

    private sealed class InlineProgress(Action<DbImportProgress> report) : IProgress<DbImportProgress>
    {
        public void Report(DbImportProgress value) => report(value);
    }
}
