using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Keys;

public sealed class SigningAlgorithmTests : IAsyncLifetime
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

    private async Task<JsonWebKeySet> JwksAsync()
    {
        using var http = _server.CreateClient();
        return new JsonWebKeySet(await http.GetStringAsync(".well-known/jwks.json"));
    }

    [Fact]
    public async Task Rs256Client_GetsRs256IdAndAccessTokens_ThatValidateAgainstThePublishedRsaKey()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential("legacy") with { SigningAlgorithm = "RS256" }, confidential: true);
        var tokens = await _driver.LoginAndExchangeAsync(client.Id, secret, "alice", "alice-password-1", "openid offline_access api.read");
        Assert.Equal("RS256", new JsonWebToken(tokens.IdToken).Alg);
        Assert.Equal("RS256", new JsonWebToken(tokens.AccessToken).Alg);
        var jwks = await JwksAsync();
        Assert.Contains(jwks.Keys, k => k.Kty == "RSA" && k.Alg == "RS256" && !k.HasPrivateKey);
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(tokens.IdToken, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer, ValidAudience = client.Id, IssuerSigningKeys = jwks.GetSigningKeys(), ValidAlgorithms = ["RS256"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);

        // Other clients keep ES256.
        var (es, esSecret) = await _server.AddClientAsync(TestClients.Confidential("modern"), confidential: true);
        var modern = await _driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, es.Id, esSecret);
        Assert.Equal("ES256", new JsonWebToken(modern.AccessToken).Alg);
    }

    [Fact]
    public async Task TokensSignedWithNoneOrWithThePublicKeyAsHmacSecret_AreNeverActive()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential("rs") with { SigningAlgorithm = "RS256" }, confidential: true);
        var real = await _driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, client.Id, secret);
        var jwt = new JsonWebToken(real.AccessToken);
        var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(real.AccessToken!.Split('.')[1]));

        // alg=none with the real payload.
        var none = Base64UrlEncoder.Encode(JsonSerializer.Serialize(new { alg = "none", typ = "at+jwt", kid = jwt.Kid })) + "." + Base64UrlEncoder.Encode(payload) + ".";
        // HS256 keyed with the published RSA public key (the classic confusion attack).
        var rsaJwk = (await JwksAsync()).Keys.First(k => k.Kty == "RSA");
        var hmacKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { kty = "RSA", n = rsaJwk.N, e = rsaJwk.E }))) { KeyId = jwt.Kid };
        var confused = new JsonWebTokenHandler().CreateToken(payload, new SigningCredentials(hmacKey, SecurityAlgorithms.HmacSha256),
            new Dictionary<string, object> { ["typ"] = "at+jwt" });

        foreach (var forged in new[] { none, confused })
        {
            Assert.Equal("{\"active\":false}", await Introspect(client.Id, secret!, forged));
        }
        Assert.Contains("\"active\":true", await Introspect(client.Id, secret!, real.AccessToken!));
    }

    private async Task<string> Introspect(string id, string secret, string token)
    {
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/introspect") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token }) };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{id}:{secret}")));
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }
}
