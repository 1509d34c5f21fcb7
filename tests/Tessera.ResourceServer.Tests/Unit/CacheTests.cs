using System.Net;
using System.Security.Claims;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Tokens;
using Tessera.ResourceServer.Tests.Infrastructure;

namespace Tessera.ResourceServer.Tests.Unit;

/// <summary>The cache of validated tokens: same answers, cheaper; never a way around revocation or expiry; bounded.</summary>
public sealed class CacheTests(IssuerAndApi fixture) : IClassFixture<IssuerAndApi>
{
    private LocalIssuer Issuer => fixture.Issuer;

    private static readonly TokenValidationParameters NoKeys = new();

    private (HandlerHarness Harness, FakeTimeProvider Time) Harness(int cacheSize = 100)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        return (new HandlerHarness(Issuer, time, o => o.CacheSize = cacheSize), time);
    }

    private string Token(FakeTimeProvider time, string? sid = null, string sub = "user-1", TimeSpan? lifetime = null) =>
        Issuer.SignEs256(LocalIssuer.Header(), Issuer.AccessTokenClaims(ProtectedApi.Audience, sid: sid, sub: sub, lifetime: lifetime, now: time.GetUtcNow()));

    private static IEnumerable<(string, string)> ClaimList(ClaimsIdentity identity) => identity.Claims.Select(c => (c.Type, c.Value)).Order();

    [Fact]
    public async Task A_repeated_token_is_answered_from_the_cache_with_the_same_result()
    {
        var (h, time) = Harness();
        using var _ = h;
        var token = Token(time);
        var first = await h.ValidateAsync(token);
        Assert.True(first.IsValid, first.Exception?.Message);
        Assert.Equal(1, h.Handler.Cache.Count);

        // Without any signing key a fresh validation must fail: a success now can only come from the cache.
        var second = await h.ValidateAsync(token, HandlerHarness.WithKeys(h.Parameters));
        Assert.True(second.IsValid);
        Assert.Equal(ClaimList(first.ClaimsIdentity), ClaimList(second.ClaimsIdentity));
        Assert.Equal(first.ClaimsIdentity.AuthenticationType, second.ClaimsIdentity.AuthenticationType);
        Assert.Equal("user-1", second.ClaimsIdentity.Name);
        Assert.Same(first.SecurityToken, second.SecurityToken);
    }

    [Fact]
    public async Task Each_request_gets_its_own_copy_of_the_cached_identity()
    {
        var (h, time) = Harness();
        using var _ = h;
        var token = Token(time);
        var first = await h.ValidateAsync(token);
        first.ClaimsIdentity.AddClaim(new Claim("role", "admin"));
        var second = await h.ValidateAsync(token);
        Assert.DoesNotContain(second.ClaimsIdentity.Claims, c => c.Type == "role");
    }

    [Fact]
    public async Task A_revoked_session_is_refused_even_when_its_token_is_cached()
    {
        var (h, time) = Harness();
        using var _ = h;
        var token = Token(time, sid: "sid-cached");
        Assert.True((await h.ValidateAsync(token)).IsValid);
        Assert.True((await h.ValidateAsync(token)).IsValid);

        h.Revocations.RevokeSession("sid-cached", TimeSpan.FromMinutes(10));
        var refused = await h.ValidateAsync(token);
        Assert.False(refused.IsValid);
        Assert.Contains("revoked", Assert.IsType<TesseraTokenRejectedException>(refused.Exception).Message, StringComparison.Ordinal);
        Assert.Equal(0, h.Handler.Cache.Count);
        Assert.False((await h.ValidateAsync(token)).IsValid);
    }

    [Fact]
    public async Task A_user_watermark_refuses_cached_tokens_issued_before_it_but_not_later_ones()
    {
        var (h, time) = Harness();
        using var _ = h;
        var old = Token(time, sub: "user-w");
        Assert.True((await h.ValidateAsync(old)).IsValid);
        time.Advance(TimeSpan.FromSeconds(5));
        h.Revocations.RevokeBefore("user-w", time.GetUtcNow().ToUnixTimeSeconds(), TimeSpan.FromMinutes(10));
        time.Advance(TimeSpan.FromSeconds(2));
        var fresh = Token(time, sub: "user-w");

        Assert.False((await h.ValidateAsync(old)).IsValid);
        Assert.True((await h.ValidateAsync(fresh)).IsValid);
        Assert.True((await h.ValidateAsync(Token(time, sub: "someone-else"))).IsValid);
    }

    [Fact]
    public async Task A_client_watermark_refuses_cached_and_fresh_tokens_of_that_client_issued_before_it()
    {
        var (h, time) = Harness();
        using var _ = h;
        string TokenOf(string client, string sub) =>
            Issuer.SignEs256(LocalIssuer.Header(), Issuer.AccessTokenClaims(ProtectedApi.Audience, sub: sub, clientId: client, now: time.GetUtcNow()));
        var cached = TokenOf("svc", "svc");
        Assert.True((await h.ValidateAsync(cached)).IsValid);
        var neverSeen = TokenOf("svc", "svc");
        var usersTokenThroughIt = TokenOf("svc", "alice");
        var otherClients = TokenOf("reports", "reports");

        // The secret was rotated in this second: Tessera publishes the next second, so nothing of this one gets through.
        h.Revocations.RevokeClientBefore("svc", time.GetUtcNow().ToUnixTimeSeconds() + 1, TimeSpan.FromMinutes(10));

        Assert.False((await h.ValidateAsync(cached)).IsValid);
        Assert.Equal(0, h.Handler.Cache.Count);
        Assert.False((await h.ValidateAsync(neverSeen)).IsValid);
        Assert.False((await h.ValidateAsync(usersTokenThroughIt)).IsValid);
        Assert.True((await h.ValidateAsync(otherClients)).IsValid);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True((await h.ValidateAsync(TokenOf("svc", "svc"))).IsValid);
    }

    [Fact]
    public async Task A_cached_token_stops_working_when_it_expires()
    {
        var (h, time) = Harness();
        using var _ = h;
        var token = Token(time, lifetime: TimeSpan.FromMinutes(1));
        Assert.True((await h.ValidateAsync(token)).IsValid);
        time.Advance(TimeSpan.FromSeconds(60 + 29));
        Assert.True((await h.ValidateAsync(token)).IsValid);
        time.Advance(TimeSpan.FromSeconds(2));
        var expired = await h.ValidateAsync(token);
        Assert.False(expired.IsValid);
        Assert.IsType<SecurityTokenExpiredException>(expired.Exception);
        Assert.Equal(0, h.Handler.Cache.Count);
    }

    [Fact]
    public async Task Failures_are_not_cached()
    {
        var (h, time) = Harness();
        using var _ = h;
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience, now: time.GetUtcNow());
        claims["aud"] = "https://other.example";
        Assert.False((await h.ValidateAsync(Issuer.SignEs256(LocalIssuer.Header(), claims))).IsValid);
        Assert.False((await h.ValidateAsync("garbage")).IsValid);
        Assert.Equal(0, h.Handler.Cache.Count);
    }

    [Fact]
    public async Task The_cache_never_holds_more_than_its_size()
    {
        var (h, time) = Harness(cacheSize: 8);
        using var _ = h;
        for (var i = 0; i < 50; i++)
        {
            Assert.True((await h.ValidateAsync(Token(time))).IsValid);
            Assert.InRange(h.Handler.Cache.Count, 1, 8);
        }
    }

    [Fact]
    public async Task Expired_entries_are_evicted_to_make_room()
    {
        var (h, time) = Harness(cacheSize: 4);
        using var _ = h;
        for (var i = 0; i < 4; i++) Assert.True((await h.ValidateAsync(Token(time, lifetime: TimeSpan.FromSeconds(30)))).IsValid);
        Assert.Equal(4, h.Handler.Cache.Count);
        time.Advance(TimeSpan.FromMinutes(2));
        var longLived = Token(time, lifetime: TimeSpan.FromMinutes(5));
        Assert.True((await h.ValidateAsync(longLived)).IsValid);
        Assert.Equal(1, h.Handler.Cache.Count);
    }

    [Fact]
    public async Task Size_zero_turns_the_cache_off()
    {
        var (h, time) = Harness(cacheSize: 0);
        using var _ = h;
        var token = Token(time);
        Assert.True((await h.ValidateAsync(token)).IsValid);
        Assert.Equal(0, h.Handler.Cache.Count);
        Assert.False((await h.ValidateAsync(token, HandlerHarness.WithKeys(h.Parameters))).IsValid);
    }

    [Fact]
    public void The_key_is_the_SHA_256_of_the_token()
    {
        var a = ValidatedTokenCache.KeyOf("abc");
        Assert.Equal(a, ValidatedTokenCache.KeyOf("abc"));
        Assert.NotEqual(a, ValidatedTokenCache.KeyOf("abd"));
        var sha = System.Security.Cryptography.SHA256.HashData("abc"u8);
        Assert.Equal(System.Runtime.InteropServices.MemoryMarshal.Read<UInt128>(sha), a.High);
        var big = new string('a', 10_000);
        Assert.Equal(ValidatedTokenCache.KeyOf(big), ValidatedTokenCache.KeyOf(big));
    }

    [Fact]
    public async Task Over_HTTP_a_cached_token_of_a_revoked_session_gets_401_invalid_token()
    {
        var api = fixture.Api;
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience);
        var token = Issuer.SignEs256(LocalIssuer.Header(), claims);
        for (var i = 0; i < 3; i++)
        {
            using var ok = await api.GetAsync("api/hello", token);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        api.Revocations.RevokeSession((string)claims["sid"], TimeSpan.FromMinutes(10));
        using var refused = await api.GetAsync("api/hello", token);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var challenge = Challenges.Bearer(refused).Parameter;
        Assert.Contains("error=\"invalid_token\"", challenge, StringComparison.Ordinal);
        Assert.Contains("revoked", challenge, StringComparison.Ordinal);
    }
}
