using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Keys;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Server.Hosting;
using Tessera.Server.Pages;

namespace Tessera.Server.Endpoints;

/// <summary>
/// OpenID Connect RP-Initiated Logout 1.0: ends the provider's browser session; redirects only to a
/// post_logout_redirect_uri registered exactly for the client named by a valid id_token_hint (or client_id).
/// </summary>
public static class LogoutEndpoint
{
    public const string Path = "/connect/logout";

    public static void Map(WebApplication app) => app.MapMethods(Path, [HttpMethods.Get, HttpMethods.Post], HandleAsync);

    private static async Task<IResult> HandleAsync(HttpContext http, ITesseraStore store, KeyRing keys, TesseraOptions options,
        IRevocationPublisher publisher, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var p = HttpMethods.IsPost(http.Request.Method) && http.Request.HasFormContentType
            ? (await http.Request.ReadFormAsync(ct)).ToDictionary(kv => kv.Key, kv => kv.Value.ToString())
            : http.Request.Query.ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
        string? clientId = p.GetValueOrDefault("client_id");
        if (p.GetValueOrDefault("id_token_hint") is { Length: > 0 and < 8192 } hint)
        {
            var result = await new JsonWebTokenHandler().ValidateTokenAsync(hint, new TokenValidationParameters
            {
                ValidIssuer = options.Issuer,
                ValidateAudience = false,
                ValidateLifetime = false,
                ValidAlgorithms = KeyRing.Algorithms,
                IssuerSigningKeys = (await keys.GetPublishedAsync(ct)).Select(k => (SecurityKey)k.PublicKey),
            });
            if (!result.IsValid || result.SecurityToken is not JsonWebToken idToken)
                return Html.Error("The id_token_hint is not a valid ID token from this provider.");
            var aud = idToken.Audiences.FirstOrDefault();
            if (clientId is not null && clientId != aud) return Html.Error("client_id does not match the id_token_hint.");
            clientId = aud;
            // The session the ID token names ends too, when its client asks for that (the default).
            if (idToken.TryGetPayloadValue<string>("sid", out var sid) && aud is not null
                && await store.Clients.FindAsync(aud, ct) is { LogoutRevokesSession: true }
                && await store.Sessions.FindAsync(sid, ct) is { } session && session.ClientId == aud)
            {
                var now = time.GetUtcNow();
                if (await store.Sessions.RevokeAsync(session.Id, now, RevocationReasons.Logout, ct))
                {
                    await store.Audit.AppendAsync(new AuditEvent { At = now, Type = AuditTypes.SessionRevoked, UserId = session.UserId, ClientId = aud, SessionId = session.Id, Reason = "RP-initiated logout" }, ct);
                    await publisher.SessionRevokedAsync(session, RevocationReasons.Logout, now, ct);
                }
            }
        }
        await http.SignOutAsync(TesseraApp.BrowserScheme);

        if (p.GetValueOrDefault("post_logout_redirect_uri") is { Length: > 0 } target && clientId is not null)
        {
            var client = await store.Clients.FindAsync(clientId, ct);
            if (client is not null && client.PostLogoutRedirectUris.Contains(target, StringComparer.Ordinal))
            {
                var url = p.GetValueOrDefault("state") is { Length: > 0 } state ? QueryHelpers.AddQueryString(target, "state", state) : target;
                return Results.Redirect(url);
            }
            return Html.Error("The post_logout_redirect_uri is not registered for this client.");
        }
        return Html.Page("Signed out", "<p>You are signed out of Tessera.</p>");
    }
}
