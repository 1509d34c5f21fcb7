using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.WebUtilities;
using Tessera.Core;
using Tessera.Core.Protocol;
using Tessera.Core.Storage;
using Tessera.Core.Users;
using Tessera.Server.Pages;

namespace Tessera.Server.Endpoints;

/// <summary>
/// The consent screen for clients that are not first-party. The form carries the original authorization request,
/// which is validated again on POST: nothing the browser sends back is trusted.
/// </summary>
public static class ConsentEndpoint
{
    public const string Path = "/connect/consent";

    public static void Map(WebApplication app) => app.MapPost(Path, PostAsync);

    private static readonly Dictionary<string, string> Descriptions = new()
    {
        [Scopes.OpenId] = "Know who you are",
        [Scopes.Profile] = "See your name and username",
        [Scopes.Email] = "See your email address",
        [Scopes.OfflineAccess] = "Stay signed in and act for you while you are away",
    };

    public static IResult Render(HttpContext http, IAntiforgery af, AuthorizeRequest r, User user)
    {
        var tokens = af.GetAndStoreTokens(http);
        var request = QueryHelpers.AddQueryString("", r.Parameters.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));
        var items = string.Concat(r.Scopes.Select(s => $"<li>{Html.E(Descriptions.GetValueOrDefault(s, s))}</li>"));
        var body =
            $"<p>Signed in as <strong>{Html.E(user.Username)}</strong>.</p>" +
            $"<p><strong>{Html.E(r.Client.DisplayName.Length > 0 ? r.Client.DisplayName : r.Client.Id)}</strong> asks to:</p><ul>{items}</ul>" +
            $"<form method=\"post\" action=\"{Path}\">" + Html.Hidden(tokens.FormFieldName, tokens.RequestToken) + Html.Hidden("request", request) +
            "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> " +
            "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>";
        return Html.Page("Allow access?", body);
    }

    private static async Task<IResult> PostAsync(HttpContext http, IAntiforgery af, AuthorizeRequestValidator validator, ITesseraStore store,
        TesseraOptions options, TimeProvider time)
    {
        var ct = http.RequestAborted;
        if (!http.Request.HasFormContentType) return Html.Error("The consent form was not posted correctly.");
        try
        {
            await af.ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException)
        {
            return Html.Error("The consent form expired or was not sent by this site.");
        }
        var form = await http.Request.ReadFormAsync(ct);
        var (parameters, repeated) = Protocol.OAuthForm.FromQuery(QueryHelpers.ParseQuery(form["request"].ToString()));
        var (request, failure) = await validator.ValidateAsync(parameters, repeated, ct);
        if (failure is not null) return AuthorizeEndpoint.FailureResult(failure, options.Issuer!, StatusCodes.Status303SeeOther);
        var user = await AuthorizeEndpoint.CurrentUserAsync(http, store, time, ct);
        if (user is null) return Html.Error("Your sign-in expired. Start again from the application.");
        var r = request!;
        if (form["decision"] != "allow")
            return AuthorizeEndpoint.FailureResult(new AuthorizeFailure(null, OAuthErrors.AccessDenied, "The user denied access.", r.RedirectUri, r.State), options.Issuer!, StatusCodes.Status303SeeOther);
        var authTime = AuthorizeEndpoint.AuthTimeOf(http.User) ?? time.GetUtcNow();
        return await AuthorizeEndpoint.IssueCodeAsync(r, user, authTime, AuthorizeEndpoint.AmrOf(http.User), store, options, time, StatusCodes.Status303SeeOther, ct);
    }
}
