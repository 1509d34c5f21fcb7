using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Tessera.Core.Audit;
using Tessera.Core.Passwords;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Server.Hosting;
using Tessera.Server.Pages;
using Tessera.Server.Throttling;

namespace Tessera.Server.Endpoints;

/// <summary>The provider's own sign-in form: antiforgery, 303 after POST, one message for every failure.</summary>
public static class LoginEndpoint
{
    public static void Map(WebApplication app)
    {
        app.MapGet("/login", (HttpContext http, IAntiforgery af, string? returnUrl) => Render(http, af, returnUrl, error: null));
        app.MapPost("/login", PostAsync);
    }

    /// <summary>How often a failed-login count or its reset is re-applied after losing a race with another save of the user.</summary>
    private const int SaveAttempts = 4;

    private static IResult Render(HttpContext http, IAntiforgery af, string? returnUrl, string? error, int status = 200)
    {
        var tokens = af.GetAndStoreTokens(http);
        var body =
            (error is null ? "" : $"<p class=\"error\" role=\"alert\">{Html.E(error)}</p>") +
            "<form method=\"post\" action=\"/login\">" +
            Html.Hidden(tokens.FormFieldName, tokens.RequestToken) +
            Html.Hidden("returnUrl", Html.IsLocalUrl(returnUrl) ? returnUrl : "/account") +
            "<label for=\"username\">Username</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" required autofocus>" +
            "<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>" +
            "<button type=\"submit\">Sign in</button></form>";
        return Html.Page("Sign in", body, status);
    }

    private static async Task<IResult> PostAsync(HttpContext http, IAntiforgery af, ITesseraStore store, PasswordHasher hasher, LoginThrottle throttle, TimeProvider time)
    {
        var ct = http.RequestAborted;
        if (!http.Request.HasFormContentType) return Html.Error("The sign-in form was not posted correctly.");
        try
        {
            await af.ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException)
        {
            return Html.Page("Sign in", "<p class=\"error\">The form expired. <a href=\"/login\">Try again</a>.</p>", 400);
        }
        var form = await http.Request.ReadFormAsync(ct);
        string username = form["username"].ToString(), password = form["password"].ToString(), returnUrl = form["returnUrl"].ToString();
        if (!Html.IsLocalUrl(returnUrl)) returnUrl = "/account";
        // One message for every failure (unknown user, wrong password, throttled, disabled): no account enumeration.
        const string generic = "Wrong username or password, or too many attempts. Wait a minute and try again.";
        if (username.Length is 0 or > 256 || password.Length is 0 or > PasswordPolicy.MaxLength)
            return Render(http, af, returnUrl, generic, 400);
        // Too many failures from this address, whatever the usernames (credential stuffing): the same page, decided before
        // the user is looked up, so known and unknown users, right and wrong passwords, all take this one path.
        if (await throttle.IsPausedAsync(http, ct))
            return Render(http, af, returnUrl, generic, 400);

        var now = time.GetUtcNow();
        var user = await store.Users.FindByUsernameAsync(username, ct);
        var ip = http.Connection.RemoteIpAddress?.ToString();
        string? failure = null;
        if (user?.PasswordHash is null)
        {
            // Same cost for unknown users, so timing does not tell who has an account: one Argon2id derivation at the
            // configured cost, then the same audit write. What remains is a known user's wrong password also saving its
            // failure count (one short write, small beside Argon2id's time and its jitter).
            hasher.Waste(password);
            failure = "unknown user";
        }
        else if (user.LoginBlockedUntil is { } blocked && blocked > now)
        {
            hasher.Waste(password);
            failure = "sign-in throttled after repeated failures";
        }
        else if (!hasher.Verify(password, user.PasswordHash, out var rehash))
        {
            // Optimistic concurrency: if an operator (or another sign-in) saved the user meanwhile, count the failure
            // on the fresh copy rather than overwrite their change (a disable, a revocation) with our stale one.
            await store.Users.UpdateAsync(user, u => u.WithFailedLogin(now), ct, SaveAttempts);
            failure = "wrong password";
        }
        else
        {
            if (user.Disabled || user.IsLocked(now)) failure = "account disabled or locked";
            // Transparent upgrade when the configured Argon2id cost went up; reset the failure count.
            if (rehash || user.FailedLogins > 0 || user.LoginBlockedUntil is not null)
            {
                var verifiedHash = user.PasswordHash;
                var upgraded = rehash ? hasher.Hash(password) : null;
                // The upgrade applies only to the hash this password was checked against (not to a password reset made meanwhile).
                await store.Users.UpdateAsync(user, u => u with
                {
                    PasswordHash = upgraded is not null && u.PasswordHash == verifiedHash ? upgraded : u.PasswordHash,
                    FailedLogins = 0,
                    LoginBlockedUntil = null,
                }, ct, SaveAttempts);
            }
        }
        if (failure is not null || user is null)
        {
            // Every refusal counts against the address, whatever its reason: were some not counted, when the address's
            // pause starts would tell an attacker which reason it was.
            await throttle.RecordFailureAsync(http, ct);
            await store.Audit.AppendAsync(new AuditEvent { At = now, Type = AuditTypes.LoginFailed, UserId = user?.Id, IpAddress = ip, Reason = failure }, ct);
            return Render(http, af, returnUrl, generic, 400);
        }

        if (user.TotpSecret is not null)
        {
            // Password right; the second factor decides. The pending state is a short-lived protected cookie.
            SecondFactorEndpoint.StartChallenge(http, user.Id, returnUrl, now);
            return Results.Extensions.RedirectWithStatus(SecondFactorEndpoint.Path, StatusCodes.Status303SeeOther);
        }
        await SignInAsync(http, store, user.Id, ["pwd"], ip, now, ct);
        // 303 See Other: the browser follows with GET, so a reload never re-posts the password.
        return Results.Extensions.RedirectWithStatus(returnUrl, StatusCodes.Status303SeeOther);
    }

    /// <summary>A fresh ticket (and so a fresh cookie value) at every sign-in: no session fixation.</summary>
    public static async Task SignInAsync(HttpContext http, ITesseraStore store, string userId, string[] amr, string? ip, DateTimeOffset now, CancellationToken ct)
    {
        var user = await store.Users.FindByIdAsync(userId, ct) ?? throw new InvalidOperationException("The user disappeared during sign-in.");
        var claims = new List<Claim>
        {
            new("sub", user.Id),
            new("name", user.Username),
            new("auth_time", now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new(AuthorizeEndpoint.SignedInAtClaim, now.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("bsid", Handles.NewId()),
        };
        claims.AddRange(amr.Select(a => new Claim("amr", a)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, TesseraApp.BrowserScheme, "name", "role"));
        await http.SignInAsync(TesseraApp.BrowserScheme, principal, new AuthenticationProperties { IsPersistent = false, IssuedUtc = now });
        await store.Audit.AppendAsync(new AuditEvent { At = now, Type = AuditTypes.LoginSucceeded, UserId = user.Id, IpAddress = ip, Reason = "amr=" + string.Join(' ', amr) }, ct);
    }
}
