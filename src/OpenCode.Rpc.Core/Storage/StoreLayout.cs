using OpenCode.Rpc.Core.Ids;

namespace OpenCode.Rpc.Core.Storage;

/// <summary>
/// Where everything lives, per OpenCode 1.1.65's JSON layout (reference §1.2). Every path is built from
/// ids that were validated first, so no id can point outside <c>storage/</c>. Our own side data (locks,
/// fork origins) goes under <c>&lt;data&gt;/opencode-rpc/</c>, which OpenCode never reads.
/// </summary>
public sealed class StoreLayout
{
    public StoreLayout(string dataDir)
    {
        DataDir = Path.GetFullPath(dataDir);
        Storage = Path.Combine(DataDir, "storage");
        SideDir = Path.Combine(DataDir, "opencode-rpc");
    }

    public string DataDir { get; }

    public string Storage { get; }

    public string SideDir { get; }

    public string LockDir => Path.Combine(SideDir, "locks");

    /// <summary>Fork origins (side data: OpenCode never reads it).</summary>
    public string ForksDir => Path.Combine(SideDir, "forks");

    /// <summary>Where <see cref="BulkWriter"/> builds new folders before renaming them into <c>storage/</c>.</summary>
    public string StagingDir => Path.Combine(SideDir, "staging");

    public string ForkOriginFile(string sessionId) => Path.Combine(ForksDir, Check(sessionId, Identifier.Session) + ".json");

    public string MigrationFile => Path.Combine(Storage, "migration");

    public string ProjectDir => Path.Combine(Storage, "project");

    public string SessionRoot => Path.Combine(Storage, "session");

    /// <summary>The default data dir: <c>$XDG_DATA_HOME/opencode</c>, else <c>~/.local/share/opencode</c>
    /// (on every OS, as OpenCode's xdg-basedir does).</summary>
    public static string DefaultDataDir()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        string root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(root, "opencode");
    }

    public string ProjectFile(string projectId) => Path.Combine(ProjectDir, CheckProject(projectId) + ".json");

    public string SessionDir(string projectId) => Path.Combine(SessionRoot, CheckProject(projectId));

    public string SessionFile(string projectId, string sessionId) =>
        Path.Combine(SessionDir(projectId), Check(sessionId, Identifier.Session) + ".json");

    public string MessageDir(string sessionId) => Path.Combine(Storage, "message", Check(sessionId, Identifier.Session));

    public string MessageFile(string sessionId, string messageId) =>
        Path.Combine(MessageDir(sessionId), Check(messageId, Identifier.Message) + ".json");

    public string PartDir(string messageId) => Path.Combine(Storage, "part", Check(messageId, Identifier.Message));

    public string PartFile(string messageId, string partId) =>
        Path.Combine(PartDir(messageId), Check(partId, Identifier.Part) + ".json");

    public string SessionDiffFile(string sessionId) => Path.Combine(Storage, "session_diff", Check(sessionId, Identifier.Session) + ".json");

    public string SessionShareFile(string sessionId) => Path.Combine(Storage, "session_share", Check(sessionId, Identifier.Session) + ".json");

    /// <summary>Shares still to be deleted on their server: the share record of a deleted session, kept (with its
    /// secret) until the server confirms the delete. Side data: OpenCode never reads it.</summary>
    public string ShareDeleteDir => Path.Combine(SideDir, "share-deletes");

    public string ShareDeleteFile(string sessionId) => Path.Combine(ShareDeleteDir, Check(sessionId, Identifier.Session) + ".json");

    public string TodoFile(string sessionId) => Path.Combine(Storage, "todo", Check(sessionId, Identifier.Session) + ".json");

    /// <summary>A project id is a 40-hex root commit, <c>global</c>, or (newer OpenCode) a sha1: always plain
    /// alphanumerics. Anything else must never become a path.</summary>
    public static bool IsValidProjectId(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= 128 && id.All(char.IsAsciiLetterOrDigit);

    private static string CheckProject(string projectId) =>
        IsValidProjectId(projectId) ? projectId : throw new InvalidInputException("projectID", "must be 1 to 128 characters of [0-9A-Za-z]");

    private static string Check(string id, string prefix) =>
        Identifier.IsValid(id, prefix) ? id : throw new InvalidInputException(prefix switch
        {
            Identifier.Session => "sessionID",
            Identifier.Message => "messageID",
            _ => "partID",
        }, Identifier.Explain(id, prefix));
}
