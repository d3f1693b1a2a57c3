using OpenCode.Rpc.Core.Sessions;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Store;

/// <summary>The store's folder listing (getdents64 on Linux) lists what <c>Directory.GetFiles(dir, "*.json")</c> does.</summary>
public sealed class NativeListingTests
{
    [Fact]
    public void ListJsonFiles_ListsJsonFilesOnly_NotTempsOtherFilesOrFolders()
    {
        using var dirs = new TestDirs();
        string dir = Path.Combine(dirs.Root, "list");
        Directory.CreateDirectory(Path.Combine(dir, "folder.json"));
        foreach (var name in new[] { "a.json", "b.json.123.abc.tmp", "c.txt", ".json", "é日.json", "json" })
        {
            File.WriteAllText(Path.Combine(dir, name), "{}");
        }

        var listed = SessionStore.ListJsonFiles(dir)!.Order(StringComparer.Ordinal).ToList();

        Assert.Equal(Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal), listed);
        Assert.Equal([".json", "a.json", "é日.json"], listed.Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ListJsonFiles_OfAMissingFolder_IsNull() =>
        Assert.Null(SessionStore.ListJsonFiles(Path.Combine(Path.GetTempPath(), "ocrpc-no-such-folder-" + Guid.NewGuid().ToString("N"))));

    /// <summary>More entries than one read of the kernel's listing holds (32 KiB, ~700 names of this length).</summary>
    [Fact]
    public void ListJsonFiles_OfALargeFolder_ListsEveryFile()
    {
        using var dirs = new TestDirs();
        string dir = Path.Combine(dirs.Root, "big");
        Directory.CreateDirectory(dir);
        for (int i = 0; i < 3000; i++)
        {
            File.WriteAllText(Path.Combine(dir, $"prt_{i:D26}.json"), "{}");
        }

        Assert.Equal(3000, SessionStore.ListJsonFiles(dir)!.Count);
        Assert.Equal(Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal), SessionStore.ListJsonFiles(dir)!.Order(StringComparer.Ordinal));
    }
}
