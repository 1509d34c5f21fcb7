using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Keys;
using Tessera.EdDsa;

namespace Tessera.Server.Endpoints;

/// <summary>RFC 7517 key set: public halves only, one alg and kid per key.</summary>
public static class JwksEndpoint
{
    public const string Path = "/.well-known/jwks.json";

    public static void Map(WebApplication app) => app.MapGet(Path, async (KeyRing keys, HttpContext http) =>
    {
        var published = await keys.GetPublishedAsync(http.RequestAborted);
        var list = published.Select(k =>
        {
            var jwk = new Dictionary<string, string> { ["kid"] = k.Kid, ["alg"] = k.Algorithm, ["use"] = "sig" };
            if (k.PublicKey is EdDsaSecurityKey ed)
            {
                // RFC 8037 §2: kty "OKP", crv "Ed25519", x the public key; "d" "MUST NOT be present for public keys".
                foreach (var (name, value) in ed.PublicJwkMembers()) jwk[name] = value;
            }
            else if (k.PublicKey is RsaSecurityKey rsa)
            {
                var p = rsa.Rsa.ExportParameters(includePrivateParameters: false);
                jwk["kty"] = "RSA";
                jwk["n"] = Base64UrlEncoder.Encode(p.Modulus!);
                jwk["e"] = Base64UrlEncoder.Encode(p.Exponent!);
            }
            else
            {
                var p = ((ECDsaSecurityKey)k.PublicKey).ECDsa.ExportParameters(includePrivateParameters: false);
                jwk["kty"] = "EC";
                jwk["crv"] = "P-256";
                jwk["x"] = Base64UrlEncoder.Encode(p.Q.X!);
                jwk["y"] = Base64UrlEncoder.Encode(p.Q.Y!);
            }
            return jwk;
        }).ToList();
        http.Response.Headers.CacheControl = "public, max-age=300";
        return Results.Json(new { keys = list });
    });
}
