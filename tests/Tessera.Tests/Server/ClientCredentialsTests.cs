using System.Net;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Clients;
using Tessera.Tests.Infrastructure;
using static Tessera.Tests.Server.ServerTestKit;

namespace Tessera.Tests.Server;

/// <summary>RFC 6749 §4.4 with RFC 8707 resource indicators and RFC 9068 access tokens.</summary>
public sealed class ClientCredentialsTests(SharedServer shared) : IClassFixture<SharedServer>, IAsyncLifetime
{
    private const string OtherApi = "https://reports.example.com";
    private readonly TesseraTestServer _server = shared.Server;
    private readonly OAuthDriver _driver = shared.Driver;
    private string _clientId = null!;
    private string _secret = null!;

    public async Task InitializeAsync()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("service")) with { Resources = [TestClients.Api, OtherApi] }, confidential: true);
        (_clientId, _secret) = (client.Id, secret!);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private Task<TokenAnswer> RequestAsync(string? scope = null, string? resource = null, string? clientId = null, string? secret = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials" };
        if (scope is not null) form["scope"] = scope;
        if (resource is not null) form["resource"] = resource;
        return _driver.TokenAsync(form, clientId ?? _clientId, clientId is null ? _secret : secret);
    }

    private async Task<JsonWebToken> ValidateAsync(string accessToken, string audience)
    {
        using var http = _server.CreateClient();
        var jwks = new JsonWebKeySet(await http.GetStringAsync(".well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(accessToken, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer, ValidAudience = audience, IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"], ValidAlgorithms = ["ES256"],
            LifetimeValidator = (_, exp, _, _) => exp > _server.Time.GetUtcNow().UtcDateTime,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }

    [Fact]
    public async Task ClientCredentials_IssuesAnRfc9068AccessToken_ForAScopeSubset()
    {
        var answer = await RequestAsync("api.read");

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        AssertNoStore(answer.Response);
        Assert.Equal("Bearer", answer.Str("token_type"));
        Assert.Equal(300, answer.Num("expires_in"));
        Assert.Equal("api.read", answer.Str("scope"));
        Assert.Null(answer.RefreshToken);
        Assert.Null(answer.IdToken);

        var jwt = await ValidateAsync(answer.AccessToken!, TestClients.Api);
        Assert.Equal("at+jwt", jwt.Typ);
        Assert.Equal("ES256", jwt.Alg);
        Assert.Equal([TestClients.Api], jwt.Audiences);
        Assert.Equal(_clientId, jwt.Subject);
        Assert.Equal(_clientId, jwt.GetClaim("client_id").Value);
        Assert.Equal("api.read", jwt.GetClaim("scope").Value);
        Assert.False(string.IsNullOrEmpty(jwt.Id));
        Assert.False(jwt.TryGetClaim("sid", out _));
        Assert.Equal(300, (jwt.ValidTo - jwt.IssuedAt).TotalSeconds);
    }

    [Fact]
    public async Task ClientCredentials_GrantsEveryNonIdentityScopeOfTheClient_WhenNoScopeIsAsked()
    {
        var answer = await RequestAsync();

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("api.read api.write", answer.Str("scope"));
    }

    [Fact]
    public async Task ClientCredentials_GivesEachTokenItsOwnJti()
    {
        var a = await ValidateAsync((await RequestAsync("api.read")).AccessToken!, TestClients.Api);
        var b = await ValidateAsync((await RequestAsync("api.read")).AccessToken!, TestClients.Api);

        Assert.NotEqual(a.Id, b.Id);
    }

    [Theory]
    [InlineData("api.admin")]
    [InlineData("api.read api.admin")]
    [InlineData("openid")]
    [InlineData("api.read openid")]
    [InlineData("offline_access")]
    [InlineData("profile")]
    [InlineData("API.READ")]
    public async Task ClientCredentials_Returns400InvalidScope_ForAScopeTheClientMayNotGetThisWay(string scope)
    {
        var answer = await RequestAsync(scope);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_scope");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task ClientCredentials_Returns400InvalidScope_ForAMalformedScope()
    {
        var answer = await RequestAsync("api.read \"quoted\"");

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_scope");
    }

    [Fact]
    public async Task ClientCredentials_Returns400UnauthorizedClient_ForAPublicClient()
    {
        var pub = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("spa")) with { GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.ClientCredentials] }, confidential: false)).Client;

        var answer = await RequestAsync("api.read", clientId: pub.Id);

        AssertError(answer, HttpStatusCode.BadRequest, "unauthorized_client");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task ClientCredentials_Returns400UnauthorizedClient_WhenTheClientIsNotAllowedTheGrant()
    {
        var (web, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("web")) with { GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken] }, confidential: true);

        var answer = await RequestAsync("api.read", clientId: web.Id, secret: secret);

        AssertError(answer, HttpStatusCode.BadRequest, "unauthorized_client");
    }

    [Fact]
    public async Task ClientCredentials_UsesTheRequestedResourceAsTheAudience()
    {
        var answer = await RequestAsync("api.read", OtherApi);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        var jwt = await ValidateAsync(answer.AccessToken!, OtherApi);
        Assert.Equal([OtherApi], jwt.Audiences);
        Assert.False(jwt.TryGetClaim("sid", out _));
    }

    [Fact]
    public async Task ClientCredentials_UsesTheClientsFirstResource_WhenNoneIsAsked()
    {
        var answer = await RequestAsync("api.read");

        var jwt = await ValidateAsync(answer.AccessToken!, TestClients.Api);
        Assert.Equal([TestClients.Api], jwt.Audiences);
    }

    [Theory]
    [InlineData("https://evil.example.com")]
    [InlineData("https://api.example.com/")]
    [InlineData("https://API.example.com")]
    [InlineData("https://api.example.com#frag")]
    [InlineData("api.example.com")]
    [InlineData("/relative")]
    public async Task ClientCredentials_Returns400InvalidTarget_ForAResourceTheClientMayNotAskFor(string resource)
    {
        var answer = await RequestAsync("api.read", resource);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_target");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task ClientCredentials_HonoursThePerClientAccessTokenLifetime()
    {
        var (shortLived, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("short")) with { AccessTokenLifetime = TimeSpan.FromSeconds(60) }, confidential: true);

        var answer = await RequestAsync(clientId: shortLived.Id, secret: secret);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(60, answer.Num("expires_in"));
        var jwt = await ValidateAsync(answer.AccessToken!, TestClients.Api);
        Assert.Equal(60, (jwt.ValidTo - jwt.IssuedAt).TotalSeconds);
    }
}
