using Microsoft.AspNetCore.Antiforgery;
using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Crypto;
using Tessera.Core.Storage;
using Tessera.Server.Pages;

namespace Tessera.Server.Endpoints;

/// <summary>Turning TOTP on and off from the account page. Turning it on needs a working code; so does turning it off.</summary>
public static class TwoFactorSetupEndpoint
{
    public const string Path = "/account/2fa";
    private const string EnrollPurpose = "tessera.totp-enroll.v1:";

    public static void Map(WebApplication app)
    {
        app.MapGet(Path, ShowAsync);
        app.MapPost(Path + "/enable", EnableAsync);
        app.MapPost(Path + "/disable", DisableAsync);
    }

    private static async Task<IResult> ShowAsync(HttpContext http, IAntiforgery af, ITesseraStore store, SecretProtector protector, TesseraOptions options, TimeProvider time)
    {
        var user = await AuthorizeEndpoint.CurrentUserAsync(http, store, time, http.RequestAborted);
        if (user is null) return Results.Redirect("/login?returnUrl=%2Faccount%2F2fa");
        var tokens = af.GetAndStoreTokens(http);
        http.Response.Headers.CacheControl = "no-store";
        if (user.TotpSecret is not null)
            return Html.Page("Two-step verification", $"<p>Two-step verification is <strong>on</strong>. {user.RecoveryCodeHashes?.Count ?? 0} recovery codes left.</p>" +
                $"<form method=\"post\" action=\"{Path}/disable\">" + Html.Hidden(tokens.FormFieldName, tokens.RequestToken) +
                "<label for=\"code\">Current code</label><input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>" +
                "<button type=\"submit\">Turn off</button></form><p><a href=\"/account\">Back</a></p>");
        var secret = TwoFactor.NewSecret();
        var enroll = Convert.ToBase64String(protector.Protect(secret, EnrollPurpose + user.Id));
        return Html.Page("Set up two-step verification",
            "<p>Add this account to your authenticator app with the key below (or open the link on your phone), then enter the code it shows.</p>" +
            $"<p><code style=\"font-size:1.1rem\">{Html.E(TwoFactor.Base32(secret))}</code></p>" +
            $"<p><a href=\"{Html.E(TwoFactor.OtpAuthUri(options.Issuer!, user.Username, secret))}\">Open in authenticator app</a></p>" +
            $"<form method=\"post\" action=\"{Path}/enable\">" + Html.Hidden(tokens.FormFieldName, tokens.RequestToken) + Html.Hidden("enroll", enroll) +
            "<label for=\"code\">Code</label><input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>" +
            "<button type=\"submit\">Turn on</button></form><p><a href=\"/account\">Back</a></p>");
    }

    private static async Task<IResult> EnableAsync(HttpContext http, IAntiforgery af, ITesseraStore store, SecretProtector protector, TwoFactor totp, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var (user, refusal) = await CheckAsync(http, af, store, time);
        if (refusal is not null) return refusal;
        var form = await http.Request.ReadFormAsync(ct);
        byte[]? secret = null;
        try { secret = protector.Unprotect(Convert.FromBase64String(form["enroll"].ToString()), EnrollPurpose + user!.Id); }
        catch (FormatException) { }
        if (secret is null) return Html.Error("The set-up form is damaged; start again.");
        if (totp.Verify(secret, form["code"].ToString(), 0) is not { } step)
            return Html.Page("Set up two-step verification", "<p class=\"error\">That code did not match. <a href=\"/account/2fa\">Start again</a>.</p>", 400);
        var (codes, hashes) = TwoFactor.NewRecoveryCodes();
        var protectedSecret = totp.Protect(user!.Id, secret);
        // Re-applied to a fresh copy if the user was saved meanwhile (optimistic concurrency).
        var enabled = await store.Users.UpdateAsync(user, u => u with { TotpSecret = protectedSecret, RecoveryCodeHashes = hashes, TotpLastStep = step }, ct);
        if (enabled.Outcome != UserSaveOutcome.Saved)
            return Html.Page("Set up two-step verification", "<p class=\"error\">Your account changed meanwhile. <a href=\"/account/2fa\">Start again</a>.</p>", 409);
        await store.Audit.AppendAsync(new AuditEvent { At = time.GetUtcNow(), Type = AuditTypes.UserChanged, UserId = user.Id, Reason = "two-step verification turned on" }, ct);
        http.Response.Headers.CacheControl = "no-store";
        return Html.Page("Two-step verification is on",
            "<p>Keep these recovery codes somewhere safe. Each works once if you lose your phone. They are shown only now.</p><ul>" +
            string.Concat(codes.Select(c => $"<li><code>{Html.E(c)}</code></li>")) + "</ul><p><a href=\"/account\">Done</a></p>");
    }

    private static async Task<IResult> DisableAsync(HttpContext http, IAntiforgery af, ITesseraStore store, TwoFactor totp, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var (user, refusal) = await CheckAsync(http, af, store, time);
        if (refusal is not null) return refusal;
        if (user!.TotpSecret is null) return Results.Extensions.RedirectWithStatus("/account", StatusCodes.Status303SeeOther);
        var code = (await http.Request.ReadFormAsync(ct))["code"].ToString();
        var secret = totp.Unprotect(user.Id, user.TotpSecret);
        if (secret is null || totp.Verify(secret, code, user.TotpLastStep) is null)
            return Html.Page("Two-step verification", "<p class=\"error\">That code did not match. <a href=\"/account/2fa\">Try again</a>.</p>", 400);
        await store.Users.UpdateAsync(user, u => u with { TotpSecret = null, RecoveryCodeHashes = null, TotpLastStep = 0 }, ct);
        await store.Audit.AppendAsync(new AuditEvent { At = time.GetUtcNow(), Type = AuditTypes.UserChanged, UserId = user.Id, Reason = "two-step verification turned off" }, ct);
        return Results.Extensions.RedirectWithStatus("/account", StatusCodes.Status303SeeOther);
    }

    private static async Task<(Core.Users.User?, IResult?)> CheckAsync(HttpContext http, IAntiforgery af, ITesseraStore store, TimeProvider time)
    {
        var user = await AuthorizeEndpoint.CurrentUserAsync(http, store, time, http.RequestAborted);
        if (user is null) return (null, Results.Extensions.RedirectWithStatus("/login?returnUrl=%2Faccount%2F2fa", StatusCodes.Status303SeeOther));
        if (!http.Request.HasFormContentType) return (null, Html.Error("The form was not posted correctly."));
        try { await af.ValidateRequestAsync(http); }
        catch (AntiforgeryValidationException) { return (null, Html.Error("The form expired or was not sent by this site.")); }
        return (user, null);
    }
}
