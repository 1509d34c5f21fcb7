using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.WebUtilities;
using Tessera.Core;
using Tessera.Core.Protocol;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Server.Hosting;
using Tessera.Server.Pages;
using Tessera.Server.Protocol;

namespace Tessera.Server.Endpoints;

/// <summary>RFC 6749 §3.1 / OIDC Core §3.1.2: validate, make sure the user signed in and consented, then issue a code.</summary>
public static class AuthorizeEndpoint
{
    public const string Path = "/connect/authorize";

    public static void Map(WebApplication app) => app.MapMethods(Path, [HttpMethods.Get, HttpMethods.Post], HandleAsync);

    private static async Task<IResult> HandleAsync(HttpContext http, AuthorizeRequestValidator validator, ITesseraStore store,
        TesseraOptions options, IAntiforgery antiforgery, TimeProvider time)
    {
        var ct = http.RequestAborted;
        Dictionary<string, string> parameters;
        string? repeated;
        if (HttpMethods.IsPost(http.Request.Method))
        {
            // OIDC Core §3.1.2.1: POST with form serialization is allowed.
            var form = await OAuthForm.ReadAsync(http);
            if (form.Failure is not null) return Html.Error(form.Failure.Description);
            (parameters, repeated) = (new Dictionary<string, string>(form.Values), null);
        }
        else
        {
            (parameters, repeated) = OAuthForm.FromQuery(http.Request.Query);
        }

        var (request, failure) = await validator.ValidateAsync(parameters, repeated, ct);
        if (failure is not null) return FailureResult(failure, options.Issuer!, redirectStatus: 302);
        var r = request!;

        var user = await CurrentUserAsync(http, store, time, ct);
        var now = time.GetUtcNow();
        var authTime = user is null ? (DateTimeOffset?)null : AuthTimeOf(http.User);
        var mustLogin = user is null
            || r.Prompt?.Split(' ').Contains("login") == true
            || (r.MaxAge is { } maxAge && authTime is { } at && now - at > TimeSpan.FromSeconds(maxAge));
        if (mustLogin)
        {
            if (r.Prompt == "none")
                return FailureResult(new AuthorizeFailure(null, OAuthErrors.LoginRequired, "The user is not signed in.", r.RedirectUri, r.State), options.Issuer!, 302);
            // prompt=login is honoured by this one trip through the login page; the return trip must not ask again.
            var back = QueryHelpers.AddQueryString(Path, r.Parameters.Where(kv => kv.Key != "prompt" && kv.Key != "max_age").Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
            return Results.Redirect("/login?returnUrl=" + Uri.EscapeDataString(back));
        }

        if (!r.Client.FirstParty || r.Prompt == "consent")
        {
            if (r.Prompt == "none")
                return FailureResult(new AuthorizeFailure(null, OAuthErrors.ConsentRequired, "The user has not consented.", r.RedirectUri, r.State), options.Issuer!, 302);
            return ConsentEndpoint.Render(http, antiforgery, r, user!);
        }
        return await IssueCodeAsync(r, user!, authTime ?? now, AmrOf(http.User), store, options, time, 302, ct);
    }

    public static async Task<IResult> IssueCodeAsync(AuthorizeRequest r, User user, DateTimeOffset authTime, IReadOnlyList<string> amr, ITesseraStore store, TesseraOptions options,
        TimeProvider time, int status, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var code = Handles.NewAuthorizationCode();
        await store.Codes.StoreAsync(new AuthorizationCode
        {
            Hash = Handles.Hash(code),
            ClientId = r.Client.Id,
            UserId = user.Id,
            RedirectUri = r.RedirectUri,
            Scopes = r.Scopes,
            Resource = r.Resource,
            CodeChallenge = r.CodeChallenge,
            Nonce = r.Nonce,
            DpopJkt = r.DpopJkt,
            Amr = amr,
            AuthTime = authTime,
            CreatedAt = now,
            ExpiresAt = now + options.AuthorizationCodeLifetime,
        }, ct);
        var query = new Dictionary<string, string?> { ["code"] = code };
        if (r.State is not null) query["state"] = r.State;
        // RFC 9207 §2: the issuer identifies who answered, against mix-up attacks.
        query["iss"] = options.Issuer;
        return RedirectTo(QueryHelpers.AddQueryString(r.RedirectUri, query), status);
    }

    public static IResult FailureResult(AuthorizeFailure f, string issuer, int redirectStatus)
    {
        if (f.PageError is not null) return Html.Error(f.PageError);
        var query = new Dictionary<string, string?> { ["error"] = f.Error, ["error_description"] = f.Description };
        if (f.State is not null) query["state"] = f.State;
        query["iss"] = issuer;
        return RedirectTo(QueryHelpers.AddQueryString(f.RedirectUri!, query), redirectStatus);
    }

    private static IResult RedirectTo(string url, int status) => Results.Extensions.RedirectWithStatus(url, status);

    /// <summary>The signed-in user, if the browser session is valid and the account is still usable.</summary>
    public static async Task<User?> CurrentUserAsync(HttpContext http, ITesseraStore store, TimeProvider time, CancellationToken ct)
    {
        var result = await http.AuthenticateAsync(TesseraApp.BrowserScheme);
        if (!result.Succeeded || result.Principal.FindFirstValue("sub") is not { } sub) return null;
        http.User = result.Principal;
        var user = await store.Users.FindByIdAsync(sub, ct);
        if (user is null || user.Disabled || user.IsLocked(time.GetUtcNow())) return null;
        if (user.RevokedBefore is { } watermark && SignedInAt(result.Principal) is { } at && at < watermark) return null;
        return user;
    }

    /// <summary>The browser session's sign-in instant in Unix milliseconds (auth_time has whole seconds only).</summary>
    public const string SignedInAtClaim = "tessera_signed_in_ms";

    /// <summary>
    /// When the browser session signed in, to the millisecond, for the "revoked before" watermark (also in milliseconds):
    /// with whole seconds a sign-in right after "sign out everywhere" would look older than it and be refused.
    /// A cookie from before this claim existed falls back to auth_time.
    /// </summary>
    private static DateTimeOffset? SignedInAt(ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirstValue(SignedInAtClaim), out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : AuthTimeOf(principal);

    public static IReadOnlyList<string> AmrOf(ClaimsPrincipal principal) => principal.FindAll("amr").Select(c => c.Value).DefaultIfEmpty("pwd").ToList();

    public static DateTimeOffset? AuthTimeOf(ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirstValue("auth_time"), out var s) ? DateTimeOffset.FromUnixTimeSeconds(s) : null;
}

internal static class RedirectExtensions
{
    public static IResult RedirectWithStatus(this IResultExtensions _, string url, int status) => new StatusRedirect(url, status);

    private sealed class StatusRedirect(string url, int status) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            http.Response.StatusCode = status;
            http.Response.Headers.Location = url;
            http.Response.Headers.CacheControl = "no-store";
            return Task.CompletedTask;
        }
    }
}
