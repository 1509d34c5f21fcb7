using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Tessera.Core.Clients;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Feed;

/// <summary>
/// Issue 6: "Disabling or locking a user, changing their permissions, or rotating a client secret takes effect at the
/// next refresh and, through the feed, at the resource servers", and "sign out everywhere" without refusing the sign-in
/// that follows it. Each change is checked at the token endpoint and at an API that uses the Tessera.ResourceServer
/// library and follows the real feed. Tessera's clock is a FakeTimeProvider that only moves when a test says so, so
/// "the same second" and "the same millisecond" are exact, not likely.
/// </summary>
public sealed class RevocationReachesApiTests : IAsyncLifetime
{
    private const string Password = "alice-password-1";
    private TesseraTestServer _server = null!;
    private FeedFollowingApi _api = null!;
    private OAuthDriver _driver = null!;
    private string _webSecret = null!;
    private string _adminSecret = null!;
    private string _aliceId = null!;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        _aliceId = (await _server.AddUserAsync("alice", Password)).Id;
        await _server.AddUserAsync("bob", Password);
        _webSecret = (await _server.AddClientAsync(TestClients.Confidential("web"), confidential: true)).Secret!;
        _adminSecret = (await _server.AddClientAsync(new Client
        {
            Id = "admin", DisplayName = "Operator tool", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["tessera.admin"],
        }, confidential: true)).Secret!;
        _api = await FeedFollowingApi.StartAsync(_server);
        // Start each test at a known place in a second (x.100), so "later in the same second" is exact.
        var now = _server.Time.GetUtcNow();
        _server.Time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() + 1).AddMilliseconds(100));
    }

    public async Task DisposeAsync()
    {
        await _api.DisposeAsync();
        await _server.DisposeAsync();
    }

    // ---- helpers ----------------------------------------------------------------------------------------------------

    private Task<TokenAnswer> LoginAsync(string username = "alice", string password = Password, string scope = "openid offline_access api.read") =>
        _driver.LoginAndExchangeAsync("web", _webSecret, username, password, scope);

    private Task<TokenAnswer> RefreshAsync(string refreshToken, string? secret = null) => _driver.RefreshAsync("web", secret ?? _webSecret, refreshToken);

    private Task<TokenAnswer> ClientCredentialsAsync(string secret) =>
        _driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "api.read" }, "web", secret);

    private static long Iat(string accessToken) => new JsonWebToken(accessToken).GetPayloadValue<long>("iat");

    private async Task<(HttpStatusCode Status, JsonElement Body)> AdminAsync(HttpMethod method, string path, object? body = null)
    {
        var token = await _driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "admin", _adminSecret);
        Assert.True(token.Status == HttpStatusCode.OK, $"admin token: {token.Body}");
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.AccessToken);
        if (body is not null) request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {text}");
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private async Task<bool> IntrospectActiveAsync(string token, string? secret = null)
    {
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/introspect") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("web:" + Uri.EscapeDataString(secret ?? _webSecret))));
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("active").GetBoolean();
    }

    // ---- sign out everywhere, and the sign-in right after it ----------------------------------------------------------

    [Fact]
    public async Task SignOutEverywhere_ThenSigningInAgainAtTheSameInstant_Works_WhileEveryEarlierTokenStaysRefused()
    {
        var second = _server.Time.GetUtcNow().ToUnixTimeSeconds();
        var old = await LoginAsync();
        var pkce = OAuthDriver.NewPkce();
        var pending = await _driver.AuthorizeAsync(_server.CreateClient(new CookieContainer()),
            OAuthDriver.AuthorizeUrl("web", "openid offline_access api.read", pkce.Challenge), "alice", Password);
        var cookies = new CookieContainer();
        var browser = await _driver.SignInAsync("alice", Password, cookies);
        var page = await (await browser.GetAsync("account")).Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(old.AccessToken));
        _server.Time.Advance(TimeSpan.FromMilliseconds(200));

        var signOut = await browser.PostAsync("account/signout-everywhere", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page),
        }));
        Assert.Equal(HttpStatusCode.SeeOther, signOut.StatusCode);

        // From here on the clock stands still: everything below happens in the very millisecond of the sign-out.
        // The same browser signs in again: the account page opens (before the fix it sent the user back to sign in).
        var again = await _driver.SignInAsync("alice", Password, cookies);
        var account = await again.GetAsync("account");
        Assert.Equal(HttpStatusCode.OK, account.StatusCode);
        // And an application gets a new session, whose refresh works.
        var fresh = await LoginAsync();
        var refreshed = await RefreshAsync(fresh.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
        Assert.Equal(second, Iat(old.AccessToken!));
        Assert.Equal(second, Iat(fresh.AccessToken!));

        // Everything from before the sign-out stays refused at the token endpoint: the session's refresh token, and a
        // code issued before it (redeemed only now).
        Assert.Equal("invalid_grant", (await RefreshAsync(old.RefreshToken!)).Error);
        var late = await _driver.TokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = pending["code"], ["redirect_uri"] = OAuthDriver.RedirectUri, ["code_verifier"] = pkce.Verifier,
        }, "web", _webSecret);
        Assert.Equal("invalid_grant", late.Error);
        Assert.False(await IntrospectActiveAsync(old.AccessToken!));
        Assert.True(await IntrospectActiveAsync(fresh.AccessToken!));

        // At the API: the old session's token of the same second is refused (its sid was revoked on the feed), the new
        // session's tokens of that same second are not (the user's watermark voids only the seconds before).
        await _api.CaughtUpAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(old.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(fresh.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(refreshed.AccessToken));
    }

    [Fact]
    public async Task SignOutEverywhere_RefusesTokensOfEarlierSecondsByTheWatermark_AtTheApi()
    {
        var old = await LoginAsync();
        _server.Time.Advance(TimeSpan.FromSeconds(1));
        var refreshed = await RefreshAsync(old.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
        _server.Time.Advance(TimeSpan.FromSeconds(3));
        var browser = await _driver.SignInAsync("alice", Password);
        var page = await (await browser.GetAsync("account")).Content.ReadAsStringAsync();
        await browser.PostAsync("account/signout-everywhere", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page),
        }));

        await _api.CaughtUpAsync();
        // The first access token of the old session and the one from its refresh, seconds earlier: both refused.
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(old.AccessToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(refreshed.AccessToken));
        var bob = await LoginAsync("bob");
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(bob.AccessToken));
    }

    [Fact]
    public async Task PasswordReset_EndsEarlierSessions_AndTheNewPasswordWorksAtOnce()
    {
        var old = await LoginAsync();

        await AdminAsync(HttpMethod.Patch, $"admin/users/{_aliceId}", new { password = "a brand new passphrase" });

        Assert.Equal("invalid_grant", (await RefreshAsync(old.RefreshToken!)).Error);
        // Same instant: the user signs in with the new password.
        var fresh = await LoginAsync(password: "a brand new passphrase");
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(fresh.RefreshToken!)).Status);
        await _api.CaughtUpAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(old.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(fresh.AccessToken));
    }

    // ---- the four changes of the issue ---------------------------------------------------------------------------------

    [Fact]
    public async Task DisablingAUser_RefusesTheirRefresh_AndTheirAccessTokensAtTheApi_NobodyElses()
    {
        var alice = await LoginAsync();
        var bob = await LoginAsync("bob");
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(alice.AccessToken));

        await AdminAsync(HttpMethod.Patch, $"admin/users/{_aliceId}", new { disabled = true });

        Assert.Equal("invalid_grant", (await RefreshAsync(alice.RefreshToken!)).Error);
        Assert.False(await IntrospectActiveAsync(alice.AccessToken!));
        await _api.CaughtUpAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(alice.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(bob.AccessToken));
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(bob.RefreshToken!)).Status);
    }

    [Fact]
    public async Task LockingAUser_RefusesRefreshAndEarlierAccessTokensAtTheApi_UnlockingLetsTheSameSessionGoOn()
    {
        var alice = await LoginAsync();
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(alice.AccessToken));
        _server.Time.Advance(TimeSpan.FromMilliseconds(300));

        await AdminAsync(HttpMethod.Patch, $"admin/users/{_aliceId}", new { lockedUntil = _server.Time.GetUtcNow() + TimeSpan.FromHours(1) });

        Assert.Equal("invalid_grant", (await RefreshAsync(alice.RefreshToken!)).Error);
        Assert.False(await IntrospectActiveAsync(alice.AccessToken!));
        await _api.CaughtUpAsync();
        // Issued in the lock's own second, before the lock: refused (a lock ends no session, so no sid event covers it;
        // the watermark is the next second).
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(alice.AccessToken));

        await AdminAsync(HttpMethod.Patch, $"admin/users/{_aliceId}", new { unlock = true });
        _server.Time.Advance(TimeSpan.FromSeconds(1));

        // A lock is not an ending: the session refreshes again, and its new token is good at the API.
        var resumed = await RefreshAsync(alice.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, resumed.Status);
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(resumed.AccessToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(alice.AccessToken));
    }

    [Fact]
    public async Task NarrowingPermissions_TheNextRefreshIsNarrower_AndEarlierTokensAreRefusedAtTheApi()
    {
        var alice = await LoginAsync(scope: "openid offline_access api.read api.write");
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(alice.AccessToken, "api/write"));

        await AdminAsync(HttpMethod.Patch, $"admin/users/{_aliceId}", new { scopes = new[] { "api.read" } });

        // The token service: the old token carries a permission the user no longer has.
        Assert.False(await IntrospectActiveAsync(alice.AccessToken!));
        await _api.CaughtUpAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(alice.AccessToken, "api/write"));
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(alice.AccessToken));

        _server.Time.Advance(TimeSpan.FromSeconds(1));
        var narrowed = await RefreshAsync(alice.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, narrowed.Status);
        Assert.DoesNotContain("api.write", narrowed.Str("scope")!.Split(' '));
        Assert.True(await IntrospectActiveAsync(narrowed.AccessToken!));
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(narrowed.AccessToken));
        Assert.Equal(HttpStatusCode.Forbidden, await _api.StatusAsync(narrowed.AccessToken, "api/write"));

        // Widening needs no revocation: earlier tokens carry less, not more.
        var feed = _server.Services.GetRequiredService<Core.Sessions.IRevocationFeedStore>();
        var events = (await feed.ReadAfterAsync(0, 100, default)).Count;
        await AdminAsync(HttpMethod.Patch, $"admin/users/{_aliceId}", new { allScopes = true });
        Assert.Equal(events, (await feed.ReadAfterAsync(0, 100, default)).Count);
    }

    [Fact]
    public async Task RotatingAClientSecret_TheOldSecretAuthenticatesNothing_TheClientsEarlierTokensAreRefusedAtTheApi_ItsSessionsGoOn()
    {
        var service = await ClientCredentialsAsync(_webSecret);
        var user = await LoginAsync();
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(service.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(user.AccessToken));
        _server.Time.Advance(TimeSpan.FromMilliseconds(300));

        var (_, rotated) = await AdminAsync(HttpMethod.Post, "admin/clients/web/rotate-secret");
        var newSecret = rotated.GetProperty("secret").GetString()!;

        // The old secret: invalid_client for every grant, including the refresh of a live session.
        var withOld = await ClientCredentialsAsync(_webSecret);
        Assert.Equal(HttpStatusCode.Unauthorized, withOld.Status);
        Assert.Equal("invalid_client", withOld.Error);
        Assert.Equal("invalid_client", (await RefreshAsync(user.RefreshToken!)).Error);
        // What it obtained before is inactive at the token service and refused at the API.
        Assert.False(await IntrospectActiveAsync(service.AccessToken!, newSecret));
        Assert.False(await IntrospectActiveAsync(user.AccessToken!, newSecret));
        await _api.CaughtUpAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(service.AccessToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(user.AccessToken));

        // The sessions are not revoked: with the new secret (from the next second on) the client carries on.
        _server.Time.Advance(TimeSpan.FromSeconds(1));
        var again = await ClientCredentialsAsync(newSecret);
        Assert.Equal(HttpStatusCode.OK, again.Status);
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(again.AccessToken));
        var resumed = await RefreshAsync(user.RefreshToken!, newSecret);
        Assert.Equal(HttpStatusCode.OK, resumed.Status);
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(resumed.AccessToken));
        Assert.True(await IntrospectActiveAsync(resumed.AccessToken!, newSecret));
    }

    [Fact]
    public async Task DeletingAClient_VoidsItsClientCredentialsTokens_AtTheApi_AndAtTessera()
    {
        var service = await ClientCredentialsAsync(_webSecret);
        Assert.Equal(HttpStatusCode.OK, await _api.StatusAsync(service.AccessToken));
        var validator = _server.Services.GetRequiredService<Tessera.Server.Grants.AccessTokenValidator>();
        Assert.NotNull(await validator.ValidateActiveAsync(service.AccessToken!, default));
        _server.Time.Advance(TimeSpan.FromMilliseconds(300));

        await AdminAsync(HttpMethod.Delete, "admin/clients/web");

        // No session carries a client_credentials token: the client watermark on the feed is what reaches the API.
        await _api.CaughtUpAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(service.AccessToken));
        Assert.Null(await validator.ValidateActiveAsync(service.AccessToken!, default));
        // A client created again under the same id does not bring the old tokens back at the API (the watermark stays
        // for the longest access-token lifetime).
        await _server.AddClientAsync(TestClients.Confidential("web"), confidential: true);
        await _api.CaughtUpAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await _api.StatusAsync(service.AccessToken));
    }
}
