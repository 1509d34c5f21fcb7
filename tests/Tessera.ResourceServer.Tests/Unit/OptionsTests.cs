using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Tessera.ResourceServer.Tests.Unit;

public sealed class OptionsTests
{
    private static TesseraAccessTokenOptions Good() => new() { Authority = "https://login.example.com", Audience = "https://api.example.com" };

    private static List<string> Problems(Action<TesseraAccessTokenOptions> change)
    {
        var o = Good();
        change(o);
        return o.Problems().ToList();
    }

    [Fact]
    public void Defaults_are_safe()
    {
        var o = Good();
        Assert.Empty(o.Problems());
        Assert.True(o.RequireHttpsMetadata);
        Assert.Equal(TimeSpan.FromSeconds(30), o.ClockSkew);
        Assert.Equal(TimeSpan.FromMinutes(10), o.MaxAccessTokenLifetime);
        Assert.DoesNotContain(o.ValidAlgorithms, a => a.StartsWith("HS", StringComparison.Ordinal) || a == "none");
        Assert.True(o.LongPoll);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS256")]
    [InlineData("HS512")]
    [InlineData("hs256")]
    public void Symmetric_or_no_algorithms_cannot_be_allowed(string alg) => Assert.NotEmpty(Problems(o => o.ValidAlgorithms.Add(alg)));

    [Theory]
    [InlineData("http://127.0.0.1:5080", false, true)]
    [InlineData("http://localhost:5080", false, true)]
    [InlineData("http://[::1]:5080", false, true)]
    [InlineData("http://127.0.0.1:5080", true, false)]
    [InlineData("http://login.example.com", false, false)]
    [InlineData("http://10.0.0.5", false, false)]
    [InlineData("https://login.example.com", true, true)]
    [InlineData("ftp://login.example.com", false, false)]
    [InlineData("login.example.com", false, false)]
    [InlineData("https://login.example.com/?x=1", true, false)]
    public void Plain_http_is_allowed_only_to_a_loopback_authority_and_only_when_asked(string authority, bool requireHttps, bool ok)
    {
        var problems = Problems(o => { o.Authority = authority; o.RequireHttpsMetadata = requireHttps; });
        Assert.Equal(ok, problems.Count == 0);
    }

    [Fact]
    public void Feed_credentials_come_in_pairs()
    {
        Assert.NotEmpty(Problems(o => o.FeedClientId = "api"));
        Assert.NotEmpty(Problems(o => o.FeedClientSecret = "s"));
        Assert.Empty(Problems(o => { o.FeedClientId = "api"; o.FeedClientSecret = "s"; }));
    }

    [Fact]
    public void Audience_is_required_and_skew_is_small() {
        Assert.NotEmpty(Problems(o => o.Audience = null));
        Assert.NotEmpty(Problems(o => o.ClockSkew = TimeSpan.FromMinutes(10)));
        Assert.NotEmpty(Problems(o => o.CacheSize = -1));
    }

    [Fact]
    public void The_feed_endpoint_defaults_to_the_authority_and_discovery_to_its_well_known_path()
    {
        var o = Good();
        o.Authority = "https://login.example.com/tenant/";
        Assert.Equal("https://login.example.com/tenant/connect/revocations", o.ResolvedFeedEndpoint);
        Assert.Equal("https://login.example.com/tenant/.well-known/openid-configuration", o.MetadataAddress);
    }

    [Fact]
    public async Task An_application_with_unsafe_options_does_not_start()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddAuthentication().AddTesseraAccessTokens(o =>
        {
            o.Authority = "http://login.example.com";
            o.Audience = "api";
            o.RequireHttpsMetadata = false;
            o.ValidAlgorithms.Add("HS256");
        });
        await using var app = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains(e.Failures, f => f.Contains("HS256", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("loopback", StringComparison.Ordinal));
    }
}
