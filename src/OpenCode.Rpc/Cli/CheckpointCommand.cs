using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OpenCode.Rpc.Core.Storage;

namespace OpenCode.Rpc.Cli;

/// <summary>
/// The helper a CLI verb hands its write journal to at exit (<see cref="WriteJournal.ExitHandOff"/>): the hidden verb
/// <c>journal-checkpoint</c>, started detached, flushes the files the verb wrote and removes the journal after the
/// verb has returned. Its stdio are pipes the exiting verb drops, so a caller reading the verb's output to its end
/// never waits for it.
/// </summary>
public static class CheckpointCommand
{
    public const string Name = "journal-checkpoint";

    public static Command Create()
    {
        var journal = new Option<string>("--journal") { Description = "the journal folder handed over", Required = true };
        var lockFd = new Option<int>("--lock-fd") { Description = "the inherited descriptor of its lock", DefaultValueFactory = _ => -1 };
        var cmd = new Command(Name, "finish a CLI verb's write journal (started by the verb itself)") { journal, lockFd };
        cmd.Hidden = true;
        cmd.SetAction(pr =>
        {
            try
            {
                WriteJournal.CompleteHandOff(new StoreLayout(CliApp.DataDir(pr)), pr.GetValue(journal)!, pr.GetValue(lockFd), m => CliApp.Log("warning: " + m));
                return 0;
            }
            catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
            {
                // The journal stays; the next start of any verb or server recovers it.
                CliApp.Log($"{Name}: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }

    /// <summary>Arms the hand-off for a verb's store.</summary>
    public static void Arm(Core.Sessions.SessionStore store) =>
        store.HandOffJournalAtExit((dir, fd) => Start(store.Layout.DataDir, dir, fd));

    private static bool Start(string dataDir, string journalDir, int lockFd)
    {
        if (Environment.ProcessPath is not { } self)
        {
            return false;
        }

        var psi = new ProcessStartInfo(self)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // Under `dotnet opencode-rpc.dll` the process is the host: name the app to it.
        if (string.Equals(Path.GetFileNameWithoutExtension(self), "dotnet", StringComparison.Ordinal))
        {
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "opencode-rpc.dll"));
        }

        foreach (var arg in new[] { Name, "--data-dir", dataDir, "--journal", journalDir, "--lock-fd", lockFd.ToString(CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi);
        return process is not null;
    }
}
