namespace OpenCode.Rpc.Core.Transfer;

/// <summary>Caps on what one import may hold, so a hostile or broken file cannot exhaust memory or disk.</summary>
/// <param name="MaxBytes">Largest import (file, content or share response), in bytes.</param>
/// <param name="MaxDepth">Deepest JSON nesting accepted.</param>
/// <param name="MaxMessages">Most messages in one session.</param>
/// <param name="MaxParts">Most parts in one session, all messages together.</param>
public sealed record ImportLimits(
    long MaxBytes = ImportLimits.DefaultMaxBytes,
    int MaxDepth = ImportLimits.DefaultMaxDepth,
    int MaxMessages = ImportLimits.DefaultMaxMessages,
    int MaxParts = ImportLimits.DefaultMaxParts)
{
    public const long DefaultMaxBytes = 1024L * 1024 * 1024;
    public const int DefaultMaxDepth = 128;
    public const int DefaultMaxMessages = 500_000;
    public const int DefaultMaxParts = 2_000_000;

    public static ImportLimits Default { get; } = new();
}
