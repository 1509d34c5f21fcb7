using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Bff.Oidc;
using Tessera.EdDsa;

namespace Tessera.Bff.Tests.Unit;

/// <summary>
/// ID tokens Tessera signs with EdDSA for a client configured so: the backend takes the Ed25519 key from the JWKS and
/// checks at_hash with SHA-512 when its SigningAlgorithms list EdDSA, and refuses such tokens otherwise (the default).
/// </summary>
public sealed class EdDsaIdTokenTests : IAsyncLifetime
{
    private const string ClientId = "spa-bff";
    private readonly EdDsaSecurityKey _key = EdDsaSecurityKey.FromPkcs8(EdDsaSecurityKey.CreatePkcs8(), "ed-1");
    private WebApplication _authority = null!;
    private string _url = "";
    private ServiceProvider _services = null!;

    public async Task InitializeAsync()
    {
        using (var l = new TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            _url = $"http://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}";
        }
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(_url);
        _authority = builder.Build();
        _authority.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = _url, ["authorization_endpoint"] = _url + "/connect/authorize", ["token_endpoint"] = _url + "/connect/token",
            ["jwks_uri"] = _url + "/jwks",
        }));
        var jwk = new Dictionary<string, string>(_key.PublicJwkMembers()) { ["kid"] = "ed-1", ["alg"] = "EdDSA", ["use"] = "sig" };
        _authority.MapGet("/jwks", () => Results.Json(new { keys = new[] { jwk } }));
        await _authority.StartAsync();
        _services = new ServiceCollection().AddHttpClient().BuildServiceProvider();
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _authority.DisposeAsync();
        _key.Dispose();
    }

    private TokenValidator Validator(params string[] algorithms)
    {
        var options = Options.Create(new TesseraBffOptions { Authority = _url, ClientId = ClientId, ClientSecret = "s", SigningAlgorithms = algorithms });
        var authority = new AuthorityClient(_services.GetRequiredService<IHttpClientFactory>(), options, TimeProvider.System, NullLogger<AuthorityClient>.Instance);
        return new TokenValidator(authority, options, TimeProvider.System);
    }

    private string IdToken(string accessToken, string nonce) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = _url, Audience = ClientId, IssuedAt = DateTime.UtcNow, Expires = DateTime.UtcNow.AddMinutes(5),
        Claims = new Dictionary<string, object>
        {
            ["sub"] = "user-1", ["nonce"] = nonce, ["azp"] = ClientId,
            // OIDC Core §3.1.3.6 with Ed25519's own hash, SHA-512, as Tessera computes it.
            ["at_hash"] = Base64UrlEncoder.Encode(SHA512.HashData(Encoding.ASCII.GetBytes(accessToken)), 0, 32),
        },
        SigningCredentials = new SigningCredentials(_key, EdDsaAlgorithms.EdDsa),
    });

    [Fact]
    public async Task An_EdDSA_ID_token_is_accepted_when_EdDSA_is_listed_and_refused_by_default()
    {
        var idToken = IdToken("the-access-token", "n-1");
        Assert.Equal("EdDSA", new JsonWebToken(idToken).Alg);

        var accepted = await Validator("ES256", "EdDSA").ValidateIdTokenAsync(idToken, "n-1", "the-access-token", default);
        Assert.Null(accepted.Error);
        Assert.Equal("user-1", accepted.Token!.Subject);

        var wrongAccessToken = await Validator("ES256", "EdDSA").ValidateIdTokenAsync(idToken, "n-1", "another-access-token", default);
        Assert.Contains("at_hash", wrongAccessToken.Error, StringComparison.Ordinal);

        var defaults = await Validator([.. new TesseraBffOptions().SigningAlgorithms]).ValidateIdTokenAsync(idToken, "n-1", "the-access-token", default);
        Assert.Null(defaults.Token);
        Assert.NotNull(defaults.Error);
    }
}
