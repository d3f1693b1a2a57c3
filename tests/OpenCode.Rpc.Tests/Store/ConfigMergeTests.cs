using OpenCode.Rpc.Core.Config;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Store;

/// <summary>
/// <c>$OPENCODE_CONFIG_DIR</c> as the real OpenCode reads it (1.1.65 and 1.18.33, <c>opencode debug config</c>): in
/// addition to the global config, not instead of it, merged last (over the project's files and its <c>.opencode/</c>
/// folders), and only its <c>opencode.jsonc</c> and <c>opencode.json</c>, not <c>config.json</c>.
/// </summary>
public sealed class ConfigMergeTests
{
    [Fact]
    public void TheExtraConfigDir_IsReadInAdditionToTheGlobalOne_AndWinsOverTheProject()
    {
        using var dirs = new TestDirs();
        string global = Directory.CreateDirectory(Path.Combine(dirs.Root, "global")).FullName;
        string extra = Directory.CreateDirectory(Path.Combine(dirs.Root, "extra")).FullName;
        File.WriteAllText(Path.Combine(global, "opencode.json"), """{ "share": "disabled", "username": "from-global" }""");
        File.WriteAllText(Path.Combine(dirs.ProjectDir, "opencode.json"), """{ "username": "from-project", "snapshot": false }""");
        Directory.CreateDirectory(Path.Combine(dirs.ProjectDir, ".opencode"));
        File.WriteAllText(Path.Combine(dirs.ProjectDir, ".opencode", "opencode.json"), """{ "username": "from-dot-opencode" }""");
        File.WriteAllText(Path.Combine(extra, "opencode.jsonc"), """{ "username": "from-extra-jsonc", /* JSONC */ "enterprise": { "url": "https://extra.example.test" } }""");
        File.WriteAllText(Path.Combine(extra, "opencode.json"), """{ "username": "from-extra-json" }""");

        var cfg = OpenCodeConfig.Load(new ConfigLocations(global, extra), dirs.ProjectDir, null);

        Assert.Equal("disabled", cfg.Share); // the global file still counts
        Assert.False(cfg.Snapshot); // and so does the project's
        Assert.Equal("from-extra-json", (string?)cfg.Raw["username"]);
        Assert.Equal("https://extra.example.test", cfg.ShareBaseUrl);
        Assert.Equal(Path.Combine(extra, "opencode.json"), cfg.Sources[^1]);
    }

    [Fact]
    public void TheExtraConfigDirsConfigJson_IsNotRead()
    {
        using var dirs = new TestDirs();
        string extra = Directory.CreateDirectory(Path.Combine(dirs.Root, "extra")).FullName;
        File.WriteAllText(Path.Combine(extra, "config.json"), """{ "share": "disabled" }""");

        var cfg = OpenCodeConfig.Load(new ConfigLocations(null, extra), dirs.ProjectDir, null);

        Assert.Null(cfg.Share);
        Assert.Empty(cfg.Sources);
    }

    [Fact]
    public void AnExplicitConfigDir_ReplacesBothEnvironmentDirs()
    {
        Assert.Equal(new ConfigLocations("/explicit"), ConfigLocations.For("/explicit"));
    }
}
