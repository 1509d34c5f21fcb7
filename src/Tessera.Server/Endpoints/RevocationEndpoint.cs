using Tessera.Core.Audit;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Server.ClientAuthentication;
using Tessera.Server.Grants;
using Tessera.Server.Protocol;

namespace Tessera.Server.Endpoints;

/// <summary>
/// RFC 7009. A client revokes its own tokens; revoking a refresh token or a user's access token ends the whole
/// session (§2.1: "the authorization server ... SHOULD also invalidate the access tokens based on the same
/// authorization grant"). Unknown or foreign tokens: 200 and nothing changes (§2.2).
/// </summary>
public static class RevocationEndpoint
{
    public const string Path = "/connect/revoke";

    public static void Map(WebApplication app) => app.MapMethods(Path, [HttpMethods.Post, HttpMethods.Get], HandleAsync);

    private static async Task HandleAsync(HttpContext http, ClientAuthenticator authenticator, ITesseraStore store, AccessTokenValidator validator,
        IRevocationPublisher publisher, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var form = await OAuthForm.ReadAsync(http);
        if (form.Failure is not null)
        {
            await OAuthResults.WriteErrorAsync(http, form.Failure);
            return;
        }
        var auth = await authenticator.AuthenticateAsync(http, form.Values, ct);
        if (auth.Failure is not null)
        {
            await OAuthResults.WriteErrorAsync(http, auth.Failure, auth.BasicUsed);
            return;
        }
        if (!form.Values.TryGetValue("token", out var token))
        {
            await OAuthResults.WriteErrorAsync(http, new OAuthFailure(OAuthErrors.InvalidRequest, "token is required."));
            return;
        }
        var client = auth.Client!;
        var now = time.GetUtcNow();

        // §2.1: token_type_hint is only a hint; both kinds are tried, the refresh-token shape first because it is cheap to tell.
        Session? session = null;
        if (Handles.TryGetFamily(token, out var family))
        {
            session = await store.Sessions.FindByFamilyAsync(Handles.Hash(family), ct);
        }
        else if (await validator.ValidateSignatureAsync(token, allowExpired: true, ct) is { } jwt && jwt.ClientId == client.Id)
        {
            if (jwt.SessionId is null)
            {
                // A client_credentials token has no session to end and no state to revoke (§2.2.1).
                await OAuthResults.WriteErrorAsync(http, new OAuthFailure(OAuthErrors.UnsupportedTokenType,
                    "Access tokens from client_credentials cannot be revoked; they expire on their own."));
                return;
            }
            session = await store.Sessions.FindAsync(jwt.SessionId, ct);
        }

        if (session is not null && session.ClientId == client.Id && await store.Sessions.RevokeAsync(session.Id, now, RevocationReasons.ClientRevoked, ct))
        {
            await store.Audit.AppendAsync(new AuditEvent
            {
                At = now, Type = AuditTypes.SessionRevoked, UserId = session.UserId, ClientId = client.Id, SessionId = session.Id,
                IpAddress = http.Connection.RemoteIpAddress?.ToString(), Reason = "revoked by the client (RFC 7009)",
            }, ct);
            await publisher.SessionRevokedAsync(session, RevocationReasons.ClientRevoked, now, ct);
        }
        OAuthResults.NoStore(http);
        http.Response.StatusCode = StatusCodes.Status200OK;
    }
}
