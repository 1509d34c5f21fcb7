using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using Tessera.ResourceServer.Tests.Infrastructure;

namespace Tessera.ResourceServer.Tests.Unit;

/// <summary>The feed receiver against an RFC 8936 feed shaped like Tessera's: verify, apply in order, acknowledge what was applied.</summary>
public sealed class FeedClientTests : IAsyncLifetime
{
    private LocalIssuer _issuer = null!;
    private int _refreshes;

    public async Task InitializeAsync() => _issuer = await LocalIssuer.StartAsync();

    public async Task DisposeAsync() => await _issuer.DisposeAsync();

    private (RevocationFeedClient Client, RevocationState State) Receiver(string? secret = null)
    {
        var options = new TesseraAccessTokenOptions
        {
            Authority = _issuer.Issuer, Audience = ProtectedApi.Audience, RequireHttpsMetadata = false, LongPoll = false,
            FeedClientId = LocalIssuer.FeedClientId, FeedClientSecret = secret ?? LocalIssuer.FeedClientSecret,
        };
        var configuration = new OpenIdConnectConfiguration { Issuer = _issuer.Issuer };
        configuration.SigningKeys.Add(new ECDsaSecurityKey(_issuer.EcKey) { KeyId = "k1" });
        configuration.SigningKeys.Add(new RsaSecurityKey(_issuer.RsaKey) { KeyId = "r1" });
        var state = new RevocationState(TimeProvider.System);
        var client = new RevocationFeedClient(options, _ => Task.FromResult(configuration), () => Interlocked.Increment(ref _refreshes), state, TimeProvider.System, NullLogger.Instance);
        return (client, state);
    }

    private static string[] Acks(JsonElement poll) => poll.GetProperty("ack").EnumerateArray().Select(a => a.GetString()!).ToArray();

    [Fact]
    public async Task Events_are_applied_and_acknowledged_with_the_next_poll()
    {
        var (client, state) = Receiver();
        using var owned = client;
        _issuer.PublishSessionRevoked("sid-a");
        _issuer.PublishRevokedBefore("user-b", DateTimeOffset.FromUnixTimeSeconds(1_000_000));

        var first = await client.PollOnceAsync(default);
        Assert.Equal(2, first.Applied);
        Assert.True(state.IsRevoked("sid-a", null, null, 0));
        Assert.True(state.IsRevoked(null, "user-b", null, 999_999));
        Assert.False(state.IsRevoked(null, "user-b", null, 1_000_001));
        Assert.Empty(Acks(_issuer.Polls.Last()));
        Assert.True(_issuer.Polls.Last().GetProperty("returnImmediately").GetBoolean(), "LongPoll = false asks for an immediate answer");

        var second = await client.PollOnceAsync(default);
        Assert.Equal(0, second.Delivered);
        Assert.Equal(["1", "2"], Acks(_issuer.Polls.Last()));
        Assert.Equal(2, _issuer.Cursor);
        Assert.NotNull(state.LastSync);
    }

    [Fact]
    public async Task A_large_backlog_is_read_in_order_in_pages()
    {
        var (client, state) = Receiver();
        using var owned = client;
        for (var i = 0; i < 250; i++) _issuer.PublishSessionRevoked("sid-" + i);
        var pages = 0;
        RevocationFeedClient.Outcome outcome;
        do
        {
            outcome = await client.PollOnceAsync(default);
            pages++;
        }
        while (outcome.MoreAvailable);
        Assert.Equal(3, pages);
        Assert.Equal(250, state.SessionCount);
    }

    [Fact]
    public async Task A_forged_event_is_never_applied_and_blocks_what_follows_until_it_is_skipped()
    {
        var (client, state) = Receiver();
        using var owned = client;
        using var forger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        _issuer.PublishSessionRevoked("sid-1");
        _issuer.Publish(jti => _issuer.SignSet(_issuer.SetClaims(jti, "victim", "sid-forged", null), forger));
        _issuer.PublishSessionRevoked("sid-3");

        var outcome = await client.PollOnceAsync(default);
        Assert.True(outcome.Stalled);
        Assert.True(state.IsRevoked("sid-1", null, null, 0));
        Assert.False(state.IsRevoked("sid-3", null, null, 0));
        Assert.True(_refreshes >= 1, "the authority's keys should be fetched again before an event is called forged");

        // Only the prefix that was applied is acknowledged; the forged event comes again.
        outcome = await client.PollOnceAsync(default);
        Assert.Equal(["1"], Acks(_issuer.Polls.Last()));
        Assert.True(outcome.Stalled);

        // Third failure: skipped, reported in setErrs, and the feed moves on.
        outcome = await client.PollOnceAsync(default);
        Assert.False(outcome.Stalled);
        Assert.True(state.IsRevoked("sid-3", null, null, 0));
        Assert.False(state.IsRevoked("sid-forged", null, null, 0));
        await client.PollOnceAsync(default);
        var last = _issuer.Polls.Last();
        Assert.Equal(["2", "3"], Acks(last));
        Assert.True(last.GetProperty("setErrs").TryGetProperty("2", out _));
    }

    [Theory]
    [InlineData("aud")]
    [InlineData("iss")]
    [InlineData("typ")]
    [InlineData("jti")]
    [InlineData("alg")]
    public async Task An_event_not_meant_for_this_receiver_is_not_applied(string flaw)
    {
        var (client, state) = Receiver();
        using var owned = client;
        _issuer.Publish(jti =>
        {
            var claims = _issuer.SetClaims(jti, "user", "sid-x", null);
            var header = LocalIssuer.Header(typ: "secevent+jwt");
            switch (flaw)
            {
                case "aud": claims["aud"] = "another-receiver"; break;
                case "iss": claims["iss"] = "https://impostor.example"; break;
                case "typ": header["typ"] = "JWT"; break;
                case "jti": claims["jti"] = "99"; break;
                case "alg":
                    header["alg"] = "HS256";
                    return LocalIssuer.SignHs256(header, claims, _issuer.EcKey.ExportSubjectPublicKeyInfo());
            }
            return _issuer.SignEs256(header, claims);
        });
        var outcome = await client.PollOnceAsync(default);
        Assert.True(outcome.Stalled);
        Assert.False(state.IsRevoked("sid-x", null, null, 0));
    }

    [Fact]
    public async Task An_event_of_another_type_is_acknowledged_and_ignored()
    {
        var (client, state) = Receiver();
        using var owned = client;
        _issuer.Publish(jti =>
        {
            var claims = _issuer.SetClaims(jti, "user", "sid-y", null);
            claims["events"] = new Dictionary<string, object> { ["https://schemas.openid.net/secevent/risc/event-type/account-purged"] = new Dictionary<string, object>() };
            return _issuer.SignSet(claims);
        });
        var outcome = await client.PollOnceAsync(default);
        Assert.Equal(1, outcome.Ignored);
        Assert.False(state.IsRevoked("sid-y", null, null, 0));
        await client.PollOnceAsync(default);
        Assert.Equal(["1"], Acks(_issuer.Polls.Last()));
    }

    [Fact]
    public async Task A_client_watermark_is_applied_to_that_clients_tokens_only()
    {
        var (client, state) = Receiver();
        using var owned = client;
        _issuer.PublishClientRevokedBefore("svc", DateTimeOffset.FromUnixTimeSeconds(1_000_000));

        var outcome = await client.PollOnceAsync(default);
        Assert.Equal(1, outcome.Applied);
        Assert.Equal(1, state.ClientCount);
        Assert.Equal(0, state.UserCount);
        Assert.True(state.IsRevoked(null, "svc", "svc", 999_999));
        Assert.True(state.IsRevoked("sid", "alice", "svc", 999_999));
        Assert.False(state.IsRevoked(null, "svc", "svc", 1_000_000));
        // Not a user watermark for a user who happens to have the client's id.
        Assert.False(state.IsRevoked(null, "svc", "web", 999_999));
    }

    [Fact]
    public async Task An_event_older_than_any_token_it_could_void_is_acknowledged_but_not_kept()
    {
        var (client, state) = Receiver();
        using var owned = client;
        // A receiver catching up after a long pause: the longest access-token lifetime (default 10 min) plus the skew has passed.
        var old = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(11);
        _issuer.Publish(jti =>
        {
            var claims = _issuer.SetClaims(jti, "user", "sid-old", null);
            claims["iat"] = old.ToUnixTimeSeconds();
            return _issuer.SignSet(claims);
        });
        _issuer.Publish(jti =>
        {
            var claims = _issuer.ClientSetClaims(jti, "svc", old);
            claims["iat"] = old.ToUnixTimeSeconds();
            return _issuer.SignSet(claims);
        });
        _issuer.PublishSessionRevoked("sid-recent");

        var outcome = await client.PollOnceAsync(default);
        Assert.Equal(2, outcome.Ignored);
        Assert.Equal(1, outcome.Applied);
        Assert.False(state.IsRevoked("sid-old", null, null, 0));
        Assert.Equal(1, state.SessionCount);
        Assert.Equal(0, state.ClientCount);
        await client.PollOnceAsync(default);
        Assert.Equal(["1", "2", "3"], Acks(_issuer.Polls.Last()));
    }

    [Fact]
    public async Task Wrong_credentials_are_reported_with_the_status_and_error_code_only()
    {
        var (client, _) = Receiver(secret: "wrong");
        using var owned = client;
        var e = await Assert.ThrowsAsync<RevocationFeedClient.FeedRefusedException>(() => client.PollOnceAsync(default));
        Assert.Equal(401, e.Status);
        Assert.Equal("invalid_client", e.Error);
        Assert.DoesNotContain("wrong", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>The whole library in an application: the hosted poller follows the feed and the API refuses revoked sessions.</summary>
public sealed class FeedPollerTests : IAsyncLifetime
{
    private LocalIssuer _issuer = null!;
    private ProtectedApi _api = null!;

    public async Task InitializeAsync()
    {
        _issuer = await LocalIssuer.StartAsync();
        _api = await ProtectedApi.StartAsync(_issuer, followFeed: true);
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        await _issuer.DisposeAsync();
    }

    private async Task<TimeSpan> TimeUntilRefusedAsync(string token, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            using var response = await _api.GetAsync("api/hello", token);
            if (response.StatusCode == HttpStatusCode.Unauthorized) return clock.Elapsed;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await Task.Delay(10);
        }
        throw new TimeoutException($"still accepted after {limit}");
    }

    [Fact]
    public async Task A_session_revoked_at_the_issuer_is_refused_by_the_API_within_a_second()
    {
        var claims = _issuer.AccessTokenClaims(ProtectedApi.Audience);
        var token = _issuer.SignEs256(LocalIssuer.Header(), claims);
        var other = _issuer.SignEs256(LocalIssuer.Header(), _issuer.AccessTokenClaims(ProtectedApi.Audience));
        using (var ok = await _api.GetAsync("api/hello", token)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        _issuer.PublishSessionRevoked((string)claims["sid"]);
        var took = await TimeUntilRefusedAsync(token, TimeSpan.FromSeconds(5));
        Assert.True(took < TimeSpan.FromSeconds(1), $"took {took}");
        using (var stillOk = await _api.GetAsync("api/hello", other)) Assert.Equal(HttpStatusCode.OK, stillOk.StatusCode);

        // The poller acknowledges what it applied.
        var until = DateTime.UtcNow.AddSeconds(5);
        while (_issuer.Cursor < 1 && DateTime.UtcNow < until) await Task.Delay(20);
        Assert.Equal(1, _issuer.Cursor);
        Assert.All(_issuer.Polls, p => Assert.False(p.GetProperty("returnImmediately").GetBoolean()));
    }

    [Fact]
    public async Task A_rotated_client_secret_refuses_the_clients_earlier_tokens_and_no_other_clients()
    {
        var before = DateTimeOffset.UtcNow.AddSeconds(-30);
        string TokenOf(string client, DateTimeOffset? at = null) =>
            _issuer.SignEs256(LocalIssuer.Header(), _issuer.AccessTokenClaims(ProtectedApi.Audience, sub: client, clientId: client, now: at ?? before));
        var old = TokenOf("svc");
        var others = TokenOf("reports");
        using (var ok = await _api.GetAsync("api/hello", old)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        _issuer.PublishClientRevokedBefore("svc", DateTimeOffset.UtcNow.AddSeconds(-10));
        await TimeUntilRefusedAsync(old, TimeSpan.FromSeconds(5));
        using (var ok = await _api.GetAsync("api/hello", others)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using (var ok = await _api.GetAsync("api/hello", TokenOf("svc", DateTimeOffset.UtcNow))) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Sign_out_everywhere_refuses_every_earlier_token_of_the_user_and_none_of_anyone_else()
    {
        var before = DateTimeOffset.UtcNow.AddSeconds(-30);
        var mine = _issuer.SignEs256(LocalIssuer.Header(), _issuer.AccessTokenClaims(ProtectedApi.Audience, sub: "alice", now: before));
        var theirs = _issuer.SignEs256(LocalIssuer.Header(), _issuer.AccessTokenClaims(ProtectedApi.Audience, sub: "bob", now: before));
        using (var ok = await _api.GetAsync("api/hello", mine)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        _issuer.PublishRevokedBefore("alice", DateTimeOffset.UtcNow.AddSeconds(-10));
        await TimeUntilRefusedAsync(mine, TimeSpan.FromSeconds(5));
        using (var ok = await _api.GetAsync("api/hello", theirs)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var later = _issuer.SignEs256(LocalIssuer.Header(), _issuer.AccessTokenClaims(ProtectedApi.Audience, sub: "alice"));
        using (var ok = await _api.GetAsync("api/hello", later)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }
}
