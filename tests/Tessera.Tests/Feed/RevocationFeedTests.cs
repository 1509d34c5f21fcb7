using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Extensions.DependencyInjection;
using Tessera.Core.Clients;
using Tessera.Core.Sessions;
using Tessera.Server.Admin;
using Tessera.Server.Maintenance;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Feed;

/// <summary>
/// Issue 6, "The revocation feed": RFC 8936 poll-based delivery of RFC 8417 Security Event Tokens carrying CAEP
/// session-revoked events, read by an authenticated receiver. A server per test, so the feed holds only that test's events.
/// </summary>
public sealed class RevocationFeedTests : IAsyncLifetime
{
    private const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    private const string Password = "alice-password-1";
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;
    private string _receiverSecret = null!;
    private string _webSecret = null!;
    private string _aliceId = null!;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        _aliceId = (await _server.AddUserAsync("alice", Password)).Id;
        _webSecret = (await _server.AddClientAsync(TestClients.Confidential("web"), confidential: true)).Secret!;
        _receiverSecret = (await _server.AddClientAsync(new Client
        {
            Id = "rs", DisplayName = "Resource server", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["tessera.revocations"],
        }, confidential: true)).Secret!;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private sealed record Poll(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)
    {
        public Dictionary<string, string> Sets => Body.GetProperty("sets").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        public bool MoreAvailable => Body.GetProperty("moreAvailable").GetBoolean();
        public string? Error => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("error", out var e) ? e.GetString() : null;
    }

    private Task<Poll> PollAsync(object body, string clientId = "rs", string? secret = null, CancellationToken ct = default) =>
        PollRawAsync(JsonSerializer.Serialize(body), clientId, secret ?? _receiverSecret, ct);

    private async Task<Poll> PollRawAsync(string json, string clientId, string? secret, CancellationToken ct = default)
    {
        using var http = _server.CreateClient();
        http.Timeout = TimeSpan.FromSeconds(60);
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/revocations") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (secret is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{Uri.EscapeDataString(secret)}")));
        var response = await http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        return new Poll(response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    private Task<TokenAnswer> LoginAsync() => _driver.LoginAndExchangeAsync("web", _webSecret, "alice", Password);

    private static string Sid(TokenAnswer tokens) => new JsonWebToken(tokens.AccessToken).GetClaim("sid").Value;

    /// <summary>Ends the session through RFC 7009 revocation by its client.</summary>
    private async Task RevokeAsync(TokenAnswer tokens)
    {
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/revoke") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = tokens.RefreshToken! }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("web:" + Uri.EscapeDataString(_webSecret))));
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(request)).StatusCode);
    }

    /// <summary>Validates a SET the way a receiver would: signature against the published JWKS, type, issuer, audience.</summary>
    private async Task<JsonWebToken> ValidateSetAsync(string set)
    {
        using var http = _server.CreateClient();
        var jwks = new JsonWebKeySet(await http.GetStringAsync(".well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(set, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer,
            ValidAudience = "rs",
            ValidTypes = ["secevent+jwt"],
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = ["ES256", "RS256", "EdDSA"],
            // RFC 8417 §2.2: a SET describes something that happened; it has no expiry.
            ValidateLifetime = false,
            RequireExpirationTime = false,
        });
        Assert.True(result.IsValid, $"the SET does not validate: {result.Exception}");
        return (JsonWebToken)result.SecurityToken;
    }

    private static JsonElement Events(JsonWebToken set) => JsonDocument.Parse(Base64UrlEncoder.Decode(set.EncodedPayload)).RootElement.GetProperty("events");

    [Fact]
    public async Task ASessionRevocation_AppearsAsASignedSet_WithTheCaepEventAndTheSid()
    {
        var tokens = await LoginAsync();
        var sid = Sid(tokens);
        Assert.Empty((await PollAsync(new { returnImmediately = true })).Sets);

        await RevokeAsync(tokens);
        var poll = await PollAsync(new { returnImmediately = true });

        Assert.Equal(HttpStatusCode.OK, poll.Status);
        Assert.Equal("application/json", poll.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-store", poll.Response.Headers.CacheControl?.ToString());
        var (jti, encoded) = Assert.Single(poll.Sets);
        Assert.False(poll.MoreAvailable);
        var set = await ValidateSetAsync(encoded);
        Assert.Equal("secevent+jwt", set.Typ);
        Assert.Equal(jti, set.Id);
        Assert.Equal(sid, set.GetClaim("sid").Value);
        Assert.Equal(_server.Issuer, set.Issuer);
        Assert.Equal(["rs"], set.Audiences);
        var events = Events(set);
        Assert.True(events.TryGetProperty(SessionRevoked, out var payload), $"no session-revoked event in {events}");
        var subject = payload.GetProperty("subject");
        Assert.Equal(sid, subject.GetProperty("session").GetProperty("id").GetString());
        Assert.Equal(_aliceId, subject.GetProperty("user").GetProperty("sub").GetString());
        Assert.Equal(_server.Time.GetUtcNow().ToUnixTimeSeconds(), payload.GetProperty("event_timestamp").GetInt64());
    }

    [Fact]
    public async Task Ack_MovesThePosition_AckedEventsAreNotReturnedAgain_UnackedAre()
    {
        var first = await LoginAsync();
        var second = await LoginAsync();
        await RevokeAsync(first);
        await RevokeAsync(second);

        var poll1 = await PollAsync(new { returnImmediately = true });
        Assert.Equal(2, poll1.Sets.Count);
        var ids = poll1.Sets.Keys.OrderBy(long.Parse).ToList();
        Assert.Equal(Sid(first), new JsonWebToken(poll1.Sets[ids[0]]).GetClaim("sid").Value);
        Assert.Equal(Sid(second), new JsonWebToken(poll1.Sets[ids[1]]).GetClaim("sid").Value);

        // Nothing acknowledged: the same events again (at-least-once delivery).
        var poll2 = await PollAsync(new { returnImmediately = true });
        Assert.Equal(ids, poll2.Sets.Keys.OrderBy(long.Parse));

        // Acknowledge the first: only the second is returned.
        var poll3 = await PollAsync(new { returnImmediately = true, ack = new[] { ids[0] } });
        Assert.Equal([ids[1]], poll3.Sets.Keys);
        var poll4 = await PollAsync(new { returnImmediately = true });
        Assert.Equal([ids[1]], poll4.Sets.Keys);

        // Acknowledge the second: nothing is left; an old ack does not move the position back.
        var poll5 = await PollAsync(new { returnImmediately = true, ack = new[] { ids[1] } });
        Assert.Empty(poll5.Sets);
        var poll6 = await PollAsync(new { returnImmediately = true, ack = new[] { ids[0] } });
        Assert.Empty(poll6.Sets);

        // Events after the position are delivered.
        var third = await LoginAsync();
        await RevokeAsync(third);
        var poll7 = await PollAsync(new { returnImmediately = true });
        var (_, set) = Assert.Single(poll7.Sets);
        Assert.Equal(Sid(third), new JsonWebToken(set).GetClaim("sid").Value);
    }

    [Fact]
    public async Task MaxEvents_LimitsTheBatch_AndSaysMoreAreAvailable_InOrder()
    {
        var sids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var tokens = await LoginAsync();
            sids.Add(Sid(tokens));
            await RevokeAsync(tokens);
        }

        var page1 = await PollAsync(new { returnImmediately = true, maxEvents = 2 });
        Assert.Equal(2, page1.Sets.Count);
        Assert.True(page1.MoreAvailable);
        var page2 = await PollAsync(new { returnImmediately = true, maxEvents = 2, ack = new[] { page1.Sets.Keys.Max(long.Parse).ToString(System.Globalization.CultureInfo.InvariantCulture) } });
        Assert.Single(page2.Sets);
        Assert.False(page2.MoreAvailable);
        var delivered = page1.Sets.Concat(page2.Sets).OrderBy(kv => long.Parse(kv.Key)).Select(kv => new JsonWebToken(kv.Value).GetClaim("sid").Value);
        Assert.Equal(sids, delivered);
    }

    [Fact]
    public async Task EachReceiver_HasItsOwnPosition()
    {
        var otherSecret = (await _server.AddClientAsync(new Client
        {
            Id = "rs2", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["tessera.revocations"],
        }, confidential: true)).Secret!;
        var tokens = await LoginAsync();
        await RevokeAsync(tokens);
        var id = Assert.Single((await PollAsync(new { returnImmediately = true })).Sets).Key;

        Assert.Empty((await PollAsync(new { returnImmediately = true, ack = new[] { id } })).Sets);

        var other = await PollAsync(new { returnImmediately = true }, "rs2", otherSecret);
        var (otherId, otherSet) = Assert.Single(other.Sets);
        Assert.Equal(id, otherId);
        // Each receiver gets SETs addressed to it.
        Assert.Equal(["rs2"], new JsonWebToken(otherSet).Audiences);
    }

    [Fact]
    public async Task SignOutEverywhere_PublishesARevokedBeforeEvent()
    {
        var tokens = await LoginAsync();
        var browser = await _driver.SignInAsync("alice", Password);
        var page = await (await browser.GetAsync("account")).Content.ReadAsStringAsync();
        var before = _server.Time.GetUtcNow();

        var response = await browser.PostAsync("account/signout-everywhere", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page),
        }));
        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);

        var poll = await PollAsync(new { returnImmediately = true });
        var sets = new List<JsonWebToken>();
        foreach (var encoded in poll.Sets.Values) sets.Add(await ValidateSetAsync(encoded));
        var watermark = Assert.Single(sets, s => s.TryGetPayloadValue<long>("revoked_before", out _));
        Assert.Equal(before.ToUnixTimeSeconds(), watermark.GetPayloadValue<long>("revoked_before"));
        Assert.False(watermark.TryGetPayloadValue<string>("sid", out _));
        var payload = Events(watermark).GetProperty(SessionRevoked);
        Assert.Equal("iss_sub", payload.GetProperty("subject").GetProperty("format").GetString());
        Assert.Equal(_aliceId, payload.GetProperty("subject").GetProperty("sub").GetString());
        Assert.Equal(_server.Issuer, payload.GetProperty("subject").GetProperty("iss").GetString());
        // The live session is also announced on its own.
        Assert.Contains(sets, s => s.TryGetPayloadValue<string>("sid", out var sid) && sid == Sid(tokens));
    }

    [Fact]
    public async Task AClientWithoutTheReceiverScope_IsInvalidClient()
    {
        var answer = await PollAsync(new { returnImmediately = true }, "web", _webSecret);

        Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
        Assert.Equal("invalid_client", answer.Error);
        Assert.False(answer.Body.TryGetProperty("sets", out _));
    }

    [Fact]
    public async Task NoOrWrongCredentials_AreInvalidClient()
    {
        var tokens = await LoginAsync();
        await RevokeAsync(tokens);

        var none = await PollRawAsync("{}", "rs", secret: null);
        var wrong = await PollAsync(new { returnImmediately = true }, "rs", "wrong-secret");

        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Equal("invalid_client", none.Error);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal("invalid_client", wrong.Error);
        Assert.Contains("Basic", wrong.Response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("null")]
    [InlineData("[1,2,3]")]
    [InlineData("{\"maxEvents\":\"ten\"}")]
    [InlineData("{\"maxEvents\":-1}")]
    [InlineData("{\"ack\":\"1\"}")]
    public async Task MalformedBody_Is400InvalidRequest(string json)
    {
        var answer = await PollRawAsync(json, "rs", _receiverSecret);

        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("invalid_request", answer.Error);
    }

    [Fact]
    public async Task EmptyBody_IsAnImmediatePollWithDefaults()
    {
        var tokens = await LoginAsync();
        await RevokeAsync(tokens);

        var answer = await PollRawAsync("", "rs", _receiverSecret);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Single(answer.Sets);
    }

    [Fact]
    public async Task LongPoll_ReturnsWhenAnEventIsPublished()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        var tokens = await LoginAsync();

        // Nothing in the feed: the request is held (up to the server's long-poll maximum, far longer than this test waits).
        var waiting = PollAsync(new { returnImmediately = false }, ct: timeout.Token);
        await Task.Delay(TimeSpan.FromMilliseconds(500), timeout.Token);
        Assert.False(waiting.IsCompleted, "the long poll returned although nothing was published");

        await RevokeAsync(tokens);
        var poll = await waiting.WaitAsync(timeout.Token);

        Assert.Equal(HttpStatusCode.OK, poll.Status);
        var (_, set) = Assert.Single(poll.Sets);
        Assert.Equal(Sid(tokens), (await ValidateSetAsync(set)).GetClaim("sid").Value);
    }

    // ---- what each change publishes -------------------------------------------------------------------------------

    private const string CredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change";

    private AdminService Admin => _server.Services.GetRequiredService<AdminService>();

    private async Task<List<JsonWebToken>> NewSetsAsync()
    {
        var poll = await PollAsync(new { returnImmediately = true });
        var sets = new List<JsonWebToken>();
        foreach (var (_, encoded) in poll.Sets.OrderBy(kv => long.Parse(kv.Key, System.Globalization.CultureInfo.InvariantCulture))) sets.Add(await ValidateSetAsync(encoded));
        if (poll.Sets.Count > 0) await PollAsync(new { returnImmediately = true, ack = poll.Sets.Keys.ToArray() });
        return sets;
    }

    private static JsonElement Payload(JsonWebToken set) => JsonDocument.Parse(Base64UrlEncoder.Decode(set.EncodedPayload)).RootElement;

    private async Task<Core.Users.User> AliceAsync() => (await _server.Store.Users.FindByIdAsync(_aliceId, default))!;

    /// <summary>A whole second plus 400 ms, so "this second" and "the next" are exact.</summary>
    private DateTimeOffset AtSecondAndABit()
    {
        var next = DateTimeOffset.FromUnixTimeSeconds(_server.Time.GetUtcNow().ToUnixTimeSeconds() + 1).AddMilliseconds(400);
        _server.Time.SetUtcNow(next);
        return next;
    }

    [Fact]
    public async Task DisablingAUser_PublishesTheUsersWatermarkAtThatSecond_ThenEachSessionItEnded()
    {
        var first = await LoginAsync();
        var second = await LoginAsync();
        await NewSetsAsync();
        var now = AtSecondAndABit();

        await Admin.UpdateUserAsync(await AliceAsync(), disabled: true, null, false, null, null, false, "test", default);

        var sets = await NewSetsAsync();
        Assert.Equal(3, sets.Count);
        var watermark = sets[0];
        Assert.Equal(new[] { Sid(first), Sid(second) }.Order(), sets.Skip(1).Select(s => s.GetClaim("sid").Value).Order());
        // The sessions' own events cover the tokens of this second; the watermark voids only the seconds before it.
        Assert.Equal(now.ToUnixTimeSeconds(), watermark.GetPayloadValue<long>("revoked_before"));
        Assert.Equal(_aliceId, Payload(watermark).GetProperty("sub_id").GetProperty("sub").GetString());
        var payload = Events(watermark).GetProperty(SessionRevoked);
        Assert.Equal("admin", payload.GetProperty("initiating_entity").GetString());
        Assert.Equal("user_disabled", payload.GetProperty("reason_admin").GetProperty("en").GetString());
    }

    [Fact]
    public async Task AResetPassword_IsACaepCredentialChange_OfThePassword()
    {
        var tokens = await LoginAsync();
        await NewSetsAsync();
        var now = AtSecondAndABit();

        await Admin.UpdateUserAsync(await AliceAsync(), null, null, false, "a brand new passphrase", null, false, "test", default);

        var sets = await NewSetsAsync();
        Assert.Equal(Sid(tokens), Assert.Single(sets, s => s.TryGetPayloadValue<string>("sid", out _)).GetClaim("sid").Value);
        var change = Assert.Single(sets, s => !s.TryGetPayloadValue<string>("sid", out _));
        Assert.Equal(now.ToUnixTimeSeconds(), change.GetPayloadValue<long>("revoked_before"));
        // CAEP §3.3: credential_type and change_type are required.
        var payload = Events(change).GetProperty(CredentialChange);
        Assert.Equal("password", payload.GetProperty("credential_type").GetString());
        Assert.Equal("update", payload.GetProperty("change_type").GetString());
        Assert.Equal(now.ToUnixTimeSeconds(), payload.GetProperty("event_timestamp").GetInt64());
        Assert.Equal("password_reset", (await _server.Store.Sessions.FindAsync(Sid(tokens), default))!.RevokedReason);
    }

    [Fact]
    public async Task LockingAUser_AndNarrowingTheirPermissions_EndNoSession_AndVoidTheirTokensUpToTheNextSecond()
    {
        var tokens = await LoginAsync();
        await NewSetsAsync();
        var now = AtSecondAndABit();

        await Admin.UpdateUserAsync(await AliceAsync(), null, now + TimeSpan.FromHours(1), false, null, null, false, "test", default);
        var locked = Assert.Single(await NewSetsAsync());
        await Admin.UpdateUserAsync(await AliceAsync(), null, null, unlock: true, null, null, false, "test", default);
        Assert.Empty(await NewSetsAsync());
        await Admin.UpdateUserAsync(await AliceAsync(), null, null, false, null, ["api.read"], false, "test", default);
        var narrowed = Assert.Single(await NewSetsAsync());

        foreach (var (set, reason) in new[] { (locked, "user_locked"), (narrowed, "permissions_changed") })
        {
            Assert.False(set.TryGetPayloadValue<string>("sid", out _));
            Assert.Equal(now.ToUnixTimeSeconds() + 1, set.GetPayloadValue<long>("revoked_before"));
            Assert.Equal(_aliceId, Payload(set).GetProperty("sub_id").GetProperty("sub").GetString());
            Assert.Equal(reason, Events(set).GetProperty(SessionRevoked).GetProperty("reason_admin").GetProperty("en").GetString());
        }
        Assert.Null((await _server.Store.Sessions.FindAsync(Sid(tokens), default))!.RevokedAt);
    }

    [Fact]
    public async Task RotatingAClientSecret_IsACaepCredentialChange_AboutTheApplication_WithAClientWatermark()
    {
        var tokens = await LoginAsync();
        await NewSetsAsync();
        var now = AtSecondAndABit();

        await Admin.RotateSecretAsync((await _server.Store.Clients.FindAsync("web", default))!, "test", default);

        var set = Assert.Single(await NewSetsAsync());
        var subject = Payload(set).GetProperty("sub_id");
        Assert.Equal("complex", subject.GetProperty("format").GetString());
        Assert.Equal("web", subject.GetProperty("application").GetProperty("id").GetString());
        Assert.False(subject.TryGetProperty("user", out _));
        Assert.Equal(now.ToUnixTimeSeconds() + 1, set.GetPayloadValue<long>("revoked_before"));
        var payload = Events(set).GetProperty(CredentialChange);
        Assert.Equal("client_secret", payload.GetProperty("credential_type").GetString());
        Assert.Equal("update", payload.GetProperty("change_type").GetString());
        // The client's sessions go on with the new secret.
        Assert.Null((await _server.Store.Sessions.FindAsync(Sid(tokens), default))!.RevokedAt);
        // Moved ahead by the time a running server on the same SQLite file may take to see the change (the CLI).
        Assert.Equal(TimeSpan.FromMilliseconds(250), _server.Store.Clients.ChangeVisibilityDelay);
        Assert.Equal(now + _server.Store.Clients.ChangeVisibilityDelay, (await _server.Store.Clients.FindAsync("web", default))!.SecretRotatedAt);
    }

    [Fact]
    public async Task ASecretRotatedOrAClientRemovedInTheLastQuarterSecond_VoidsTheNextSecondToo()
    {
        // Another process's change reaches a running SQLite server within 250 ms: a token obtained with the old secret
        // in that window, early in the next second, must fall under the watermark as well.
        await NewSetsAsync();
        var late = DateTimeOffset.FromUnixTimeSeconds(_server.Time.GetUtcNow().ToUnixTimeSeconds() + 1).AddMilliseconds(900);
        _server.Time.SetUtcNow(late);

        await Admin.RotateSecretAsync((await _server.Store.Clients.FindCurrentAsync("web", default))!, "test", default);
        await Admin.DeleteClientAsync("web", "test", default);

        var sets = await NewSetsAsync();
        var watermarks = sets.Where(s => Payload(s).GetProperty("sub_id").TryGetProperty("application", out _))
            .Select(s => s.GetPayloadValue<long>("revoked_before")).ToList();
        Assert.Equal(2, watermarks.Count);
        Assert.All(watermarks, w => Assert.Equal(late.ToUnixTimeSeconds() + 2, w));
    }

    // ---- how long events are kept ---------------------------------------------------------------------------------

    [Fact]
    public async Task Events_AreKeptAtLeastAsLongAsTheLongestAccessTokenLifetime_ThenPruned()
    {
        // One client's tokens live 30 minutes (the server default is 5): the feed must keep its events that long.
        await _server.Store.Clients.SaveAsync((await _server.Store.Clients.FindAsync("web", default))! with { AccessTokenLifetime = TimeSpan.FromMinutes(30) }, default);
        var tokens = await LoginAsync();
        await RevokeAsync(tokens);
        var feed = _server.Services.GetRequiredService<IRevocationFeedStore>();
        var options = _server.Services.GetRequiredService<Core.TesseraOptions>();
        var revokedAt = _server.Time.GetUtcNow();

        await PruningService.PruneOnceAsync(_server.Store, options, revokedAt + TimeSpan.FromMinutes(30), default);
        Assert.Single(await feed.ReadAfterAsync(0, 10, default));
        // A receiver that was away for 29 minutes still learns of it.
        Assert.Single((await PollAsync(new { returnImmediately = true })).Sets);

        await PruningService.PruneOnceAsync(_server.Store, options, revokedAt + TimeSpan.FromMinutes(36), default);
        Assert.Empty(await feed.ReadAfterAsync(0, 10, default));
    }
}
