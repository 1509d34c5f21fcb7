using System.Net;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Clients;
using Tessera.Tests.Infrastructure;
using static Tessera.Tests.Server.ServerTestKit;

namespace Tessera.Tests.Server;

/// <summary>RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5-4.6): every way a code exchange can go wrong, and what it leaves behind.</summary>
public sealed class AuthorizationCodeGrantTests(SharedServer shared) : IClassFixture<SharedServer>, IAsyncLifetime
{
    private readonly TesseraTestServer _server = shared.Server;
    private readonly OAuthDriver _driver = shared.Driver;
    private string _web = null!;
    private string _webSecret = null!;
    private string _spa = null!;
    private HttpClient _browser = null!;

    public async Task InitializeAsync()
    {
        var (web, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("web")), confidential: true);
        (_web, _webSecret) = (web.Id, secret!);
        _spa = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("spa")), confidential: false)).Client.Id;
        _browser = await _driver.SignInAsync(SharedServer.User, SharedServer.Password);
    }

    public Task DisposeAsync()
    {
        _browser.Dispose();
        return Task.CompletedTask;
    }

    private async Task<string> CodeAsync(string clientId, string? challenge, string scope = "openid offline_access api.read", string? extra = null)
    {
        var q = await _driver.AuthorizeAsync(_browser, OAuthDriver.AuthorizeUrl(clientId, scope, challenge, extra: extra));
        Assert.True(q.ContainsKey("code"), "no code: " + string.Join("&", q));
        return q["code"];
    }

    private Task<TokenAnswer> ExchangeAsync(string clientId, string? secret, string code, string? verifier, string? redirectUri = OAuthDriver.RedirectUri)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["code"] = code };
        if (redirectUri is not null) form["redirect_uri"] = redirectUri;
        if (verifier is not null) form["code_verifier"] = verifier;
        return _driver.TokenAsync(form, clientId, secret);
    }

    private async Task<JsonElement> IntrospectAsync(string token)
    {
        var answer = await PostFormAsync(_server, [new("token", token)], Basic(_web, _webSecret), "connect/introspect");
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        return answer.Body;
    }

    private async Task<JsonWebToken> ValidateAsync(string token, string audience, string? type = null)
    {
        using var http = _server.CreateClient();
        var jwks = new JsonWebKeySet(await http.GetStringAsync(".well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer, ValidAudience = audience, IssuerSigningKeys = jwks.GetSigningKeys(), ValidAlgorithms = ["ES256"],
            ValidTypes = type is null ? null : [type],
            // The class shares one server whose clock some tests move forward.
            LifetimeValidator = (_, exp, _, _) => exp > _server.Time.GetUtcNow().UtcDateTime,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }

    // ---- success ----

    [Fact]
    public async Task Code_ExchangesForAccessRefreshAndIdTokens_WithPkce()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        var answer = await ExchangeAsync(_spa, null, code, verifier);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        AssertNoStore(answer.Response);
        Assert.Equal("Bearer", answer.Str("token_type"));
        Assert.Equal(300, answer.Num("expires_in"));
        Assert.Equal("openid offline_access api.read", answer.Str("scope"));
        Assert.StartsWith("tsr_", answer.RefreshToken);
        var at = await ValidateAsync(answer.AccessToken!, TestClients.Api, "at+jwt");
        Assert.Equal(_spa, at.GetClaim("client_id").Value);
        Assert.False(string.IsNullOrEmpty(at.GetClaim("sid").Value));
        Assert.False(string.IsNullOrEmpty(at.GetClaim("auth_time").Value));
        var id = await ValidateAsync(answer.IdToken!, _spa);
        Assert.Equal(at.Subject, id.Subject);
        Assert.Equal(_spa, id.GetClaim("azp").Value);
    }

    [Fact]
    public async Task Code_ExchangesWithoutPkce_ForAConfidentialClientThatSentNoChallenge()
    {
        var code = await CodeAsync(_web, challenge: null);

        var answer = await ExchangeAsync(_web, _webSecret, code, verifier: null);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.NotNull(answer.AccessToken);
    }

    [Fact]
    public async Task Code_IdTokenCarriesTheNonceOfTheAuthorizationRequest()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge, "openid", "&nonce=n-0S6_WzA2Mj");

        var answer = await ExchangeAsync(_spa, null, code, verifier);

        var id = await ValidateAsync(answer.IdToken!, _spa);
        Assert.Equal("n-0S6_WzA2Mj", id.GetClaim("nonce").Value);
    }

    [Fact]
    public async Task Code_IdTokenHasNoNonce_WhenNoneWasSent()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var answer = await ExchangeAsync(_spa, null, await CodeAsync(_spa, challenge, "openid"), verifier);

        var id = await ValidateAsync(answer.IdToken!, _spa);
        Assert.False(id.TryGetClaim("nonce", out _));
    }

    [Fact]
    public async Task Code_IssuesNoRefreshToken_WithoutOfflineAccess()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var answer = await ExchangeAsync(_spa, null, await CodeAsync(_spa, challenge, "openid api.read"), verifier);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Null(answer.RefreshToken);
        Assert.Null(answer.Num("refresh_expires_in"));
        Assert.Equal("openid api.read", answer.Str("scope"));
    }

    [Fact]
    public async Task Code_IssuesNoRefreshTokenAndDropsOfflineAccess_ForAClientWithoutTheRefreshGrant()
    {
        var (noRefresh, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("no-refresh")) with { GrantTypes = [GrantTypes.AuthorizationCode] }, confidential: true);
        var code = await CodeAsync(noRefresh.Id, null, "openid offline_access api.read");

        var answer = await ExchangeAsync(noRefresh.Id, secret, code, null);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Null(answer.RefreshToken);
        Assert.Equal("openid api.read", answer.Str("scope"));
    }

    [Fact]
    public async Task Code_IssuesNoIdToken_WithoutOpenid()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var answer = await ExchangeAsync(_spa, null, await CodeAsync(_spa, challenge, "api.read"), verifier);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Null(answer.IdToken);
    }

    [Fact]
    public async Task Code_IsStillAccepted_JustBeforeItsSixtySecondsRunOut()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);
        _server.Time.Advance(TimeSpan.FromSeconds(59));

        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_spa, null, code, verifier)).Status);
    }

    // ---- replay ----

    [Fact]
    public async Task Code_ReplayReturnsInvalidGrant_AndRevokesTheTokensOfTheFirstExchange()
    {
        var code = await CodeAsync(_web, null);
        var first = await ExchangeAsync(_web, _webSecret, code, null);
        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.True((await IntrospectAsync(first.AccessToken!)).GetProperty("active").GetBoolean());

        var replay = await ExchangeAsync(_web, _webSecret, code, null);

        AssertError(replay, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Null(replay.AccessToken);
        var refresh = await _driver.RefreshAsync(_web, _webSecret, first.RefreshToken!);
        AssertError(refresh, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Equal("{\"active\":false}", (await IntrospectAsync(first.AccessToken!)).GetRawText());
        Assert.Equal("{\"active\":false}", (await IntrospectAsync(first.RefreshToken!)).GetRawText());
    }

    [Fact]
    public async Task Code_ReplayByAPublicClient_RevokesTheRefreshTokenOfTheFirstExchange()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);
        var first = await ExchangeAsync(_spa, null, code, verifier);
        Assert.Equal(HttpStatusCode.OK, first.Status);

        AssertError(await ExchangeAsync(_spa, null, code, verifier), HttpStatusCode.BadRequest, "invalid_grant");

        AssertError(await _driver.RefreshAsync(_spa, null, first.RefreshToken!), HttpStatusCode.BadRequest, "invalid_grant");
        using var userinfo = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
        userinfo.Headers.Authorization = new("Bearer", first.AccessToken);
        using var http = _server.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(userinfo)).StatusCode);
    }

    [Fact]
    public async Task Code_ReplayLeavesOtherSessionsOfTheSameUserAlone()
    {
        var other = await ExchangeAsync(_web, _webSecret, await CodeAsync(_web, null), null);
        var code = await CodeAsync(_web, null);
        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_web, _webSecret, code, null)).Status);

        AssertError(await ExchangeAsync(_web, _webSecret, code, null), HttpStatusCode.BadRequest, "invalid_grant");

        Assert.Equal(HttpStatusCode.OK, (await _driver.RefreshAsync(_web, _webSecret, other.RefreshToken!)).Status);
    }

    // ---- refusals ----

    [Fact]
    public async Task Code_ReturnsInvalidGrant_WhenExpiredAfterSixtySeconds()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);
        _server.Time.Advance(TimeSpan.FromSeconds(61));

        var answer = await ExchangeAsync(_spa, null, code, verifier);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Code_ReturnsInvalidGrant_ForAnUnknownCode()
    {
        var (verifier, _) = OAuthDriver.NewPkce();

        AssertError(await ExchangeAsync(_spa, null, "tsc_" + new string('A', 43), verifier), HttpStatusCode.BadRequest, "invalid_grant");
        AssertError(await ExchangeAsync(_spa, null, "not-even-shaped-like-a-code", verifier), HttpStatusCode.BadRequest, "invalid_grant");
    }

    [Theory]
    [InlineData("https://app.example.com/callback/")]
    [InlineData("https://app.example.com/other")]
    [InlineData("https://APP.example.com/callback")]
    public async Task Code_ReturnsInvalidGrant_ForAWrongRedirectUri(string redirectUri)
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        var answer = await ExchangeAsync(_spa, null, code, verifier, redirectUri);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Code_ReturnsInvalidRequest_WhenRedirectUriIsMissing_AndTheCodeStaysUsable()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        AssertError(await ExchangeAsync(_spa, null, code, verifier, redirectUri: null), HttpStatusCode.BadRequest, "invalid_request");

        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_spa, null, code, verifier)).Status);
    }

    [Fact]
    public async Task Code_ReturnsInvalidRequest_WhenCodeIsMissing()
    {
        var (verifier, _) = OAuthDriver.NewPkce();
        var answer = await _driver.TokenAsync(new()
        {
            ["grant_type"] = "authorization_code", ["redirect_uri"] = OAuthDriver.RedirectUri, ["code_verifier"] = verifier,
        }, _spa);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Code_ReturnsInvalidGrant_ForAWrongVerifier()
    {
        var (_, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        var answer = await ExchangeAsync(_spa, null, code, OAuthDriver.NewPkce().Verifier);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Code_ReturnsInvalidGrant_WhenTheChallengeItselfIsSentAsTheVerifier()
    {
        var (_, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        AssertError(await ExchangeAsync(_spa, null, code, challenge), HttpStatusCode.BadRequest, "invalid_grant");
    }

    [Theory]
    [InlineData(42)]
    [InlineData(129)]
    public async Task Code_ReturnsInvalidRequest_ForAVerifierOfTheWrongLength_AndTheCodeStaysUsable(int length)
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        var answer = await ExchangeAsync(_spa, null, code, new string('a', length));

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_spa, null, code, verifier)).Status);
    }

    [Theory]
    [InlineData("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP+")]
    [InlineData("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP/")]
    [InlineData("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP=")]
    [InlineData("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP é")]
    public async Task Code_ReturnsInvalidRequest_ForAVerifierWithCharactersOutsideUnreserved(string badVerifier)
    {
        var (_, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        AssertError(await ExchangeAsync(_spa, null, code, badVerifier), HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Code_AcceptsVerifiersOfExactly43And128Characters()
    {
        foreach (var length in new[] { 43, 128 })
        {
            var verifier = string.Concat(Enumerable.Repeat("aZ0-._~", 20))[..length];
            var challenge = Base64UrlEncoder.Encode(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(verifier)));
            var code = await CodeAsync(_spa, challenge);

            Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_spa, null, code, verifier)).Status);
        }
    }

    [Fact]
    public async Task Code_ReturnsInvalidGrant_WhenAVerifierIsSentForACodeIssuedWithoutAChallenge()
    {
        var code = await CodeAsync(_web, challenge: null);

        var answer = await ExchangeAsync(_web, _webSecret, code, OAuthDriver.NewPkce().Verifier);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Code_ReturnsInvalidGrant_WhenTheVerifierIsMissingForACodeIssuedWithAChallenge()
    {
        var (_, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_web, challenge);

        var answer = await ExchangeAsync(_web, _webSecret, code, verifier: null);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Code_ReturnsInvalidGrant_WhenRedeemedByAnotherClient()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        var byConfidential = await ExchangeAsync(_web, _webSecret, code, verifier);

        AssertError(byConfidential, HttpStatusCode.BadRequest, "invalid_grant");
        Assert.Null(byConfidential.AccessToken);
    }

    [Fact]
    public async Task Code_ReturnsInvalidGrant_WhenAnotherPublicClientPresentsIt()
    {
        var other = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("other-spa")), confidential: false)).Client;
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        AssertError(await ExchangeAsync(other.Id, null, code, verifier), HttpStatusCode.BadRequest, "invalid_grant");
    }

    [Fact]
    public async Task Code_ReturnsUnauthorizedClient_ForAClientWithoutTheCodeGrant()
    {
        var (svc, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("svc")) with { GrantTypes = [GrantTypes.ClientCredentials] }, confidential: true);
        var code = await CodeAsync(_web, null);

        AssertError(await ExchangeAsync(svc.Id, secret, code, null), HttpStatusCode.BadRequest, "unauthorized_client");
        // Refused before the code was looked at: its owner can still redeem it.
        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_web, _webSecret, code, null)).Status);
    }

    [Fact]
    public async Task Code_FailedClientAuthentication_LeavesTheCodeUsable()
    {
        var code = await CodeAsync(_web, null);

        AssertError(await ExchangeAsync(_web, _webSecret + "x", code, null), HttpStatusCode.Unauthorized, "invalid_client");

        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_web, _webSecret, code, null)).Status);
    }

    // ---- a refused exchange should leave the code to its rightful holder ----


    [Fact]
    public async Task Code_WrongVerifier_LeavesTheCodeUsableWithTheRightVerifier()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        AssertError(await ExchangeAsync(_spa, null, code, OAuthDriver.NewPkce().Verifier), HttpStatusCode.BadRequest, "invalid_grant");

        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_spa, null, code, verifier)).Status);
    }

    [Fact]
    public async Task Code_PresentedByAnotherClient_StaysUsableForTheClientItWasIssuedTo()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        AssertError(await ExchangeAsync(_web, _webSecret, code, verifier), HttpStatusCode.BadRequest, "invalid_grant");

        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_spa, null, code, verifier)).Status);
    }

    [Fact]
    public async Task Code_WrongRedirectUri_LeavesTheCodeUsableWithTheRightOne()
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);

        AssertError(await ExchangeAsync(_spa, null, code, verifier, "https://app.example.com/other"), HttpStatusCode.BadRequest, "invalid_grant");

        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(_spa, null, code, verifier)).Status);
    }

    [Fact]
    public async Task Code_ARefusedExchangeRevokesNothing_WhenTheCodeIsPresentedAgainWithTheRightVerifier()
    {
        // Whatever a refused exchange does to the code, it must not be mistaken for a replay of a successful one:
        // no session exists yet, so nothing is revoked and the user's other sessions keep working.
        var other = await ExchangeAsync(_web, _webSecret, await CodeAsync(_web, null), null);
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var code = await CodeAsync(_spa, challenge);
        AssertError(await ExchangeAsync(_spa, null, code, OAuthDriver.NewPkce().Verifier), HttpStatusCode.BadRequest, "invalid_grant");

        await ExchangeAsync(_spa, null, code, verifier);

        Assert.Equal(HttpStatusCode.OK, (await _driver.RefreshAsync(_web, _webSecret, other.RefreshToken!)).Status);
    }
}
