using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tessera.Bff.Oidc;
using Tessera.Bff.Sessions;

namespace Tessera.Bff.Endpoints;

/// <summary>
/// <c>/bff/login</c> and <c>/bff/callback</c>: the authorization code flow with PKCE S256, state and nonce, as a
/// confidential client. What the callback needs to check (state, nonce, verifier, return URL) travels in an
/// encrypted, HttpOnly, ten-minute cookie, so a callback can only finish a sign-in this browser started.
/// </summary>
internal static class LoginEndpoints
{
    private const string LoginPurpose = "Tessera.Bff.Login.v1";

    private sealed record PendingLogin(string State, string Nonce, string Verifier, string ReturnUrl, DateTimeOffset ExpiresAt);

    public static async Task<IResult> LoginAsync(HttpContext http, AuthorityClient authority, IDataProtectionProvider dp,
        IOptions<TesseraBffOptions> options, TimeProvider time)
    {
        var o = options.Value;
        var returnUrl = http.Request.Query["returnUrl"].ToString();
        if (returnUrl.Length == 0) returnUrl = "/";
        // Only a local path may be the target: "/x", never "//host", "/\host" or "https://...". No open redirect.
        if (!IsLocalUrl(returnUrl))
            return Page(StatusCodes.Status400BadRequest, "Sign-in refused", "The return address must be a page of this site.");

        AuthorityMetadata metadata;
        try
        {
            metadata = await authority.GetMetadataAsync(http.RequestAborted);
        }
        catch (Exception e) when (AuthorityClient.IsUnreachable(e))
        {
            return Page(StatusCodes.Status502BadGateway, "Sign-in unavailable", "The sign-in service cannot be reached. Try again in a moment.");
        }

        var pending = new PendingLogin(Random(), Random(), Random(), returnUrl, time.GetUtcNow() + o.LoginTimeout);
        var challenge = Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(pending.Verifier)));
        var protectedState = dp.CreateProtector(LoginPurpose).Protect(JsonSerializer.Serialize(pending));
        http.Response.Cookies.Append(BffHttp.LoginCookieName(http.Request, o), protectedState, BffHttp.LoginCookie(http.Request, o.LoginTimeout));

        var query = new Dictionary<string, string?>
        {
            ["response_type"] = "code",
            ["client_id"] = o.ClientId,
            ["redirect_uri"] = RedirectUri(http, o),
            ["scope"] = string.Join(' ', o.Scopes),
            ["state"] = pending.State,
            ["nonce"] = pending.Nonce,
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = "S256",
        };
        if (o.Resource is not null) query["resource"] = o.Resource;
        BffHttp.NoStore(http.Response);
        return Results.Redirect(QueryHelpers.AddQueryString(metadata.AuthorizationEndpoint, query));
    }

    public static async Task<IResult> CallbackAsync(HttpContext http, AuthorityClient authority, TokenValidator validator, BffTokenService tokens,
        IBffSessionStore store, IDataProtectionProvider dp, IOptions<TesseraBffOptions> options, TimeProvider time, ILoggerFactory loggers)
    {
        var o = options.Value;
        var ct = http.RequestAborted;
        var logger = loggers.CreateLogger(BffLog.Category);
        BffHttp.NoStore(http.Response);
        IResult Refuse(string reason, string message)
        {
            BffLog.SignInRefused(logger, reason);
            return Page(StatusCodes.Status400BadRequest, "Sign-in failed", message);
        }

        // The pending sign-in is single-use: the cookie goes whatever happens next.
        var loginCookie = BffHttp.LoginCookieName(http.Request, o);
        var raw = http.Request.Cookies[loginCookie];
        var deleteOptions = BffHttp.LoginCookie(http.Request, TimeSpan.Zero);
        deleteOptions.Expires = DateTimeOffset.UnixEpoch;
        http.Response.Cookies.Append(loginCookie, "", deleteOptions);
        PendingLogin? pending = null;
        try
        {
            if (raw is not null) pending = JsonSerializer.Deserialize<PendingLogin>(dp.CreateProtector(LoginPurpose).Unprotect(raw));
        }
        catch (Exception e) when (e is CryptographicException or JsonException)
        {
            pending = null;
        }
        if (pending is null || pending.ExpiresAt < time.GetUtcNow())
            return Refuse("no pending sign-in", "This sign-in was not started here or took too long.");

        var q = http.Request.Query;
        AuthorityMetadata metadata;
        try
        {
            metadata = await authority.GetMetadataAsync(ct);
        }
        catch (Exception e) when (AuthorityClient.IsUnreachable(e))
        {
            return Page(StatusCodes.Status502BadGateway, "Sign-in unavailable", "The sign-in service cannot be reached. Try again in a moment.");
        }
        // RFC 6749 §10.12: the state must be the one this browser's sign-in sent (login CSRF).
        if (q["state"].Count != 1 || !TokenValidator.FixedEquals(q["state"].ToString(), pending.State))
            return Refuse("state mismatch", "This sign-in was not started here.");
        // RFC 9207 §2.4: "Clients MUST compare the iss parameter to the issuer identifier of the authorization server"
        // (mix-up defence); when the server advertises support, a missing iss is refused too.
        var iss = q["iss"].ToString();
        if ((iss.Length > 0 || metadata.IssParameterSupported) && !string.Equals(iss, metadata.Issuer, StringComparison.Ordinal))
            return Refuse("iss mismatch", "The answer did not come from the expected sign-in service.");
        if (q["error"].ToString() is { Length: > 0 } error)
            return Refuse("authorization error " + error, error == "access_denied" ? "Access was denied." : "The sign-in service refused the request.");
        if (q["code"].ToString() is not { Length: > 0 and < 1024 } code)
            return Refuse("no code", "The answer carried no authorization code.");

        var redeemed = await authority.RedeemCodeAsync(code, pending.Verifier, RedirectUri(http, o), ct);
        if (redeemed.Tokens is not { } t)
            return Refuse("code redemption: " + (redeemed.Error ?? "no answer"), "The sign-in could not be completed. Start again.");
        if (t.IdToken is null)
            return Refuse("no ID token", "The sign-in service sent no ID token.");
        TokenValidator.Checked checkedId;
        try
        {
            checkedId = await validator.ValidateIdTokenAsync(t.IdToken, pending.Nonce, t.AccessToken, ct);
        }
        catch (Exception e) when (AuthorityClient.IsUnreachable(e))
        {
            return Refuse("signing keys unavailable: " + e.GetType().Name, "The sign-in service's answer could not be verified. Start again.");
        }
        if (checkedId.Token is not { } idToken)
            return Refuse(checkedId.Error!, "The sign-in service's answer could not be verified.");

        var claims = new Dictionary<string, string>();
        foreach (var name in o.UserClaims)
        {
            if (idToken.TryGetClaim(name, out var claim)) claims[name] = claim.Value;
        }
        idToken.TryGetPayloadValue<string>("sid", out var sid);

        // A new session id at every sign-in (no session fixation); the previous session of this browser ends, here and at Tessera.
        if (BffHttp.SessionKey(http, o) is { } oldKey && await store.GetAsync(oldKey, ct) is { } previous)
        {
            await store.DeleteAsync(oldKey, ct);
            if (previous.RefreshToken is not null) await authority.RevokeAsync(previous.RefreshToken, "refresh_token", ct);
        }
        var id = BffSession.NewId();
        var session = tokens.NewSession(BffSession.KeyOf(id), idToken.Subject, sid, t, claims);
        await store.SaveAsync(session, ct);
        await store.PruneAsync(time.GetUtcNow(), ct);
        http.Response.Cookies.Append(BffHttp.SessionCookieName(http.Request, o), id, BffHttp.SessionCookie(http.Request));
        BffLog.SignedIn(logger, session.Subject);
        return Results.Redirect(IsLocalUrl(pending.ReturnUrl) ? pending.ReturnUrl : "/");
    }

    public static string RedirectUri(HttpContext http, TesseraBffOptions o) =>
        o.RedirectUri ?? $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}/bff/callback";

    /// <summary>Only local paths: "/x", not "//host", "/\host", or anything with control characters.</summary>
    public static bool IsLocalUrl(string? url) =>
        !string.IsNullOrEmpty(url) && url.Length <= 2048 && url[0] == '/' && (url.Length == 1 || (url[1] != '/' && url[1] != '\\'))
        && !url.Any(c => char.IsControl(c) || c == '\\');

    private static string Random() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    private static IResult Page(int status, string title, string message)
    {
        var e = HtmlEncoder.Default;
        var html = $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e.Encode(title)}</title></head>" +
            $"<body><h1>{e.Encode(title)}</h1><p>{e.Encode(message)}</p><p><a href=\"/\">Back to the application</a></p></body></html>";
        return Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
    }
}
