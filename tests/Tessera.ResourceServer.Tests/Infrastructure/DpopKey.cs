using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>
/// A client's DPoP key and the proofs it makes (RFC 9449 §4.2), assembled by hand so a test can make any hostile
/// shape; the thumbprint is computed here from RFC 7638 directly, not with the library under test.
/// </summary>
public sealed class DpopKey : IDisposable
{
    private readonly ECDsa? _ec;
    private readonly RSA? _rsa;

    private DpopKey(ECDsa? ec, RSA? rsa)
    {
        _ec = ec;
        _rsa = rsa;
    }

    public static DpopKey Es256() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), null);

    public static DpopKey Rsa(int bits = 2048) => new(null, RSA.Create(bits));

    public string Alg => _ec is not null ? "ES256" : "PS256";

    /// <summary>The public key as a JWK (only the members RFC 7518 defines for it).</summary>
    public Dictionary<string, string> PublicJwk
    {
        get
        {
            if (_ec is not null)
            {
                var p = _ec.ExportParameters(false);
                return new() { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64UrlEncoder.Encode(p.Q.X!), ["y"] = Base64UrlEncoder.Encode(p.Q.Y!) };
            }
            var r = _rsa!.ExportParameters(false);
            return new() { ["kty"] = "RSA", ["n"] = Base64UrlEncoder.Encode(r.Modulus!), ["e"] = Base64UrlEncoder.Encode(r.Exponent!) };
        }
    }

    /// <summary>The private key as a JWK: what a careless client might put in its proof header.</summary>
    public Dictionary<string, string> PrivateJwk
    {
        get
        {
            var jwk = PublicJwk;
            jwk["d"] = _ec is not null ? Base64UrlEncoder.Encode(_ec.ExportParameters(true).D!) : Base64UrlEncoder.Encode(_rsa!.ExportParameters(true).D!);
            return jwk;
        }
    }

    /// <summary>RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace, base64url.</summary>
    public string Thumbprint
    {
        get
        {
            var jwk = PublicJwk;
            var canonical = _ec is not null
                ? $"{{\"crv\":\"{jwk["crv"]}\",\"kty\":\"EC\",\"x\":\"{jwk["x"]}\",\"y\":\"{jwk["y"]}\"}}"
                : $"{{\"e\":\"{jwk["e"]}\",\"kty\":\"RSA\",\"n\":\"{jwk["n"]}\"}}";
            return Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
        }
    }

    /// <summary>RFC 9449 §4.2: ath = base64url(SHA-256(ASCII(access token))).</summary>
    public static string Ath(string accessToken) => Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));

    public Dictionary<string, object> Header() => new() { ["typ"] = "dpop+jwt", ["alg"] = Alg, ["jwk"] = PublicJwk };

    public static Dictionary<string, object> Claims(string method, string url, string? accessToken, DateTimeOffset? iat = null)
    {
        var claims = new Dictionary<string, object>
        {
            ["jti"] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
            ["htm"] = method,
            ["htu"] = url,
            ["iat"] = (iat ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        };
        if (accessToken is not null) claims["ath"] = Ath(accessToken);
        return claims;
    }

    /// <summary>A good proof for the request, changed by <paramref name="header"/> and <paramref name="claims"/> first when given.</summary>
    public string Proof(string method, string url, string? accessToken, DateTimeOffset? iat = null,
        Action<Dictionary<string, object>>? header = null, Action<Dictionary<string, object>>? claims = null)
    {
        var h = Header();
        header?.Invoke(h);
        var c = Claims(method, url, accessToken, iat);
        claims?.Invoke(c);
        return Sign(h, c);
    }

    public string Sign(Dictionary<string, object> header, Dictionary<string, object> claims) =>
        LocalIssuer.Assemble(header, claims, input => _ec is not null
            ? _ec.SignData(input, HashAlgorithmName.SHA256)
            : _rsa!.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pss));

    public void Dispose()
    {
        _ec?.Dispose();
        _rsa?.Dispose();
    }
}
