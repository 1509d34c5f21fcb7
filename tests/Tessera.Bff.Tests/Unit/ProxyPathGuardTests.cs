using Tessera.Bff.Proxy;

namespace Tessera.Bff.Tests.Unit;

public sealed class ProxyPathGuardTests
{
    private static readonly IReadOnlyList<ProxyRoute> Routes = ProxyRoute.From(new Dictionary<string, string>
    {
        ["/api"] = "http://127.0.0.1:5002/v1",
        ["/api/admin-tools"] = "https://tools.example/",
        ["/reports"] = "https://reports.example/base/",
    });

    [Theory]
    [InlineData("/api/data", "http://127.0.0.1:5002/v1/data")]
    [InlineData("/api", "http://127.0.0.1:5002/v1")]
    [InlineData("/api/", "http://127.0.0.1:5002/v1/")]
    [InlineData("/api/orders/42?expand=lines&x=%20y", "http://127.0.0.1:5002/v1/orders/42?expand=lines&x=%20y")]
    [InlineData("/api/a%20b", "http://127.0.0.1:5002/v1/a%20b")]
    [InlineData("/api/admin-tools/run", "https://tools.example/run")]
    [InlineData("/reports/2026", "https://reports.example/base/2026")]
    public void AllowListedPaths_AreForwardedToTheirDestination(string raw, string expected)
    {
        var decision = ProxyPathGuard.Resolve(raw, Routes);
        Assert.Equal(ProxyPathGuard.Verdict.Forward, decision.Verdict);
        Assert.Equal(expected, decision.Destination!.OriginalString);
    }

    [Theory]
    [InlineData("/api/../admin")]
    [InlineData("/api/./data")]
    [InlineData("/api/data/..")]
    [InlineData("/api/%2e%2e/admin")]
    [InlineData("/api/%2E%2E/admin")]
    [InlineData("/api/.%2e/admin")]
    [InlineData("/api%2fadmin")]
    [InlineData("/api/data%2F..%2Fadmin")]
    [InlineData("/api/data%5c..%5cadmin")]
    [InlineData("/api\\..\\admin")]
    [InlineData("/api/data\\x")]
    [InlineData("/api//evil.example/x")]
    [InlineData("/api/%252e%252e/admin")]
    [InlineData("/api/data%00")]
    [InlineData("/api/da\tta")]
    [InlineData("/api/dätä")]
    [InlineData("http://evil.example/api/data")]
    [InlineData("//evil.example/api/data")]
    [InlineData("*")]
    [InlineData("")]
    public void PathTricks_AreRefused(string raw)
    {
        Assert.Equal(ProxyPathGuard.Verdict.Refused, ProxyPathGuard.Resolve(raw, Routes).Verdict);
    }

    [Theory]
    [InlineData("/apix/data")]
    [InlineData("/API/data")]
    [InlineData("/admin")]
    [InlineData("/bff/user")]
    [InlineData("/")]
    [InlineData("/report")]
    public void PathsNotOnTheAllowList_AreNotForwarded(string raw)
    {
        Assert.Equal(ProxyPathGuard.Verdict.NotAllowListed, ProxyPathGuard.Resolve(raw, Routes).Verdict);
    }

    [Fact]
    public void TheLongestMatchingPrefixWins()
    {
        Assert.Equal("https://tools.example/x", ProxyPathGuard.Resolve("/api/admin-tools/x", Routes).Destination!.OriginalString);
        Assert.Equal("http://127.0.0.1:5002/v1/admin-toolsx", ProxyPathGuard.Resolve("/api/admin-toolsx", Routes).Destination!.OriginalString);
    }

    [Theory]
    [InlineData("api", "http://x")]
    [InlineData("/api/", "http://x")]
    [InlineData("/bff/api", "http://x")]
    [InlineData("/a/../b", "http://x")]
    [InlineData("/api", "ftp://x")]
    [InlineData("/api", "http://x/?q=1")]
    [InlineData("/api", "http://user:pw@x/")]
    [InlineData("/api", "/relative")]
    public void BadRouteConfiguration_IsRefusedAtStartUp(string prefix, string destination)
    {
        Assert.NotEmpty(ProxyRoute.Check(prefix, destination));
    }
}
