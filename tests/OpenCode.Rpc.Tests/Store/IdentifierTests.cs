using System.Globalization;
using System.Text.RegularExpressions;
using OpenCode.Rpc.Core.Ids;

namespace OpenCode.Rpc.Tests.Store;

public sealed partial class IdentifierTests
{
    [GeneratedRegex("^(ses|msg|prt)_[0-9a-f]{12}[0-9A-Za-z]{14}$")]
    private static partial Regex Format();

    [Fact]
    public void NewIds_ArePrefixUnderscore12Hex14Base62()
    {
        foreach (var id in new[] { Identifier.Descending(Identifier.Session), Identifier.Ascending(Identifier.Message), Identifier.Ascending(Identifier.Part) })
        {
            Assert.Matches(Format(), id);
            Assert.Equal(26, id.Length - 4);
        }
    }

    [Fact]
    public void TimeComponent_IsNowTimes4096PlusCounter_NotForSessions()
    {
        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        string msg = Identifier.Ascending(Identifier.Message);
        string ses = Identifier.Descending(Identifier.Session);
        long after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        const long mask = 0xFFFF_FFFF_FFFFL;
        long m = long.Parse(msg[4..16], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        long s = ~long.Parse(ses[4..16], NumberStyles.HexNumber, CultureInfo.InvariantCulture) & mask;
        foreach (var v in new[] { m, s })
        {
            long ms = v >> 12;
            // the 48-bit value keeps now mod 2^36 ms; ids may borrow a few ms ahead when many are made at once
            Assert.InRange(ms, (before & 0xF_FFFF_FFFFL) - 1, (after & 0xF_FFFF_FFFFL) + 5000);
            Assert.NotEqual(0, v & 0xFFF);
        }

        Assert.True(s > m, "the session was made after the message");
    }

    [Fact]
    public void Sessions_Descend_MessagesAndParts_Ascend_OverTenThousandIds()
    {
        var ses = new List<string>();
        var msg = new List<string>();
        var prt = new List<string>();
        for (int i = 0; i < 10_000; i++)
        {
            ses.Add(Identifier.Descending(Identifier.Session));
            msg.Add(Identifier.Ascending(Identifier.Message));
            prt.Add(Identifier.Ascending(Identifier.Part));
        }

        for (int i = 1; i < 10_000; i++)
        {
            Assert.True(string.CompareOrdinal(ses[i - 1], ses[i]) > 0, $"session {i} does not sort before {i - 1}");
            Assert.True(string.CompareOrdinal(msg[i - 1], msg[i]) < 0, $"message {i} does not sort after {i - 1}");
            Assert.True(string.CompareOrdinal(prt[i - 1], prt[i]) < 0, $"part {i} does not sort after {i - 1}");
        }

        Assert.Equal(30_000, ses.Concat(msg).Concat(prt).Distinct().Count());
    }

    [Fact]
    public void ManyIdsInOneMillisecond_StayStrictlyOrdered()
    {
        long ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1;
        string prev = Identifier.Create(Identifier.Message, descending: false, ms);
        for (int i = 0; i < 9000; i++)
        {
            string next = Identifier.Create(Identifier.Message, descending: false, ms);
            Assert.True(string.CompareOrdinal(prev, next) < 0, $"id {i} out of order");
            prev = next;
        }
    }

    public static TheoryData<string?> Invalid() => new()
    {
        "ses_../../x",
        "ses_..",
        "ses_a/b",
        "ses_a\\b",
        string.Empty,
        "ses_",
        "ses",
        "ses_a\0b",
        "ses_\0",
        "ses_é",
        "ses_日本",
        "ses_😀",
        "ses_abc ",
        " ses_abc",
        "ses_" + new string('a', 10 * 1024),
        "ses_" + new string('a', 65),
        "msg_abc",
        "SES_abc",
        "ses-abc",
        "sesabc",
        null,
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void IsValid_RejectsAnythingButPrefixAnd1To64Alnum(string? id)
    {
        Assert.False(Identifier.IsValid(id, Identifier.Session));
        Assert.False(string.IsNullOrEmpty(Identifier.Explain(id, Identifier.Session)));
    }

    [Theory]
    [InlineData("ses_a")]
    [InlineData("ses_0")]
    [InlineData("ses_df5b97920ffeUFbu7k46fCazeu")]
    [InlineData("ses_0000000000004AAAAAAAAAAAAA")]
    [InlineData("ses_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01")]
    public void IsValid_AcceptsPrefixAnd1To64Alnum(string id)
    {
        Assert.InRange(id.Length - 4, 1, 64);
        Assert.True(Identifier.IsValid(id, Identifier.Session));
        Assert.False(Identifier.IsValid(id, Identifier.Message));
    }

    [Fact]
    public void IsValid_AcceptsExactly64_Rejects65()
    {
        Assert.True(Identifier.IsValid("prt_" + new string('Z', 64), Identifier.Part));
        Assert.False(Identifier.IsValid("prt_" + new string('Z', 65), Identifier.Part));
    }
}
