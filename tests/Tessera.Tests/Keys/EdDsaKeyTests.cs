using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NSec.Cryptography;
using Tessera.EdDsa;

namespace Tessera.Tests.Keys;

/// <summary>
/// The Ed25519 key and signature provider on their own: RFC 8037's test vectors, JsonWebTokenHandler round trips
/// checked by NSec directly on the JWS bytes, no algorithm confusion in either direction, and JWK import rules.
/// </summary>
public sealed class EdDsaKeyTests
{
    // RFC 8037 Appendix A.1 (the key), A.3 (its JWK thumbprint), A.4 (a JWS signed with it).
    private const string RfcD = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    private const string RfcX = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    private const string RfcThumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
    private const string RfcSigningInput = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    private const string RfcSignature = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    private static readonly JsonWebTokenHandler Handler = new();

    /// <summary>RFC 8410 §7: an Ed25519 PKCS#8 key is this fixed DER prefix followed by the 32-octet seed.</summary>
    internal static byte[] Pkcs8FromSeed(byte[] seed) => [.. Convert.FromHexString("302e020100300506032b657004220420"), .. seed];

    private static EdDsaSecurityKey NewKey(string kid = "ed-1")
    {
        var pkcs8 = EdDsaSecurityKey.CreatePkcs8();
        try
        {
            return EdDsaSecurityKey.FromPkcs8(pkcs8, kid);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    private static string Mint(SecurityKey key, string alg, string kid) => Handler.CreateToken(new SecurityTokenDescriptor
    {
        Issuer = "https://issuer.example", Audience = "api", Expires = DateTime.UtcNow.AddMinutes(5), TokenType = "at+jwt",
        Claims = new Dictionary<string, object> { ["sub"] = "alice" },
        SigningCredentials = new SigningCredentials(key, alg) { Key = { KeyId = kid } },
    });

    private static TokenValidationParameters Parameters(params SecurityKey[] keys) => new()
    {
        ValidIssuer = "https://issuer.example", ValidAudience = "api", IssuerSigningKeys = keys,
        ValidAlgorithms = ["ES256", "RS256", "EdDSA"], TryAllIssuerSigningKeys = true,
    };

    /// <summary>An Ed25519 check that shares nothing with the code under test but libsodium: NSec on the raw JWS octets.</summary>
    internal static bool NSecVerifies(string jws, byte[] rawPublicKey)
    {
        var parts = jws.Split('.');
        if (parts.Length != 3) return false;
        var publicKey = PublicKey.Import(SignatureAlgorithm.Ed25519, rawPublicKey, KeyBlobFormat.RawPublicKey);
        return SignatureAlgorithm.Ed25519.Verify(publicKey, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64UrlEncoder.DecodeBytes(parts[2]));
    }

    [Fact]
    public void Rfc8037_AppendixA_KeyThumbprintAndSignature_AreReproduced()
    {
        using var key = EdDsaSecurityKey.FromPkcs8(Pkcs8FromSeed(Base64UrlEncoder.DecodeBytes(RfcD)));
        Assert.Equal(RfcX, Base64UrlEncoder.Encode(key.ExportRawPublicKey()));
        Assert.Equal(RfcThumbprint, Base64UrlEncoder.Encode(key.ComputeJwkThumbprint()));

        // Ed25519 is deterministic: the provider must produce the RFC's signature octet for octet.
        var signer = key.CryptoProviderFactory.CreateForSigning(key, EdDsaAlgorithms.EdDsa);
        Assert.Equal(RfcSignature, Base64UrlEncoder.Encode(signer.Sign(Encoding.ASCII.GetBytes(RfcSigningInput))));
        var published = EdDsaSecurityKey.FromJsonWebKey(new JsonWebKey { Kty = "OKP", Crv = "Ed25519", X = RfcX })!;
        var verifier = published.CryptoProviderFactory.CreateForVerifying(published, EdDsaAlgorithms.EdDsa);
        Assert.True(verifier.Verify(Encoding.ASCII.GetBytes(RfcSigningInput), Base64UrlEncoder.DecodeBytes(RfcSignature)));
        Assert.False(verifier.Verify(Encoding.ASCII.GetBytes(RfcSigningInput + "x"), Base64UrlEncoder.DecodeBytes(RfcSignature)));
    }

    [Fact]
    public async Task JsonWebTokenHandler_SignsEdDsa_AndTheSignatureVerifiesWithNSecAndWithThePublicKeyOnly()
    {
        using var key = NewKey();
        var token = Mint(key, EdDsaAlgorithms.EdDsa, "ed-1");

        var jwt = new JsonWebToken(token);
        Assert.Equal("EdDSA", jwt.Alg);
        Assert.Equal("ed-1", jwt.Kid);
        Assert.Equal(64, Base64UrlEncoder.DecodeBytes(token.Split('.')[2]).Length);
        Assert.True(NSecVerifies(token, key.ExportRawPublicKey()));

        var verifier = key.PublicOnly();
        Assert.Equal(PrivateKeyStatus.DoesNotExist, verifier.PrivateKeyStatus);
        var result = await Handler.ValidateTokenAsync(token, Parameters(verifier));
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal("alice", ((JsonWebToken)result.SecurityToken).Subject);
    }

    [Fact]
    public async Task TamperedOrForeignEdDsaTokens_AreRefused()
    {
        using var key = NewKey();
        using var stranger = NewKey();
        var token = Mint(key, EdDsaAlgorithms.EdDsa, "ed-1");
        var parts = token.Split('.');
        var otherPayload = Base64UrlEncoder.Encode("""{"iss":"https://issuer.example","aud":"api","sub":"mallory","exp":4102444800}""");
        var signature = Base64UrlEncoder.DecodeBytes(parts[2]);

        string[] forged =
        [
            $"{parts[0]}.{otherPayload}.{parts[2]}",
            Mint(stranger, EdDsaAlgorithms.EdDsa, "ed-1"),
            $"{parts[0]}.{parts[1]}.{Base64UrlEncoder.Encode(signature[..63])}",
            $"{parts[0]}.{parts[1]}.{Base64UrlEncoder.Encode([.. signature, 0])}",
            $"{parts[0]}.{parts[1]}.",
        ];
        foreach (var jws in forged)
            Assert.False((await Handler.ValidateTokenAsync(jws, Parameters(key.PublicOnly()))).IsValid, jws);
        Assert.True((await Handler.ValidateTokenAsync(token, Parameters(key.PublicOnly()))).IsValid);
    }

    [Fact]
    public async Task NeitherKeyTypeStandsInForTheOther()
    {
        using var ed = NewKey("shared-kid");
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var ecKey = new ECDsaSecurityKey(ec) { KeyId = "shared-kid" };

        // An EdDSA token is not checked by an EC key, even with the kid it names...
        var edToken = Mint(ed, EdDsaAlgorithms.EdDsa, "shared-kid");
        Assert.False((await Handler.ValidateTokenAsync(edToken, Parameters(ecKey))).IsValid);
        // ...nor an ES256 token by an Ed25519 key.
        var esToken = Mint(ecKey, SecurityAlgorithms.EcdsaSha256, "shared-kid");
        Assert.False((await Handler.ValidateTokenAsync(esToken, Parameters(ed.PublicOnly()))).IsValid);
        Assert.True((await Handler.ValidateTokenAsync(esToken, Parameters(ecKey))).IsValid);
        // An ES256 signature (also 64 octets) relabelled EdDSA is not an Ed25519 signature.
        var esParts = esToken.Split('.');
        var relabelled = Base64UrlEncoder.Encode("""{"alg":"EdDSA","kid":"shared-kid","typ":"at+jwt"}""") + "." + esParts[1] + "." + esParts[2];
        Assert.False((await Handler.ValidateTokenAsync(relabelled, Parameters(ed.PublicOnly(), ecKey))).IsValid);
        // And an Ed25519 key cannot be asked to sign anything but EdDSA.
        Assert.ThrowsAny<Exception>(() => Mint(ed, SecurityAlgorithms.EcdsaSha256, "shared-kid"));
    }

    [Fact]
    public void APublicKeyCannotSign()
    {
        using var key = NewKey();
        Assert.Throws<InvalidOperationException>(() => Mint(key.PublicOnly(), EdDsaAlgorithms.EdDsa, "ed-1"));
    }

    [Fact]
    public void FromJsonWebKey_TakesOnlyEd25519SigningKeys_AndNeverAPrivatePart()
    {
        var good = new JsonWebKey { Kty = "OKP", Crv = "Ed25519", X = RfcX, Kid = "k", Alg = "EdDSA", Use = "sig" };
        var key = EdDsaSecurityKey.FromJsonWebKey(good);
        Assert.NotNull(key);
        Assert.Equal("k", key.KeyId);

        // Even when a (misconfigured) key set carries "d", only the public key is taken.
        var withD = EdDsaSecurityKey.FromJsonWebKey(new JsonWebKey { Kty = "OKP", Crv = "Ed25519", X = RfcX, D = RfcD });
        Assert.Equal(PrivateKeyStatus.DoesNotExist, withD!.PrivateKeyStatus);

        JsonWebKey[] refused =
        [
            new() { Kty = "EC", Crv = "Ed25519", X = RfcX },
            new() { Kty = "OKP", Crv = "X25519", X = RfcX },
            new() { Kty = "OKP", Crv = "Ed448", X = RfcX },
            new() { Kty = "OKP", Crv = "Ed25519" },
            new() { Kty = "OKP", Crv = "Ed25519", X = RfcX, Alg = "ES256" },
            new() { Kty = "OKP", Crv = "Ed25519", X = RfcX, Use = "enc" },
            new() { Kty = "OKP", Crv = "Ed25519", X = RfcX[..^2] },
            new() { Kty = "OKP", Crv = "Ed25519", X = "not*base64url" },
        ];
        foreach (var jwk in refused) Assert.Null(EdDsaSecurityKey.FromJsonWebKey(jwk));
    }

    [Fact]
    public void StockSigningKeys_LeaveOkpOut_SoSigningKeysOfFindsThem()
    {
        var set = new JsonWebKeySet($$"""{"keys":[{"kty":"OKP","crv":"Ed25519","x":"{{RfcX}}","kid":"ed","alg":"EdDSA","use":"sig"}]}""");
        Assert.DoesNotContain(set.GetSigningKeys(), k => k.KeyId == "ed");
        var found = Assert.Single(EdDsaSecurityKey.SigningKeysOf(set));
        Assert.Equal("ed", found.KeyId);
    }
}
