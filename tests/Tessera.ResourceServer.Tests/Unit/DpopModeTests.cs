using System.Net;
using Tessera.ResourceServer.Tests.Infrastructure;

namespace Tessera.ResourceServer.Tests.Unit;

/// <summary>The DPoP settings, each on an API of its own: the modes, the server nonce (RFC 9449 §9), the public base URL, and their validation.</summary>
public sealed class DpopModeTests : IAsyncLifetime
{
    private LocalIssuer _issuer = null!;

    public async Task InitializeAsync() => _issuer = await LocalIssuer.StartAsync();

    public async Task DisposeAsync() => await _issuer.DisposeAsync();

    private string Token(DpopKey? boundTo)
    {
        var claims = _issuer.AccessTokenClaims(ProtectedApi.Audience);
        if (boundTo is not null) claims["cnf"] = new Dictionary<string, string> { ["jkt"] = boundTo.Thumbprint };
        return _issuer.SignEs256(LocalIssuer.Header(), claims);
    }

    [Fact]
    public async Task Required_mode_offers_only_DPoP_and_treats_Bearer_as_no_credentials()
    {
        await using var api = await ProtectedApi.StartAsync(_issuer, configure: o => o.Dpop.Mode = TesseraDpopMode.Required);
        using var key = DpopKey.Es256();

        using (var bearer = await api.GetAsync("api/hello", Token(boundTo: null)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, bearer.StatusCode);
            var challenge = Assert.Single(bearer.Headers.WwwAuthenticate);
            Assert.Equal("DPoP", challenge.Scheme);
            Assert.DoesNotContain("error=", challenge.Parameter, StringComparison.Ordinal);
        }
        var token = Token(key);
        using var ok = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", api.UrlOf("api/hello"), token)]);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Disabled_mode_offers_only_Bearer_and_still_refuses_bound_tokens()
    {
        await using var api = await ProtectedApi.StartAsync(_issuer, configure: o => o.Dpop.Mode = TesseraDpopMode.Disabled);
        using var key = DpopKey.Es256();
        var token = Token(key);

        using (var viaDpop = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", api.UrlOf("api/hello"), token)]))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, viaDpop.StatusCode);
            var challenge = Assert.Single(viaDpop.Headers.WwwAuthenticate);
            Assert.Equal("Bearer", challenge.Scheme);
            Assert.Null(challenge.Parameter);
        }
        using (var asBearer = await api.GetAsync("api/hello", token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, asBearer.StatusCode);
            Assert.Contains("bound to a key", Assert.Single(asBearer.Headers.WwwAuthenticate).Parameter, StringComparison.Ordinal);
        }
        using var unbound = await api.GetAsync("api/hello", Token(boundTo: null));
        Assert.Equal(HttpStatusCode.OK, unbound.StatusCode);
    }

    [Fact]
    public async Task With_nonces_required_a_proof_without_one_gets_use_dpop_nonce_and_a_nonce_that_then_works()
    {
        await using var api = await ProtectedApi.StartAsync(_issuer, configure: o => o.Dpop.RequireNonce = true);
        using var key = DpopKey.Es256();
        var token = Token(key);
        var htu = api.UrlOf("api/hello");

        string nonce;
        using (var first = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", htu, token)]))
        {
            // §9 Figure 24: 401, WWW-Authenticate: DPoP error="use_dpop_nonce", and a DPoP-Nonce header.
            Assert.Equal(HttpStatusCode.Unauthorized, first.StatusCode);
            Assert.Contains("error=\"use_dpop_nonce\"", Challenges.Dpop(first).Parameter, StringComparison.Ordinal);
            nonce = Assert.Single(first.Headers.GetValues("DPoP-Nonce"));
            Assert.Matches("^[A-Za-z0-9_-]+$", nonce);
        }
        using (var forged = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", htu, token, claims: c => c["nonce"] = nonce[..^2] + (nonce[^2..] == "AA" ? "AB" : "AA"))]))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
            Assert.Contains("error=\"use_dpop_nonce\"", Challenges.Dpop(forged).Parameter, StringComparison.Ordinal);
        }
        using var ok = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", htu, token, claims: c => c["nonce"] = nonce)]);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        // §11.1: the same nonce may be used again (each proof still has its own jti).
        using var again = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", htu, token, claims: c => c["nonce"] = nonce)]);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task A_nonce_from_another_API_instance_is_not_accepted()
    {
        await using var one = await ProtectedApi.StartAsync(_issuer, configure: o => o.Dpop.RequireNonce = true);
        await using var two = await ProtectedApi.StartAsync(_issuer, configure: o => o.Dpop.RequireNonce = true);
        using var key = DpopKey.Es256();
        var token = Token(key);
        using var first = await one.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", one.UrlOf("api/hello"), token)]);
        var nonce = Assert.Single(first.Headers.GetValues("DPoP-Nonce"));
        using var elsewhere = await two.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", two.UrlOf("api/hello"), token, claims: c => c["nonce"] = nonce)]);
        Assert.Equal(HttpStatusCode.Unauthorized, elsewhere.StatusCode);
        Assert.Contains("error=\"use_dpop_nonce\"", Challenges.Dpop(elsewhere).Parameter, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Behind_a_proxy_htu_is_compared_with_the_public_base_URL()
    {
        await using var api = await ProtectedApi.StartAsync(_issuer, configure: o => o.Dpop.PublicBaseUrl = "https://api.example.test/orders");
        using var key = DpopKey.Es256();
        var token = Token(key);
        using (var ok = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", "https://API.example.test:443/orders/api/hello", token)]))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using var local = await api.SendAsync("api/hello", "DPoP", token, [key.Proof("GET", api.UrlOf("api/hello"), token)]);
        Assert.Equal(HttpStatusCode.Unauthorized, local.StatusCode);
        Assert.Contains("htu", Challenges.Dpop(local).Parameter, StringComparison.Ordinal);
    }

    // ---- option validation ------------------------------------------------------------------------------------------

    private static List<string> Problems(Action<TesseraDpopOptions> change)
    {
        var o = new TesseraAccessTokenOptions { Authority = "https://login.example.com", Audience = "https://api.example.com" };
        change(o.Dpop);
        return o.Problems().ToList();
    }

    [Fact]
    public void The_defaults_accept_both_schemes_with_a_short_proof_window_and_no_nonce()
    {
        var o = new TesseraDpopOptions();
        Assert.Empty(Problems(_ => { }));
        Assert.Equal(TesseraDpopMode.Allowed, o.Mode);
        Assert.Equal(TimeSpan.FromSeconds(60), o.ProofLifetime);
        Assert.False(o.RequireNonce);
        Assert.DoesNotContain(o.Algorithms, a => a.StartsWith("HS", StringComparison.Ordinal) || a == "none");
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS256")]
    [InlineData("EdDSA")]
    public void Only_the_asymmetric_algorithms_it_can_check_may_be_allowed(string alg) => Assert.NotEmpty(Problems(d => d.Algorithms.Add(alg)));

    [Fact]
    public void Unusable_settings_are_refused_with_a_message()
    {
        Assert.NotEmpty(Problems(d => d.ProofLifetime = TimeSpan.Zero));
        Assert.NotEmpty(Problems(d => d.ProofLifetime = TimeSpan.FromHours(1)));
        Assert.NotEmpty(Problems(d => d.ProofClockSkew = TimeSpan.FromMinutes(-1)));
        Assert.NotEmpty(Problems(d => d.ReplayCacheSize = 0));
        Assert.NotEmpty(Problems(d => { d.RequireNonce = true; d.NonceLifetime = TimeSpan.FromSeconds(1); }));
        Assert.NotEmpty(Problems(d => d.PublicBaseUrl = "api.example.com"));
        Assert.NotEmpty(Problems(d => d.PublicBaseUrl = "https://api.example.com/?x=1"));
        Assert.NotEmpty(Problems(d => d.Algorithms.Clear()));
        Assert.Empty(Problems(d => { d.Mode = TesseraDpopMode.Disabled; d.Algorithms.Clear(); }));
    }
}
