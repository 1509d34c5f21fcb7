using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Keys;

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
            var p = k.PublicKey.ECDsa.ExportParameters(includePrivateParameters: false);
            return new Dictionary<string, string>
            {
                ["kty"] = "EC",
                ["crv"] = "P-256",
                ["x"] = Base64UrlEncoder.Encode(p.Q.X!),
                ["y"] = Base64UrlEncoder.Encode(p.Q.Y!),
                ["kid"] = k.Kid,
                ["alg"] = k.Algorithm,
                ["use"] = "sig",
            };
        }).ToList();
        http.Response.Headers.CacheControl = "public, max-age=300";
        return Results.Json(new { keys = list });
    });
}
