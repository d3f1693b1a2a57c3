namespace OpenCode.Rpc.Server;

/// <summary><c>session/share</c> params.</summary>
public sealed record SessionShareParams
{
    public required string SessionID { get; init; }

    /// <summary>Upload the redacted form (the rules of <c>session/export</c>'s <c>sanitize</c>), now and on every sync.</summary>
    public bool? Sanitize { get; init; }
}

/// <summary><c>session/unshare</c> params.</summary>
public sealed record SessionUnshareParams
{
    public required string SessionID { get; init; }
}

// The [JsonSerializable] entries for these records are in Protocol.cs (see TransferProtocol.cs for why).
