using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Server;

public sealed class CodeFlowTests : IAsyncLifetime
{
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        await _server.AddUserAsync("alice", "alice-password-1");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task CodeFlow_IssuesTokensThatValidateAgainstTheServedJwks()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential(), confidential: true);
        var answer = await _driver.LoginAndExchangeAsync(client.Id, secret, "alice", "alice-password-1", "openid profile offline_access api.read");

        Assert.Equal("Bearer", answer.Str("token_type"));
        Assert.Equal(300, answer.Num("expires_in"));
        Assert.StartsWith("tsr_", answer.RefreshToken);
        Assert.True(answer.Num("refresh_expires_in") > 0);
        Assert.Equal("no-store", answer.Response.Headers.CacheControl!.ToString());
        Assert.Contains("no-cache", answer.Response.Headers.Pragma.ToString());

        using var http = _server.CreateClient();
        var jwks = new JsonWebKeySet(await http.GetStringAsync(".well-known/jwks.json"));
        var handler = new JsonWebTokenHandler();
        var at = await handler.ValidateTokenAsync(answer.AccessToken, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer, ValidAudience = TestClients.Api, IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"], ValidAlgorithms = ["ES256"],
        });
        Assert.True(at.IsValid, at.Exception?.Message);
        var jwt = (JsonWebToken)at.SecurityToken;
        Assert.Equal(client.Id, jwt.GetClaim("client_id").Value);
        Assert.Equal("openid profile offline_access api.read", jwt.GetClaim("scope").Value);
        Assert.NotNull(jwt.GetClaim("sid").Value);
        Assert.NotNull(jwt.GetClaim("jti").Value);
        Assert.NotNull(jwt.GetClaim("auth_time").Value);

        var id = await handler.ValidateTokenAsync(answer.IdToken, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer, ValidAudience = client.Id, IssuerSigningKeys = jwks.GetSigningKeys(), ValidAlgorithms = ["ES256"],
        });
        Assert.True(id.IsValid, id.Exception?.Message);
        var idt = (JsonWebToken)id.SecurityToken;
        Assert.Equal(client.Id, idt.GetClaim("azp").Value);
        Assert.Equal(jwt.GetClaim("sid").Value, idt.GetClaim("sid").Value);
        Assert.False(string.IsNullOrEmpty(idt.GetClaim("at_hash").Value));

        using var userinfo = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
        userinfo.Headers.Authorization = new AuthenticationHeaderValue("Bearer", answer.AccessToken);
        var ui = await http.SendAsync(userinfo);
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
        var claims = JsonDocument.Parse(await ui.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("alice", claims.GetProperty("preferred_username").GetString());
    }

    [Fact]
    public async Task Refresh_RotatesTheToken_AndTheOldOneStillReturnsTheSameSuccessorInsideTheWindow()
    {
        var (client, _) = await _server.AddClientAsync(TestClients.Public(), confidential: false);
        var first = await _driver.LoginAndExchangeAsync(client.Id, null, "alice", "alice-password-1");
        var second = await _driver.RefreshAsync(client.Id, null, first.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, second.Status);
        Assert.NotEqual(first.RefreshToken, second.RefreshToken);

        var retry = await _driver.RefreshAsync(client.Id, null, first.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, retry.Status);
        Assert.Equal(second.RefreshToken, retry.RefreshToken);

        _server.Time.Advance(TimeSpan.FromSeconds(31));
        var reuse = await _driver.RefreshAsync(client.Id, null, first.RefreshToken!);
        Assert.Equal("invalid_grant", reuse.Error);
        var dead = await _driver.RefreshAsync(client.Id, null, second.RefreshToken!);
        Assert.Equal("invalid_grant", dead.Error);
    }
}
