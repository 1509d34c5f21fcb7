using System.Net;
using System.Net.Http.Headers;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Tests.Infrastructure;
using static Tessera.Tests.Server.ServerTestKit;

namespace Tessera.Tests.ClientAuth;

/// <summary>
/// Issue 8: client-authentication throttling per (client id, address) and per address, with growing pauses and a
/// temporary lockout answered 429 with Retry-After, never per client alone (a guesser elsewhere must not lock the real
/// client out), and audit events. A server per test: throttle state never mixes. No timing assertions.
/// </summary>
public sealed class ClientAuthThrottlingTests : IAsyncLifetime
{
    private static readonly IPAddress Elsewhere = IPAddress.Parse("127.0.0.2");
    private TesseraTestServer? _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    private static string[] Throttle(string policy, int pauseAfter = 3, string firstPause = "00:00:10", string maxPause = "00:00:30",
        int lockoutAfter = 6, string lockout = "00:15:00") =>
    [
        $"--Tessera:Throttling:{policy}:PauseAfter={pauseAfter}", $"--Tessera:Throttling:{policy}:FirstPause={firstPause}",
        $"--Tessera:Throttling:{policy}:MaxPause={maxPause}", $"--Tessera:Throttling:{policy}:LockoutAfter={lockoutAfter}",
        $"--Tessera:Throttling:{policy}:Lockout={lockout}",
    ];

    private const string PerClient = "ClientPerClientAndAddress";
    private const string PerAddress = "ClientPerAddress";

    private async Task<TesseraTestServer> StartAsync(params string[] args) => _server = await TesseraTestServer.StartAsync(args);

    private async Task<string> AddClientAsync(string id) =>
        (await _server!.AddClientAsync(new Client { Id = id, GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["api.read"] }, confidential: true)).Secret!;

    /// <summary>client_credentials with client_secret_basic, from 127.0.0.1 or from <paramref name="from"/>.</summary>
    private async Task<TokenAnswer> TokenAsync(string clientId, string secret, IPAddress? from = null, bool basic = true)
    {
        using var http = from is null ? _server!.CreateClient() : _server!.CreateClientFrom(from);
        var form = new List<KeyValuePair<string, string>> { new("grant_type", "client_credentials") };
        if (!basic) form.AddRange([new("client_id", clientId), new("client_secret", secret)]);
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new FormUrlEncodedContent(form) };
        if (basic) request.Headers.Authorization = Basic(clientId, secret);
        return await ReadAnswerAsync(await http.SendAsync(request));
    }

    private static void AssertOk(TokenAnswer answer) =>
        Assert.True(answer.Status == HttpStatusCode.OK && answer.AccessToken is not null, $"expected a token, got {(int)answer.Status} {answer.Body}");

    private static void AssertWrong(TokenAnswer answer) => AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");

    /// <summary>A paused client authentication: 429, JSON, never cached, Retry-After in whole seconds, no Basic challenge.</summary>
    private static void AssertPaused(TokenAnswer answer, int retryAfterSeconds)
    {
        AssertError(answer, HttpStatusCode.TooManyRequests, "too_many_requests");
        Assert.Null(answer.AccessToken);
        Assert.Equal(TimeSpan.FromSeconds(retryAfterSeconds), answer.Response.Headers.RetryAfter?.Delta);
        Assert.False(HasWwwAuthenticate(answer.Response));
    }

    private async Task<List<AuditEvent>> AuditAsync(string type) =>
        (await _server!.Store.Audit.QueryAsync(new AuditQuery { Type = type, Limit = 1000 }, default)).ToList();

    [Fact]
    public async Task GuessingAClientsSecret_PausesThatClientAtThatAddress_EvenForTheRightSecret_WhileElsewhereItIsServed()
    {
        var server = await StartAsync(Throttle(PerClient, pauseAfter: 3, firstPause: "00:00:10"));
        var secret = await AddClientAsync("svc");
        var otherSecret = await AddClientAsync("other");

        for (var i = 0; i < 3; i++) AssertWrong(await TokenAsync("svc", "tss_guess_" + i));

        AssertPaused(await TokenAsync("svc", secret), 10);
        AssertPaused(await TokenAsync("svc", secret, basic: false), 10);
        // The real client at its own address, and another client at the guesser's address, are not affected.
        AssertOk(await TokenAsync("svc", secret, Elsewhere));
        AssertOk(await TokenAsync("other", otherSecret));

        server.Time.Advance(TimeSpan.FromSeconds(9.5));
        AssertPaused(await TokenAsync("svc", secret), 1);
        server.Time.Advance(TimeSpan.FromSeconds(0.5));
        AssertOk(await TokenAsync("svc", secret));
    }

    [Fact]
    public async Task ThePause_Doubles_UpToItsCap_ThenBecomesALockout_ThatEnds()
    {
        var server = await StartAsync(Throttle(PerClient, pauseAfter: 3, firstPause: "00:00:10", maxPause: "00:00:30", lockoutAfter: 6, lockout: "00:15:00"));
        var secret = await AddClientAsync("svc");
        for (var i = 0; i < 2; i++) AssertWrong(await TokenAsync("svc", "tss_guess_" + i));

        foreach (var pause in new[] { 10, 20, 30, 900 })
        {
            AssertWrong(await TokenAsync("svc", "tss_guess"));
            AssertPaused(await TokenAsync("svc", secret), pause);
            server.Time.Advance(TimeSpan.FromSeconds(pause - 1));
            AssertPaused(await TokenAsync("svc", secret), 1);
            server.Time.Advance(TimeSpan.FromSeconds(1));
        }

        AssertOk(await TokenAsync("svc", secret));
    }

    [Fact]
    public async Task TheRightSecret_ClearsTheCountOfThatClientAtThatAddress()
    {
        await StartAsync(Throttle(PerClient, pauseAfter: 3));
        var secret = await AddClientAsync("svc");

        for (var i = 0; i < 2; i++) AssertWrong(await TokenAsync("svc", "tss_guess_" + i));
        AssertOk(await TokenAsync("svc", secret));
        for (var i = 0; i < 2; i++) AssertWrong(await TokenAsync("svc", "tss_guess_" + i));

        AssertOk(await TokenAsync("svc", secret));
    }

    [Fact]
    public async Task AnUnknownClientId_IsCountedAndPaused_ExactlyLikeAKnownOne()
    {
        await StartAsync(Throttle(PerClient, pauseAfter: 3));
        var secret = await AddClientAsync("svc");
        for (var i = 0; i < 3; i++)
        {
            var wrong = await TokenAsync("svc", "tss_guess_" + i);
            var unknown = await TokenAsync("ghost", "tss_guess_" + i);
            AssertWrong(unknown);
            Assert.Equal(wrong.Body.ToString(), unknown.Body.ToString());
        }

        var known = await TokenAsync("svc", secret);
        var ghost = await TokenAsync("ghost", "tss_guess");

        AssertPaused(known, 10);
        AssertPaused(ghost, 10);
        Assert.Equal(known.Body.ToString(), ghost.Body.ToString());
    }

    [Fact]
    public async Task SprayingManyClientIdsFromOneAddress_PausesEveryClientThere_ButNotAtOtherAddresses()
    {
        var server = await StartAsync(Throttle(PerAddress, pauseAfter: 3, firstPause: "00:00:10"));
        var secret = await AddClientAsync("svc");

        for (var i = 0; i < 3; i++) AssertWrong(await TokenAsync("client-" + i, "tss_guess"));

        AssertPaused(await TokenAsync("svc", secret), 10);
        AssertOk(await TokenAsync("svc", secret, Elsewhere));
        server.Time.Advance(TimeSpan.FromSeconds(10));
        AssertOk(await TokenAsync("svc", secret));
        // A success does not clear the address's count (one good client must not reset a spraying count): one more
        // failure pauses it again, for twice as long.
        AssertWrong(await TokenAsync("client-3", "tss_guess"));
        AssertPaused(await TokenAsync("svc", secret), 20);
    }

    [Fact]
    public async Task PausesAndLockouts_AreAudited_AndOnlyTheFirstRefusalOfEachPause()
    {
        var server = await StartAsync([.. Throttle(PerClient, pauseAfter: 2, firstPause: "00:00:10", lockoutAfter: 3, lockout: "00:15:00"),
            .. Throttle(PerAddress, pauseAfter: 4, firstPause: "00:00:10", lockoutAfter: 0)]);
        var secret = await AddClientAsync("svc");

        AssertWrong(await TokenAsync("svc", "tss_guess_1"));
        AssertWrong(await TokenAsync("svc", "tss_guess_2"));          // svc at 127.0.0.1: pause of 10 s
        for (var i = 0; i < 3; i++) AssertPaused(await TokenAsync("svc", secret), 10);
        server.Time.Advance(TimeSpan.FromSeconds(10));
        AssertWrong(await TokenAsync("svc", "tss_guess_3"));          // svc at 127.0.0.1: lockout of 15 minutes
        AssertWrong(await TokenAsync("ghost", "tss_guess_4"));        // the address's 4th failure: pause of 10 s for every client
        AssertPaused(await TokenAsync("svc", secret), 900);

        var pause = Assert.Single(await AuditAsync(AuditTypes.ClientAuthThrottled), e => e.ClientId == "svc");
        Assert.Equal("127.0.0.1", pause.IpAddress);
        Assert.StartsWith("2 failed authentications of this client from this address; refused for 00:00:10", pause.Reason, StringComparison.Ordinal);
        var lockout = Assert.Single(await AuditAsync(AuditTypes.ClientAuthLockedOut));
        Assert.Equal("svc", lockout.ClientId);
        Assert.Equal("127.0.0.1", lockout.IpAddress);
        Assert.StartsWith("3 failed authentications of this client from this address; refused for 00:15:00", lockout.Reason, StringComparison.Ordinal);
        var address = Assert.Single(await AuditAsync(AuditTypes.ClientAuthThrottled), e => e.ClientId is null);
        Assert.Equal("127.0.0.1", address.IpAddress);
        Assert.StartsWith("4 failed client authentications from this address (any client); refused for 00:00:10", address.Reason, StringComparison.Ordinal);

        var failures = await AuditAsync(AuditTypes.ClientAuthFailed);
        Assert.Equal(4, failures.Count(e => e.Reason is "wrong client secret" or "unknown client"));
        // Four requests were refused in two pauses: one audited refusal each.
        var refusals = failures.Where(e => e.Reason!.StartsWith("client authentication from this address paused", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, refusals.Count);
        Assert.All(refusals, e => Assert.Equal(("svc", "127.0.0.1"), (e.ClientId, e.IpAddress)));
        Assert.All(await server.Store.Audit.QueryAsync(new AuditQuery { Limit = 1000 }, default),
            e => Assert.DoesNotContain(secret, e.Reason ?? "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OtherEndpointsThatAuthenticateClients_AreThrottledAlike()
    {
        await StartAsync(Throttle(PerClient, pauseAfter: 3));
        var secret = await AddClientAsync("svc");
        for (var i = 0; i < 3; i++) AssertWrong(await TokenAsync("svc", "tss_guess_" + i));

        foreach (var path in new[] { "connect/revoke", "connect/introspect" })
        {
            var answer = await PostFormAsync(_server!, [new("token", "anything")], Basic("svc", secret), path);
            AssertPaused(answer, 10);
        }
    }
}
