using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.DataProtection;
using Tessera.Core.Audit;
using Tessera.Core.Storage;
using Tessera.Core.Users;
using Tessera.Server.Pages;

namespace Tessera.Server.Endpoints;

/// <summary>
/// The second step of sign-in for users with TOTP: a code from their authenticator app, or a recovery code.
/// Between the two steps the browser holds only a five-minute protected cookie naming the user.
/// </summary>
public static class SecondFactorEndpoint
{
    public const string Path = "/login/2fa";
    private const string CookieName = "tessera.mfa";
    private const string Purpose = "tessera.login.second-factor.v1";
    private const int SaveAttempts = 4;
    private const string Message = "That code did not work, or there were too many attempts. Wait a minute and try again.";

    public static void Map(WebApplication app)
    {
        app.MapGet(Path, (HttpContext http, IAntiforgery af) => Pending(http) is null ? Restart() : Render(http, af, null));
        app.MapPost(Path, PostAsync);
    }

    public static void StartChallenge(HttpContext http, string userId, string returnUrl, DateTimeOffset now)
    {
        var protector = http.RequestServices.GetRequiredService<IDataProtectionProvider>().CreateProtector(Purpose).ToTimeLimitedDataProtector();
        http.Response.Cookies.Append(CookieName, protector.Protect(userId + "\n" + returnUrl, now.AddMinutes(5)), new CookieOptions
        {
            HttpOnly = true, Secure = http.Request.IsHttps, SameSite = SameSiteMode.Strict, Path = Path, MaxAge = TimeSpan.FromMinutes(5),
        });
    }

    private static (string UserId, string ReturnUrl)? Pending(HttpContext http)
    {
        if (!http.Request.Cookies.TryGetValue(CookieName, out var value)) return null;
        try
        {
            var protector = http.RequestServices.GetRequiredService<IDataProtectionProvider>().CreateProtector(Purpose).ToTimeLimitedDataProtector();
            var parts = protector.Unprotect(value, out _).Split('\n', 2);
            return parts.Length == 2 && Html.IsLocalUrl(parts[1]) ? (parts[0], parts[1]) : null;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
    }

    private static IResult Restart() => Results.Extensions.RedirectWithStatus("/login", StatusCodes.Status303SeeOther);

    private static IResult Render(HttpContext http, IAntiforgery af, string? error, int status = 200)
    {
        var tokens = af.GetAndStoreTokens(http);
        var body = (error is null ? "" : $"<p class=\"error\" role=\"alert\">{Html.E(error)}</p>") +
            $"<p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p><form method=\"post\" action=\"{Path}\">" +
            Html.Hidden(tokens.FormFieldName, tokens.RequestToken) +
            "<label for=\"code\">Code</label><input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required autofocus>" +
            "<button type=\"submit\">Continue</button></form>";
        return Html.Page("Two-step verification", body, status);
    }

    private static async Task<IResult> PostAsync(HttpContext http, IAntiforgery af, ITesseraStore store, TwoFactor totp, TimeProvider time)
    {
        var ct = http.RequestAborted;
        if (!http.Request.HasFormContentType) return Html.Error("The form was not posted correctly.");
        try { await af.ValidateRequestAsync(http); }
        catch (AntiforgeryValidationException) { return Html.Error("The form expired or was not sent by this site."); }
        if (Pending(http) is not { } pending) return Restart();
        var now = time.GetUtcNow();
        var user = await store.Users.FindByIdAsync(pending.UserId, ct);
        if (user?.TotpSecret is null || user.Disabled || user.IsLocked(now)) return Restart();
        var code = (await http.Request.ReadFormAsync(ct))["code"].ToString();
        var ip = http.Connection.RemoteIpAddress?.ToString();

        for (var attempt = 1; ; attempt++)
        {
            User? passed = null;
            if (user.LoginBlockedUntil is not { } blocked || blocked <= now)
            {
                var secret = totp.Unprotect(user.Id, user.TotpSecret);
                if (secret is not null && code.Length <= 64 && totp.Verify(secret, code, user.TotpLastStep) is { } step)
                    passed = user with { TotpLastStep = step };
                else if (code.Length is > 6 and <= 64)
                    passed = TwoFactor.UseRecoveryCode(user, code);
            }
            if (passed is null)
            {
                // Counted on a fresh copy if the user was saved meanwhile, so an operator's change is never undone.
                if (user.LoginBlockedUntil is not { } b || b <= now) await store.Users.UpdateAsync(user, u => u.WithFailedLogin(now), ct, SaveAttempts);
                await store.Audit.AppendAsync(new AuditEvent { At = now, Type = AuditTypes.LoginFailed, UserId = user.Id, IpAddress = ip, Reason = "wrong or reused second-factor code" }, ct);
                return Render(http, af, Message, 400);
            }
            // Optimistic concurrency: the code is spent only if nobody saved the user since we read it. The loser of two
            // submissions of the same code (or recovery code) re-reads the user and is checked again, and then fails.
            var outcome = await store.Users.SaveAsync(passed with { FailedLogins = 0, LoginBlockedUntil = null }, ct);
            if (outcome == UserSaveOutcome.Saved) break;
            if (outcome != UserSaveOutcome.Conflict || attempt >= SaveAttempts) return Restart();
            user = await store.Users.FindByIdAsync(pending.UserId, ct);
            if (user?.TotpSecret is null || user.Disabled || user.IsLocked(now)) return Restart();
        }
        http.Response.Cookies.Delete(CookieName, new CookieOptions { Path = Path });
        await LoginEndpoint.SignInAsync(http, store, user.Id, ["pwd", "otp"], ip, now, ct);
        return Results.Extensions.RedirectWithStatus(pending.ReturnUrl, StatusCodes.Status303SeeOther);
    }
}
