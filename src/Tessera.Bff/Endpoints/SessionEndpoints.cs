using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tessera.Bff.Oidc;
using Tessera.Bff.Sessions;

namespace Tessera.Bff.Endpoints;

/// <summary><c>/bff/user</c>, <c>/bff/logout</c> and (token-mediating mode) <c>/bff/token</c>: cookie session, CSRF header, JSON.</summary>
internal static class SessionEndpoints
{
    private static readonly HashSet<string> NotForMediation = ["offline_access"];
    private static readonly HashSet<string> IdentityScopes = ["openid", "profile", "email", "address", "phone", "offline_access"];

    /// <summary>What the SPA may show about the user. Never a token; 401 JSON when nobody is signed in.</summary>
    public static async Task<IResult> UserAsync(HttpContext http, IBffSessionStore store, BffTokenService tokens, IOptions<TesseraBffOptions> options)
    {
        var o = options.Value;
        if (!BffHttp.HasCsrfHeader(http.Request)) return BffHttp.CsrfRefused();
        if (BffHttp.SessionKey(http, o) is not { } key) return NotSignedIn(http, o);
        // Keeps the access token fresh as a side effect, so a session Tessera ended shows up as signed out here too.
        var token = await tokens.GetAccessTokenAsync(key, http.RequestAborted);
        if (token.Status == TokenStatus.SessionExpired) return Expired(http, o);
        var session = await store.GetAsync(key, http.RequestAborted);
        if (session is null) return Expired(http, o);
        var body = new Dictionary<string, object> { ["isAuthenticated"] = true };
        foreach (var (name, value) in session.Claims) body[name] = value;
        body["sessionExpiresAt"] = session.ExpiresAt.ToUnixTimeSeconds();
        return BffHttp.Json(StatusCodes.Status200OK, body);
    }

    /// <summary>Revokes the refresh token at Tessera (RFC 7009, which ends Tessera's session), deletes the server-side session, clears the cookie.</summary>
    public static async Task<IResult> LogoutAsync(HttpContext http, IBffSessionStore store, AuthorityClient authority, IOptions<TesseraBffOptions> options,
        ILoggerFactory loggers)
    {
        var o = options.Value;
        if (!BffHttp.HasCsrfHeader(http.Request)) return BffHttp.CsrfRefused();
        var revoked = false;
        if (BffHttp.SessionKey(http, o) is { } key && await store.GetAsync(key, http.RequestAborted) is { } session)
        {
            // Revoking the refresh token ends the whole token family at Tessera; the access token then dies with its session.
            revoked = session.RefreshToken is not null
                ? await authority.RevokeAsync(session.RefreshToken, "refresh_token", http.RequestAborted)
                : await authority.RevokeAsync(session.AccessToken, "access_token", http.RequestAborted);
            await store.DeleteAsync(key, CancellationToken.None);
            BffLog.SignedOut(loggers.CreateLogger(BffLog.Category), session.Subject);
        }
        BffHttp.ClearSessionCookie(http, o);
        return BffHttp.Json(StatusCodes.Status200OK, new Dictionary<string, object> { ["signedOut"] = true, ["revokedAtAuthority"] = revoked });
    }

    /// <summary>
    /// Token-mediating backend (draft-ietf-oauth-browser-based-apps §6.2): a short-lived access token for at most the
    /// scopes asked, for the configured resource only. The refresh token stays here.
    /// </summary>
    public static async Task<IResult> TokenAsync(HttpContext http, IBffSessionStore store, BffTokenService tokens, IOptions<TesseraBffOptions> options,
        TimeProvider time)
    {
        var o = options.Value;
        if (!BffHttp.HasCsrfHeader(http.Request)) return BffHttp.CsrfRefused();
        if (BffHttp.SessionKey(http, o) is not { } key) return NotSignedIn(http, o);
        var q = http.Request.Query;
        if (q["resource"].Count > 1 || q["scope"].Count > 1)
            return BffHttp.Error(StatusCodes.Status400BadRequest, "invalid_request", "resource and scope may be given once each.");
        // RFC 8707: the session's tokens are for one audience; any other resource is refused, not silently ignored.
        var resource = q["resource"].ToString();
        if (resource.Length > 0 && !string.Equals(resource, o.Resource, StringComparison.Ordinal))
            return BffHttp.Error(StatusCodes.Status400BadRequest, "invalid_target", "This backend mediates tokens only for its configured resource.");
        var session = await store.GetAsync(key, http.RequestAborted);
        if (session is null) return Expired(http, o);

        var asked = q["scope"].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToList();
        if (asked.Count == 0) asked = session.GrantedScopes.Where(s => !IdentityScopes.Contains(s)).ToList();
        if (asked.Count == 0 || asked.Any(s => NotForMediation.Contains(s) || !session.GrantedScopes.Contains(s)))
            return BffHttp.Error(StatusCodes.Status400BadRequest, "invalid_scope", "Ask only for scopes the session was granted (offline_access is never mediated).");

        var token = await tokens.GetMediatedTokenAsync(key, asked, http.RequestAborted);
        return token.Status switch
        {
            TokenStatus.Ok => BffHttp.Json(StatusCodes.Status200OK, new Dictionary<string, object>
            {
                ["access_token"] = token.AccessToken!,
                ["token_type"] = "Bearer",
                ["expires_in"] = Math.Max(0, (long)(token.ExpiresAt - time.GetUtcNow()).TotalSeconds),
                ["scope"] = token.Scope!,
            }),
            TokenStatus.SessionExpired => Expired(http, o),
            _ => Unavailable(),
        };
    }

    public static IResult NotSignedIn(HttpContext http, TesseraBffOptions o)
    {
        if (http.Request.Cookies.ContainsKey(BffHttp.SessionCookieName(http.Request, o))) BffHttp.ClearSessionCookie(http, o);
        return BffHttp.Error(StatusCodes.Status401Unauthorized, BffHttp.NotSignedIn, "Nobody is signed in.");
    }

    public static IResult Expired(HttpContext http, TesseraBffOptions o)
    {
        BffHttp.ClearSessionCookie(http, o);
        return BffHttp.Error(StatusCodes.Status401Unauthorized, BffHttp.SessionExpired, "The session has ended. Sign in again.");
    }

    public static IResult Unavailable() =>
        BffHttp.Error(StatusCodes.Status502BadGateway, "authority_unavailable", "The sign-in service cannot be reached. Try again in a moment.");
}
