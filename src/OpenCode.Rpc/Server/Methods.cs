namespace OpenCode.Rpc.Server;

/// <summary>Every wire name, spelled once. protocol/opencode-rpc.openrpc.json documents each; a test keeps the two equal.</summary>
public static class Methods
{
    public const string Initialize = "initialize";
    public const string Initialized = "initialized";
    public const string Shutdown = "shutdown";
    public const string Exit = "exit";
    public const string CancelRequest = "$/cancelRequest";

    public const string SessionCreate = "session/create";
    public const string SessionGet = "session/get";
    public const string SessionList = "session/list";
    public const string SessionUpdate = "session/update";
    public const string SessionDelete = "session/delete";
    public const string SessionChildren = "session/children";
    public const string SessionFork = "session/fork";
    public const string SessionTree = "session/tree";
    public const string SessionSearch = "session/search";

    public const string MessageList = "message/list";
    public const string MessageGet = "message/get";
    public const string MessageUpdate = "message/update";
    public const string MessageRemove = "message/remove";
    public const string PartUpdate = "part/update";
    public const string PartRemove = "part/remove";

    public const string SessionExport = "session/export";
    public const string SessionImport = "session/import";
    public const string SessionImportDatabase = "session/importDatabase";
    public const string Progress = "$/progress";

    public const string SessionRevert = "session/revert";
    public const string SessionUnrevert = "session/unrevert";
    public const string SessionUndo = "session/undo";
    public const string SessionRedo = "session/redo";
    public const string SessionDiff = "session/diff";
    public const string SnapshotTrack = "snapshot/track";
    public const string StepStart = "step/start";
    public const string StepFinish = "step/finish";
    public const string SessionContext = "session/context";
    public const string SessionCompact = "session/compact";
    public const string SessionUncompact = "session/uncompact";
    public const string SessionPrune = "session/prune";

    /// <summary>Server → client request: the client's own model writes a compaction summary.</summary>
    public const string CompactionSummarize = "compaction/summarize";
    public const string SessionShare = "session/share";
    public const string SessionUnshare = "session/unshare";
}

/// <summary>Server → client notifications, named like OpenCode's bus events (reference §9).</summary>
public static class Notifications
{
    public const string SessionCreated = "session.created";
    public const string SessionUpdated = "session.updated";
    public const string SessionDeleted = "session.deleted";
    public const string MessageUpdated = "message.updated";
    public const string MessageRemoved = "message.removed";
    public const string MessagePartUpdated = "message.part.updated";
    public const string MessagePartRemoved = "message.part.removed";
    public const string SessionDiff = "session.diff";

    /// <summary>LSP's work-done progress, sent while a long request runs when the client passed a workDoneToken.</summary>
    public const string Progress = Methods.Progress;
    public const string SessionCompacted = "session.compacted";

    /// <summary>An automatic compaction failed (the write that triggered it succeeded).</summary>
    public const string SessionError = Core.Compaction.CompactionService.SessionErrorEvent;

    public static readonly IReadOnlyList<string> All =
    [
        SessionCreated, SessionUpdated, SessionDeleted, MessageUpdated, MessageRemoved, MessagePartUpdated, MessagePartRemoved,
        SessionDiff, SessionCompacted, SessionError, Progress,
    ];
}

/// <summary>Error codes. The standard JSON-RPC ones for protocol faults; our own block is -32100..-32199, clear of
/// StreamJsonRpc's -32000, -32001, -32003 and -32004.</summary>
public static class ErrorCodes
{
    public const int ParseError = -32700;
    public const int InvalidRequest = -32600;
    public const int MethodNotFound = -32601;
    public const int InvalidParams = -32602;
    public const int InternalError = -32603;
    public const int ServerNotInitialized = -32002;
    public const int RequestCancelled = -32800;

    public const int SessionNotFound = -32100;
    public const int MessageNotFound = -32101;
    public const int PartNotFound = -32102;
    public const int StoreCorrupt = -32110;
    public const int Conflict = -32111;
    public const int LimitExceeded = -32112;
    public const int SnapshotUnavailable = -32120;
    public const int RevertConflict = -32121;
    public const int PathOutsideProject = -32122;
    public const int Unsupported = -32130;
    public const int ShareNotFound = -32150;
    public const int FetchFailed = -32151;
    public const int CompactionNoProgress = -32140;
    public const int SummarizerFailed = -32141;
    public const int ShareDisabled = -32152;
}
