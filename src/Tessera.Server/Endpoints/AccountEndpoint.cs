using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Refresh;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Server.Hosting;
using Tessera.Server.Pages;

namespace Tessera.Server.Endpoints;

/// <summary>
/// The user's own page: every session (application, device, IP, started, last used), ended ones of the last 30 days
/// with the reason in plain words, and buttons to end one or all. Server-rendered, antiforgery-protected, no script.
/// </summary>
public static class AccountEndpoint
{
    public const string Path = "/account";

    public static void Map(WebApplication app)
    {
        app.MapGet(Path, ShowAsync);
        app.MapPost(Path + "/sessions/revoke", RevokeOneAsync);
        app.MapPost(Path + "/signout-everywhere", SignOutEverywhereAsync);
    }

    private static async Task<IResult> ShowAsync(HttpContext http, ITesseraStore store, IAntiforgery af, TesseraOptions options, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var user = await AuthorizeEndpoint.CurrentUserAsync(http, store, time, ct);
        if (user is null) return Results.Redirect("/login?returnUrl=%2Faccount");
        var now = time.GetUtcNow();
        var tokens = af.GetAndStoreTokens(http);
        var clients = (await store.Clients.ListAsync(ct)).ToDictionary(c => c.Id, c => c.DisplayName.Length > 0 ? c.DisplayName : c.Id);
        var sessions = (await store.Sessions.ListByUserAsync(user.Id, ct))
            .Where(s => s.IsActive(now) || EndedAt(s) > now - options.EndedSessionRetention)
            .ToList();
        var ua = http.Request.Headers.UserAgent.ToString();
        var ip = http.Connection.RemoteIpAddress?.ToString();

        var body = new StringBuilder();
        body.Append(CultureInfo.InvariantCulture, $"<p>Signed in as <strong>{Html.E(user.Username)}</strong>. <a href=\"/connect/logout\">Sign out</a></p>");
        body.Append("<h2>Active sessions</h2>");
        var active = sessions.Where(s => s.IsActive(now)).ToList();
        if (active.Count == 0) body.Append("<p>No application holds a session for you.</p>");
        else
        {
            body.Append("<table><tr><th>Application</th><th>Device</th><th>Started</th><th>Last used</th><th></th></tr>");
            foreach (var s in active)
            {
                var here = s.UserAgent == ua && s.IpAddress == ip ? " <em>(this browser)</em>" : "";
                body.Append(
                    $"<tr><td>{Html.E(clients.GetValueOrDefault(s.ClientId, s.ClientId))}{here}</td><td>{Html.E(Device(s.UserAgent))}<br><small>{Html.E(s.IpAddress)}</small></td>" +
                    $"<td>{When(s.CreatedAt)}</td><td>{When(s.LastUsedAt)}</td><td><form method=\"post\" action=\"{Path}/sessions/revoke\">" +
                    Html.Hidden(tokens.FormFieldName, tokens.RequestToken) + Html.Hidden("sid", s.Id) + "<button type=\"submit\">End</button></form></td></tr>");
            }
            body.Append("</table>");
        }
        body.Append($"<p>Two-step verification: {(user.TotpSecret is null ? "off" : "on")} · <a href=\"{TwoFactorSetupEndpoint.Path}\">{(user.TotpSecret is null ? "Set up" : "Manage")}</a></p>");
        body.Append($"<form method=\"post\" action=\"{Path}/signout-everywhere\">" + Html.Hidden(tokens.FormFieldName, tokens.RequestToken) +
            "<button type=\"submit\">Sign out everywhere</button></form>");

        var ended = sessions.Where(s => !s.IsActive(now)).ToList();
        if (ended.Count > 0)
        {
            body.Append("<h2>Ended in the last 30 days</h2><table><tr><th>Application</th><th>Ended</th><th>Why</th></tr>");
            foreach (var s in ended)
                body.Append(CultureInfo.InvariantCulture, $"<tr><td>{Html.E(clients.GetValueOrDefault(s.ClientId, s.ClientId))}<br><small>{Html.E(Device(s.UserAgent))}</small></td><td>{When(EndedAt(s))}</td><td>{Html.E(Reason(s, now))}</td></tr>");
            body.Append("</table>");
        }
        http.Response.Headers.CacheControl = "no-store";
        return Html.Page("Your sessions", body.ToString());
    }

    private static async Task<IResult> RevokeOneAsync(HttpContext http, ITesseraStore store, IAntiforgery af, IRevocationPublisher publisher, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var (user, refusal) = await CheckPostAsync(http, store, af, time);
        if (refusal is not null) return refusal;
        var form = await http.Request.ReadFormAsync(ct);
        var sid = form["sid"].ToString();
        var session = sid.Length is > 0 and <= 64 ? await store.Sessions.FindAsync(sid, ct) : null;
        // Someone else's session looks exactly like one that does not exist.
        if (session is null || session.UserId != user!.Id) return Html.Page("Not found", "<p>No such session. <a href=\"/account\">Back</a></p>", 404);
        var now = time.GetUtcNow();
        if (await store.Sessions.RevokeAsync(session.Id, now, RevocationReasons.UserRevoked, ct))
        {
            await store.Audit.AppendAsync(new AuditEvent { At = now, Type = AuditTypes.SessionRevoked, UserId = user.Id, ClientId = session.ClientId, SessionId = session.Id, IpAddress = http.Connection.RemoteIpAddress?.ToString(), Reason = "ended by the user on the account page" }, ct);
            await publisher.SessionRevokedAsync(session, RevocationReasons.UserRevoked, now, ct);
        }
        return Results.Extensions.RedirectWithStatus(Path, StatusCodes.Status303SeeOther);
    }

    private static async Task<IResult> SignOutEverywhereAsync(HttpContext http, ITesseraStore store, IAntiforgery af, IRevocationPublisher publisher, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var (user, refusal) = await CheckPostAsync(http, store, af, time);
        if (refusal is not null) return refusal;
        // Millisecond precision, like the sessions' start times: a sign-in right after this is not taken for an older one.
        var watermark = RevocationTimes.Watermark(time.GetUtcNow());
        // Re-applied to a fresh copy if the user was saved meanwhile (optimistic concurrency), so nothing else is undone.
        await store.Users.UpdateAsync(user!, u => u with { RevokedBefore = watermark }, ct);
        var n = await UserSessionsRevocation.RevokeAllAsync(store, publisher, user!.Id, watermark, RevocationReasons.UserRevoked, ct);
        await store.Audit.AppendAsync(new AuditEvent { At = watermark, Type = AuditTypes.SessionRevoked, UserId = user.Id, IpAddress = http.Connection.RemoteIpAddress?.ToString(), Reason = $"signed out everywhere ({n} sessions)" }, ct);
        await http.SignOutAsync(TesseraApp.BrowserScheme);
        return Results.Extensions.RedirectWithStatus("/login?returnUrl=%2Faccount", StatusCodes.Status303SeeOther);
    }

    private static async Task<(Core.Users.User? User, IResult? Refusal)> CheckPostAsync(HttpContext http, ITesseraStore store, IAntiforgery af, TimeProvider time)
    {
        var user = await AuthorizeEndpoint.CurrentUserAsync(http, store, time, http.RequestAborted);
        if (user is null) return (null, Results.Extensions.RedirectWithStatus("/login?returnUrl=%2Faccount", StatusCodes.Status303SeeOther));
        if (!http.Request.HasFormContentType) return (null, Html.Error("The form was not posted correctly."));
        try
        {
            await af.ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException)
        {
            return (null, Html.Error("The form expired or was not sent by this site. Reload the page and try again."));
        }
        return (user, null);
    }

    private static DateTimeOffset EndedAt(Session s) =>
        s.RevokedAt ?? (s.IdleExpiresAt < s.AbsoluteExpiresAt ? s.IdleExpiresAt : s.AbsoluteExpiresAt);

    private static string When(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>Why a session ended, in words a user understands.</summary>
    public static string Reason(Session s, DateTimeOffset now) => s.RevokedReason switch
    {
        RevocationReasons.Reuse => "Ended because its refresh token was used twice: possible theft.",
        RevocationReasons.CodeReplay => "Ended because its sign-in code was used twice: possible interception.",
        RevocationReasons.UserRevoked => "You ended it.",
        RevocationReasons.AdminRevoked => "Ended by an administrator.",
        RevocationReasons.ClientRevoked => "The application signed out.",
        RevocationReasons.Logout => "You signed out.",
        RevocationReasons.UserDisabled => "Ended because the account was disabled.",
        RevocationReasons.PasswordReset => "Ended because the password was reset.",
        null when now >= s.AbsoluteExpiresAt => "Expired: sessions last at most their maximum lifetime.",
        null => "Expired after a period without use.",
        var other => "Ended (" + other + ").",
    };

    /// <summary>A short device description from the User-Agent: browser family and operating system.</summary>
    public static string Device(string? userAgent)
    {
        if (string.IsNullOrWhiteSpace(userAgent)) return "Unknown device";
        // Product tokens as users know them ("Edg/…" is Edge, "OPR/…" is Opera).
        var family = UserAgentFamilyPolicy.Family(userAgent) switch { "Edg" => "Edge", "OPR" => "Opera", null => "Unknown", var f => f };
        string os = userAgent switch
        {
            _ when userAgent.Contains("Android", StringComparison.Ordinal) => "Android",
            _ when userAgent.Contains("iPhone", StringComparison.Ordinal) || userAgent.Contains("iPad", StringComparison.Ordinal) => "iOS",
            _ when userAgent.Contains("Windows", StringComparison.Ordinal) => "Windows",
            _ when userAgent.Contains("Mac OS X", StringComparison.Ordinal) => "macOS",
            _ when userAgent.Contains("Linux", StringComparison.Ordinal) => "Linux",
            _ => "",
        };
        return os.Length > 0 ? $"{family} on {os}" : family;
    }
}
