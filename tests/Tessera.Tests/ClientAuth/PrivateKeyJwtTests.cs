using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.ClientAuth;

public sealed class PrivateKeyJwtTests : IAsyncLifetime, IDisposable
{
    private const string AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(ECDsa.Create(_key.ExportParameters(false))) { KeyId = "k1" });
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = jwk.Kid, use = "sig", alg = "ES256" } } });
        await _server.Store.Clients.SaveAsync(TestClients.Confidential("pkj") with { Jwks = jwks }, default);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose()
    {
        _key.Dispose();
        _otherKey.Dispose();
    }

    private string Assertion(ECDsa? key = null, string? aud = null, TimeSpan? lifetime = null, string? jti = null, string iss = "pkj", string sub = "pkj")
    {
        var now = _server.Time.GetUtcNow();
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = iss,
            Audience = aud ?? _server.Issuer,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + (lifetime ?? TimeSpan.FromMinutes(1))).UtcDateTime,
            Claims = new Dictionary<string, object> { ["sub"] = sub, ["jti"] = jti ?? Guid.NewGuid().ToString("N") },
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key ?? _key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha256),
        });
    }

    private Task<TokenAnswer> TokenAsync(string assertion, Dictionary<string, string>? extra = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_assertion_type"] = AssertionType, ["client_assertion"] = assertion };
        foreach (var (k, v) in extra ?? []) form[k] = v;
        return _driver.TokenAsync(form);
    }

    [Fact]
    public async Task ValidAssertion_AuthenticatesTheClient()
    {
        var answer = await TokenAsync(Assertion());
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("pkj", new JsonWebToken(answer.AccessToken).GetClaim("client_id").Value);
        // The token endpoint URL is an accepted audience too.
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(Assertion(aud: _server.Issuer + "/connect/token"))).Status);
    }

    [Fact]
    public async Task ReplayedAssertion_IsRefused()
    {
        var assertion = Assertion();
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(assertion)).Status);
        var replay = await TokenAsync(assertion);
        Assert.Equal(HttpStatusCode.Unauthorized, replay.Status);
        Assert.Equal("invalid_client", replay.Error);
    }

    [Fact]
    public async Task Assertions_WithWrongKeyAudienceSubjectOrLongLifetime_AreRefused()
    {
        foreach (var bad in new[]
        {
            Assertion(key: _otherKey),
            Assertion(aud: "https://someone-else.example"),
            Assertion(lifetime: TimeSpan.FromMinutes(30)),
            Assertion(sub: "other"),
            Assertion(lifetime: TimeSpan.FromSeconds(-60)),
        })
        {
            var answer = await TokenAsync(bad);
            Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
            Assert.Equal("invalid_client", answer.Error);
        }
    }

    [Fact]
    public async Task Assertion_CombinedWithASecretOrAnotherClientId_IsInvalidRequest()
    {
        Assert.Equal("invalid_request", (await TokenAsync(Assertion(), new() { ["client_secret"] = "x" })).Error);
        Assert.Equal("invalid_request", (await TokenAsync(Assertion(), new() { ["client_id"] = "someone-else" })).Error);
        Assert.Equal("invalid_request", (await _driver.TokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_assertion_type"] = "urn:other", ["client_assertion"] = Assertion(),
        })).Error);
    }

    [Fact]
    public async Task KeyClient_CannotAuthenticateWithoutAnAssertion()
    {
        var answer = await _driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = "pkj" });
        Assert.Equal(HttpStatusCode.Unauthorized, answer.Status);
        Assert.Equal("invalid_client", answer.Error);
    }
}
