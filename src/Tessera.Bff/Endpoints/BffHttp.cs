using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tessera.Bff.Sessions;

namespace Tessera.Bff.Endpoints;

/// <summary>The cookie, the CSRF header and the JSON answers every endpoint shares.</summary>
internal static class BffHttp
{
    public const string CsrfHeader = "X-CSRF";
    public const string SessionExpired = "session_expired";
    public const string NotSignedIn = "not_signed_in";

    /// <summary>
    /// On https the cookie takes the <c>__Host-</c> prefix, which the browser accepts only with Secure, Path=/ and no
    /// Domain (RFC 6265bis §4.1.3.2): no subdomain and no plain-http page can plant or overwrite it.
    /// </summary>
    public static string SessionCookieName(HttpRequest request, TesseraBffOptions o) => (request.IsHttps ? "__Host-" : "") + o.CookieName;

    public static string LoginCookieName(HttpRequest request, TesseraBffOptions o) => (request.IsHttps ? "__Host-" : "") + o.CookieName + "-login";

    public static CookieOptions SessionCookie(HttpRequest request) => new()
    {
        HttpOnly = true,
        Secure = request.IsHttps,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        IsEssential = true,
    };

    /// <summary>The sign-in cookie must come back on Tessera's cross-site redirect to the callback: Lax, not Strict.</summary>
    public static CookieOptions LoginCookie(HttpRequest request, TimeSpan maxAge) => new()
    {
        HttpOnly = true,
        Secure = request.IsHttps,
        SameSite = SameSiteMode.Lax,
        Path = "/",
        IsEssential = true,
        MaxAge = maxAge,
    };

    /// <summary>The session's store key from the cookie, or null when there is no well-formed cookie.</summary>
    public static string? SessionKey(HttpContext http, TesseraBffOptions o)
    {
        var value = http.Request.Cookies[SessionCookieName(http.Request, o)];
        if (value is not { Length: 43 } || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')) return null;
        return BffSession.KeyOf(value);
    }

    public static void ClearSessionCookie(HttpContext http, TesseraBffOptions o)
    {
        var options = SessionCookie(http.Request);
        options.Expires = DateTimeOffset.UnixEpoch;
        options.MaxAge = TimeSpan.Zero;
        http.Response.Cookies.Append(SessionCookieName(http.Request, o), "", options);
    }

    /// <summary>
    /// A custom header cannot be sent cross-origin without a CORS preflight, and the backend answers no preflight,
    /// so its presence proves the call came from a page of this origin (draft-ietf-oauth-browser-based-apps §6.1.3.2).
    /// </summary>
    public static bool HasCsrfHeader(HttpRequest request) =>
        request.Headers.TryGetValue(CsrfHeader, out var v) && v.Count == 1 && v[0] == "1";

    public static void NoStore(HttpResponse response)
    {
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
    }

    public static IResult Json(int status, object body) => new JsonAnswer(status, body);

    public static IResult Error(int status, string error, string description) =>
        new JsonAnswer(status, new Dictionary<string, string> { ["error"] = error, ["error_description"] = description });

    public static IResult CsrfRefused() => Error(StatusCodes.Status403Forbidden, "csrf_header_required", "Send the header X-CSRF: 1 with every call to the backend.");

    /// <summary>A JSON answer that is never cached.</summary>
    private sealed class JsonAnswer(int status, object body) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json; charset=utf-8";
            NoStore(http.Response);
            return http.Response.WriteAsync(JsonSerializer.Serialize(body), http.RequestAborted);
        }
    }

    public static Task WriteErrorAsync(HttpContext http, int status, string error, string description) =>
        Error(status, error, description).ExecuteAsync(http);
}
