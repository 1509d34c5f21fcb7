using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using NSec.Cryptography;
using Tessera.EdDsa;
using Tessera.ResourceServer.Tests.Infrastructure;

namespace Tessera.ResourceServer.Tests.Unit;

/// <summary>
/// EdDSA (Ed25519) access tokens in the library: accepted only when the API allow-lists "EdDSA", and then found among
/// the authority's JWKS keys, which Microsoft.IdentityModel would otherwise leave out.
/// </summary>
public sealed class EdDsaValidationTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly Key _ed = Key.Create(SignatureAlgorithm.Ed25519);
    private LocalIssuer _issuer = null!;

    public async Task InitializeAsync() => _issuer = await LocalIssuer.StartAsync(_time);

    public async Task DisposeAsync()
    {
        await _issuer.DisposeAsync();
        _ed.Dispose();
    }

    private byte[] RawPublicKey => _ed.PublicKey.Export(KeyBlobFormat.RawPublicKey);

    /// <summary>Signed by NSec directly, not by the library's own provider.</summary>
    private string SignEdDsa(Dictionary<string, object> payload, string kid = "e1") =>
        LocalIssuer.Assemble(LocalIssuer.Header("EdDSA", kid), payload, input => SignatureAlgorithm.Ed25519.Sign(_ed, input));

    private Dictionary<string, object> Claims() => _issuer.AccessTokenClaims(ProtectedApi.Audience, now: _time.GetUtcNow());

    [Fact]
    public async Task An_EdDSA_token_is_accepted_when_the_API_allow_lists_EdDSA()
    {
        using var harness = new HandlerHarness(_issuer, _time, o => o.ValidAlgorithms.Add("EdDSA"));
        var parameters = HandlerHarness.WithKeys(harness.Parameters, EdDsaSecurityKey.FromPublicKey(RawPublicKey, "e1"), new ECDsaSecurityKey(_issuer.EcKey) { KeyId = "k1" });

        var result = await harness.ValidateAsync(SignEdDsa(Claims()), parameters);
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal("user-1", result.ClaimsIdentity.FindFirst("sub")?.Value);
        // ES256 keeps working next to it.
        Assert.True((await harness.ValidateAsync(_issuer.SignEs256(LocalIssuer.Header(), Claims()), parameters)).IsValid);

        // Altered after signing: refused.
        var parts = SignEdDsa(Claims()).Split('.');
        var other = Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(Claims()));
        Assert.False((await harness.ValidateAsync($"{parts[0]}.{other}.{parts[2]}", parameters)).IsValid);
    }

    [Fact]
    public async Task An_EdDSA_token_is_refused_when_EdDSA_is_not_allow_listed_which_is_the_default()
    {
        Assert.DoesNotContain("EdDSA", TesseraAccessTokenDefaults.Algorithms);
        using var harness = new HandlerHarness(_issuer, _time);
        var parameters = HandlerHarness.WithKeys(harness.Parameters, EdDsaSecurityKey.FromPublicKey(RawPublicKey, "e1"));

        var result = await harness.ValidateAsync(SignEdDsa(Claims()), parameters);
        Assert.False(result.IsValid);
        Assert.Equal("The token's signing algorithm is not accepted.", ConfigureTesseraJwtBearer.Describe(result.Exception));
    }

    [Fact]
    public void The_resolver_finds_Ed25519_keys_in_the_JWKS_and_otherwise_resolves_by_kid_like_the_stock_handler()
    {
        var jwks = new JsonWebKeySet(JsonSerializer.Serialize(new
        {
            keys = new object[]
            {
                LocalIssuer.Jwk(_issuer.EcKey, "k1"),
                new Dictionary<string, string> { ["kty"] = "OKP", ["crv"] = "Ed25519", ["x"] = Base64UrlEncoder.Encode(RawPublicKey), ["kid"] = "e1", ["alg"] = "EdDSA", ["use"] = "sig" },
            },
        }));
        var configuration = new OpenIdConnectConfiguration { JsonWebKeySet = jwks };
        foreach (var k in jwks.GetSigningKeys()) configuration.SigningKeys.Add(k);
        Assert.DoesNotContain(configuration.SigningKeys, k => k.KeyId == "e1");
        var parameters = new TokenValidationParameters();

        var edToken = new JsonWebToken(SignEdDsa(Claims()));
        var ed = Assert.Single(EdDsaKeyResolver.Resolve(edToken.EncodedToken, edToken, "e1", parameters, configuration)!);
        Assert.IsType<EdDsaSecurityKey>(ed);
        // Converted once per configuration, not per token.
        Assert.Same(ed, Assert.Single(EdDsaKeyResolver.Resolve(edToken.EncodedToken, edToken, "e1", parameters, configuration)!));

        var esToken = new JsonWebToken(_issuer.SignEs256(LocalIssuer.Header(), Claims()));
        Assert.Equal("k1", Assert.Single(EdDsaKeyResolver.Resolve(esToken.EncodedToken, esToken, "k1", parameters, configuration)!).KeyId);
        // An unknown kid resolves nothing, so the handler tries every key and JwtBearer may refresh the JWKS.
        Assert.Null(EdDsaKeyResolver.Resolve(esToken.EncodedToken, esToken, "unknown", parameters, configuration));
    }
}
