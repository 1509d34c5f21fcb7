namespace Tessera.ResourceServer.Tests.Unit;

/// <summary>The pieces of the DPoP check that carry rules of their own: the bounded replay cache and RFC 3986 htu normalization.</summary>
public sealed class DpopPartsTests
{
    // ---- replay cache (RFC 9449 §11.1) ----------------------------------------------------------------------------------

    [Fact]
    public void A_jti_is_refused_while_its_proof_could_be_accepted_and_free_again_after()
    {
        var cache = new DpopReplayCache(10);
        Assert.Equal(DpopReplayCache.Outcome.First, cache.TryRemember("key-a", "jti-1", nowMs: 1_000, expiresAtMs: 61_000));
        Assert.Equal(DpopReplayCache.Outcome.Replay, cache.TryRemember("key-a", "jti-1", nowMs: 60_999, expiresAtMs: 120_000));
        // Another key's proof with the same jti is another proof.
        Assert.Equal(DpopReplayCache.Outcome.First, cache.TryRemember("key-b", "jti-1", nowMs: 2_000, expiresAtMs: 62_000));
        // Once its window has passed the proof is refused by its iat anyway, so the entry may go.
        Assert.Equal(DpopReplayCache.Outcome.First, cache.TryRemember("key-a", "jti-1", nowMs: 61_000, expiresAtMs: 121_000));
    }

    [Fact]
    public void A_full_cache_refuses_new_proofs_rather_than_forget_live_ones_and_makes_room_as_they_expire()
    {
        var cache = new DpopReplayCache(3);
        for (var i = 0; i < 3; i++) Assert.Equal(DpopReplayCache.Outcome.First, cache.TryRemember("k", "jti-" + i, nowMs: 0, expiresAtMs: 60_000 + i));
        Assert.Equal(DpopReplayCache.Outcome.Full, cache.TryRemember("k", "jti-new", nowMs: 30_000, expiresAtMs: 90_000));
        Assert.Equal(DpopReplayCache.Outcome.Replay, cache.TryRemember("k", "jti-0", nowMs: 30_000, expiresAtMs: 90_000));
        Assert.Equal(3, cache.Count);

        // After the first entries expired a sweep frees their room (sweeps run at most once a second).
        Assert.Equal(DpopReplayCache.Outcome.First, cache.TryRemember("k", "jti-new", nowMs: 60_001, expiresAtMs: 120_000));
        Assert.True(cache.Count <= 3);
        Assert.Equal(DpopReplayCache.Outcome.Replay, cache.TryRemember("k", "jti-new", nowMs: 60_002, expiresAtMs: 120_000));
    }

    [Fact]
    public void Concurrent_uses_of_one_proof_let_exactly_one_through()
    {
        var cache = new DpopReplayCache(1000);
        var outcomes = new DpopReplayCache.Outcome[64];
        Parallel.For(0, outcomes.Length, i => outcomes[i] = cache.TryRemember("k", "same", nowMs: 0, expiresAtMs: 60_000));
        Assert.Single(outcomes, o => o == DpopReplayCache.Outcome.First);
    }

    // ---- htu (RFC 9449 §4.3 (9), RFC 3986 §6.2.2 and §6.2.3) ----------------------------------------------------------

    [Theory]
    [InlineData("HTTPS://API.Example.COM/a", "https://api.example.com/a")]
    [InlineData("https://api.example.com:443/a", "https://api.example.com/a")]
    [InlineData("http://api.example.com:80/a", "http://api.example.com/a")]
    [InlineData("https://api.example.com:/a", "https://api.example.com/a")]
    [InlineData("https://api.example.com", "https://api.example.com/")]
    [InlineData("https://api.example.com/%7Euser/%61", "https://api.example.com/~user/a")]
    [InlineData("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb")]
    [InlineData("https://api.example.com/a/./b/../c", "https://api.example.com/a/c")]
    [InlineData("https://api.example.com/a/%2E%2E/c", "https://api.example.com/c")]
    [InlineData("https://api.example.com/../../a", "https://api.example.com/a")]
    [InlineData("https://api.example.com/a?x=1#f", "https://api.example.com/a")]
    [InlineData("http://[::1]:8080/a", "http://[::1]:8080/a")]
    [InlineData("https://api.example.com:8443/A/b", "https://api.example.com:8443/A/b")]
    public void Equivalent_URIs_normalize_alike(string uri, string normal) => Assert.Equal(normal, HttpUri.Normalize(uri));

    [Theory]
    [InlineData("")]
    [InlineData("/a")]
    [InlineData("api.example.com/a")]
    [InlineData("ftp://api.example.com/a")]
    [InlineData("https:/api.example.com/a")]
    [InlineData("https://user:pw@api.example.com/a")]
    [InlineData("https://api.example.com:99999/a")]
    [InlineData("https://api.example.com:8a/a")]
    [InlineData("https://api.example.com/a b")]
    [InlineData("https://api.example.com/%zz")]
    [InlineData("https://api.example.com/%4")]
    [InlineData("https://[::1/a")]
    [InlineData("https:///a")]
    public void What_is_not_an_absolute_http_URI_does_not_normalize(string uri) => Assert.Null(HttpUri.Normalize(uri));

    [Theory]
    [InlineData("https://api.example.com/a", "https://api.example.com/A")]
    [InlineData("https://api.example.com/a", "https://api.example.com/a/")]
    [InlineData("https://api.example.com/a", "http://api.example.com/a")]
    [InlineData("https://api.example.com/a", "https://api.example.com:8443/a")]
    [InlineData("https://api.example.com/a%2Fb", "https://api.example.com/a/b")]
    public void Different_resources_stay_different(string a, string b) => Assert.False(HttpUri.Same(a, b));
}
