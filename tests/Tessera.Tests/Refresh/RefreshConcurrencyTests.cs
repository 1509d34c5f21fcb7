using System.Net;
using Microsoft.IdentityModel.JsonWebTokens;
using Tessera.Core.Audit;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Refresh;

/// <summary>
/// Issue 3, "Shown by": concurrency over real HTTP (Kestrel on loopback) on a real SQLite file. Many presentations of
/// one refresh token yield exactly one successor and never a 5xx; after the retry window one more replay kills the session.
/// </summary>
public sealed class RefreshConcurrencyTests : IAsyncLifetime
{
    private const string Password = "alice-password-1";
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        await _server.AddUserAsync("alice", Password);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string SessionOf(string accessToken) => new JsonWebToken(accessToken).GetClaim("sid").Value;

    [Fact]
    public async Task TwoHundredParallelRefreshes_OfOneToken_YieldExactlyOneSuccessor_AndNo5xx()
    {
        var (client, _) = await _server.AddClientAsync(TestClients.Public(), confidential: false);
        var first = await _driver.LoginAndExchangeAsync(client.Id, null, "alice", Password);
        var original = first.RefreshToken!;
        var sid = SessionOf(first.AccessToken!);

        using var http = _server.CreateClient();
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var requests = Enumerable.Range(0, 200).Select(_ => Task.Run(async () =>
        {
            await go.Task;
            return await _driver.RefreshAsync(client.Id, null, original, http: http);
        })).ToArray();
        go.SetResult();
        var answers = await Task.WhenAll(requests);

        Assert.DoesNotContain(answers, a => (int)a.Status >= 500);
        Assert.All(answers, a => Assert.True(a.Status == HttpStatusCode.OK, $"{(int)a.Status} {a.Body}"));
        var successors = answers.Select(a => a.RefreshToken).Distinct().ToList();
        var successor = Assert.Single(successors);
        Assert.NotNull(successor);
        Assert.NotEqual(original, successor);
        Assert.All(answers, a => Assert.False(string.IsNullOrEmpty(a.AccessToken)));
        Assert.All(answers, a => Assert.Equal(sid, SessionOf(a.AccessToken!)));

        var store = _server.Store;
        Assert.Single(await store.Audit.QueryAsync(new AuditQuery { SessionId = sid, Type = AuditTypes.Refreshed, Limit = 1000 }, default));
        Assert.Equal(199, (await store.Audit.QueryAsync(new AuditQuery { SessionId = sid, Type = AuditTypes.RefreshRetried, Limit = 1000 }, default)).Count);
        Assert.Empty(await store.Audit.QueryAsync(new AuditQuery { SessionId = sid, Type = AuditTypes.ReuseDetected }, default));

        // Once the window closed, one more replay is reuse: the session dies and its successor with it.
        _server.Time.Advance(TimeSpan.FromSeconds(31));
        var replay = await _driver.RefreshAsync(client.Id, null, original, http: http);
        Assert.Equal(HttpStatusCode.BadRequest, replay.Status);
        Assert.Equal("invalid_grant", replay.Error);
        var session = await store.Sessions.FindAsync(sid, default);
        Assert.NotNull(session?.RevokedAt);
        Assert.Equal(RevocationReasons.Reuse, session!.RevokedReason);
        Assert.Single(await store.Audit.QueryAsync(new AuditQuery { SessionId = sid, Type = AuditTypes.ReuseDetected }, default));
        var dead = await _driver.RefreshAsync(client.Id, null, successor!, http: http);
        Assert.Equal("invalid_grant", dead.Error);
    }

    [Fact]
    public async Task ParallelRefreshes_OfAConfidentialClient_AlsoYieldOneSuccessor()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential(), confidential: true);
        var first = await _driver.LoginAndExchangeAsync(client.Id, secret, "alice", Password);

        using var http = _server.CreateClient();
        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => _driver.RefreshAsync(client.Id, secret, first.RefreshToken!, http: http))));

        Assert.All(answers, a => Assert.True(a.Status == HttpStatusCode.OK, $"{(int)a.Status} {a.Body}"));
        Assert.Single(answers.Select(a => a.RefreshToken).Distinct());
        Assert.Single(await _server.Store.Audit.QueryAsync(
            new AuditQuery { SessionId = SessionOf(first.AccessToken!), Type = AuditTypes.Refreshed }, default));
    }

    [Fact]
    public async Task TwentyParallelExchanges_OfOneCode_YieldExactlyOne200()
    {
        var (client, _) = await _server.AddClientAsync(TestClients.Public(), confidential: false);
        var (verifier, challenge) = OAuthDriver.NewPkce();
        using var browser = _server.CreateClient(new CookieContainer());
        var result = await _driver.AuthorizeAsync(browser, OAuthDriver.AuthorizeUrl(client.Id, "openid offline_access api.read", challenge), "alice", Password);
        var code = result["code"];

        using var http = _server.CreateClient();
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var requests = Enumerable.Range(0, 20).Select(_ => Task.Run(async () =>
        {
            await go.Task;
            return await _driver.TokenAsync(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = OAuthDriver.RedirectUri, ["code_verifier"] = verifier,
            }, client.Id, null, http);
        })).ToArray();
        go.SetResult();
        var answers = await Task.WhenAll(requests);

        Assert.DoesNotContain(answers, a => (int)a.Status >= 500);
        var winner = Assert.Single(answers, a => a.Status == HttpStatusCode.OK);
        Assert.False(string.IsNullOrEmpty(winner.AccessToken));
        Assert.All(answers.Where(a => a != winner), a =>
        {
            Assert.Equal(HttpStatusCode.BadRequest, a.Status);
            Assert.Equal("invalid_grant", a.Error);
        });
        // However the race went, one code made at most one session.
        Assert.Single(await _server.Store.Sessions.ListByClientAsync(client.Id, default));
    }
}
