using Tessera.Core;
using Tessera.Core.Dpop;
using Tessera.Core.Protocol;
using Tessera.Core.Storage;
using Tessera.Server.Grants;

namespace Tessera.Server.Endpoints;

/// <summary>OIDC Core §5.3 with RFC 6750 bearer tokens: header only, never the query string.</summary>
public static class UserInfoEndpoint
{
    public const string Path = "/connect/userinfo";

    public static void Map(WebApplication app) => app.MapMethods(Path, [HttpMethods.Get, HttpMethods.Post], HandleAsync);

    private static async Task<IResult> HandleAsync(HttpContext http, AccessTokenValidator validator, ITesseraStore store, DpopProofValidator dpop, TesseraOptions options)
    {
        var ct = http.RequestAborted;
        var header = http.Request.Headers.Authorization.ToString();
        var isDpop = header.StartsWith("DPoP ", StringComparison.OrdinalIgnoreCase);
        if (!isDpop && !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return Challenge(http, null, null);
        var token = header[(isDpop ? 5 : 7)..].Trim();
        var at = await validator.ValidateActiveAsync(token, ct);
        if (at is null || at.SessionId is null)
            return Challenge(http, OAuthErrors.InvalidToken, "The access token is invalid, expired or revoked.");
        // RFC 9449 §7: a DPoP-bound token needs the DPoP scheme and a proof by its key, with ath; as Bearer it is refused.
        var jkt = at.Token.TryGetPayloadValue<System.Text.Json.JsonElement>("cnf", out var cnf) && cnf.TryGetProperty("jkt", out var j) ? j.GetString() : null;
        if (jkt is not null || isDpop)
        {
            var proofs = http.Request.Headers["DPoP"];
            if (jkt is null || !isDpop || proofs.Count != 1)
                return Challenge(http, OAuthErrors.InvalidToken, "This token must be sent with the DPoP scheme and one DPoP proof.", dpopScheme: true);
            var proof = await dpop.ValidateAsync(proofs.ToString(), http.Request.Method, new Uri(options.Issuer + Path), requireNonce: false, accessToken: token, ct);
            if (proof.Proof is null || proof.Proof.Thumbprint != jkt)
                return Challenge(http, "invalid_dpop_proof", "The DPoP proof is invalid or made with another key.", dpopScheme: true);
        }
        if (!at.Scopes.Contains(Scopes.OpenId))
        {
            http.Response.Headers.WWWAuthenticate = "Bearer error=\"insufficient_scope\", scope=\"openid\"";
            return Results.StatusCode(StatusCodes.Status403Forbidden);
        }
        var user = await store.Users.FindByIdAsync(at.Subject, ct);
        if (user is null) return Challenge(http, OAuthErrors.InvalidToken, "The user no longer exists.");
        var claims = new Dictionary<string, object> { ["sub"] = user.Id };
        if (at.Scopes.Contains(Scopes.Profile))
        {
            claims["preferred_username"] = user.Username;
            if (user.Name is not null) claims["name"] = user.Name;
        }
        if (at.Scopes.Contains(Scopes.Email) && user.Email is not null) claims["email"] = user.Email;
        http.Response.Headers.CacheControl = "no-store";
        return Results.Json(claims);
    }

    /// <summary>RFC 6750 §3: 401 with a Bearer challenge; no error code when no token was sent (§3.1).</summary>
    private static IResult Challenge(HttpContext http, string? error, string? description, bool dpopScheme = false)
    {
        var scheme = dpopScheme ? $"DPoP algs=\"{string.Join(' ', DpopProofValidator.Algorithms)}\"," : "Bearer";
        http.Response.Headers.WWWAuthenticate = error is null
            ? "Bearer realm=\"tessera\""
            : $"{scheme} realm=\"tessera\", error=\"{error}\", error_description=\"{description}\"";
        return Results.StatusCode(StatusCodes.Status401Unauthorized);
    }
}
