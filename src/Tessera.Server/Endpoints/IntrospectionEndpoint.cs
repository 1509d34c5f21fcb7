using Tessera.Core;
using Tessera.Core.Protocol;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Server.ClientAuthentication;
using Tessera.Server.Grants;
using Tessera.Server.Protocol;

namespace Tessera.Server.Endpoints;

/// <summary>
/// RFC 7662. Only confidential clients may ask (§2.1 "the endpoint MUST require some form of authorization").
/// Everything that is not an active token this caller may see is exactly <c>{"active":false}</c> (§2.2).
/// </summary>
public static class IntrospectionEndpoint
{
    public const string Path = "/connect/introspect";

    public static void Map(WebApplication app) => app.MapMethods(Path, [HttpMethods.Post, HttpMethods.Get], HandleAsync);

    private static readonly Dictionary<string, object> Inactive = new() { ["active"] = false };

    private static async Task HandleAsync(HttpContext http, ClientAuthenticator authenticator, ITesseraStore store, AccessTokenValidator validator,
        TesseraOptions options, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var form = await OAuthForm.ReadAsync(http);
        if (form.Failure is not null)
        {
            await OAuthResults.WriteErrorAsync(http, form.Failure);
            return;
        }
        var auth = await authenticator.AuthenticateAsync(http, form.Values, ct);
        if (auth.Failure is null && auth.Client!.IsPublic)
            auth = auth with { Failure = new OAuthFailure(OAuthErrors.InvalidClient, "Public clients may not introspect tokens."), Client = null };
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
        var caller = auth.Client!;
        var now = time.GetUtcNow();

        if (Handles.TryGetFamily(token, out var family))
        {
            // A refresh token is introspectable only by the client it was issued to, and only the current one is active.
            var session = await store.Sessions.FindByFamilyAsync(Handles.Hash(family), ct);
            if (session is null || session.ClientId != caller.Id || !session.IsActive(now) || !Handles.HashEquals(Handles.Hash(token), session.CurrentTokenHash))
            {
                await OAuthResults.WriteJsonAsync(http, 200, Inactive);
                return;
            }
            var user = await store.Users.FindByIdAsync(session.UserId, ct);
            if (user is null || user.Disabled || user.IsLocked(now) || (user.RevokedBefore is { } w && session.CreatedAt < w))
            {
                await OAuthResults.WriteJsonAsync(http, 200, Inactive);
                return;
            }
            var exp = session.IdleExpiresAt < session.AbsoluteExpiresAt ? session.IdleExpiresAt : session.AbsoluteExpiresAt;
            await OAuthResults.WriteJsonAsync(http, 200, new Dictionary<string, object>
            {
                ["active"] = true,
                ["token_type"] = "refresh_token",
                ["scope"] = Scopes.Join(session.Scopes),
                ["client_id"] = session.ClientId,
                ["sub"] = session.UserId,
                ["iss"] = options.Issuer!,
                ["exp"] = exp.ToUnixTimeSeconds(),
                ["iat"] = session.LastUsedAt.ToUnixTimeSeconds(),
                ["sid"] = session.Id,
            });
            return;
        }

        var at = await validator.ValidateActiveAsync(token, ct);
        // A resource server sees tokens meant for it; a client sees its own.
        var visible = at is not null && (at.ClientId == caller.Id || at.Audiences.Contains(caller.Id) || at.Audiences.Any(a => caller.Resources.Contains(a)));
        if (!visible)
        {
            await OAuthResults.WriteJsonAsync(http, 200, Inactive);
            return;
        }
        var jwt = at!.Token;
        var body = new Dictionary<string, object>
        {
            ["active"] = true,
            ["token_type"] = "Bearer",
            ["client_id"] = at.ClientId,
            ["sub"] = at.Subject,
            ["iss"] = jwt.Issuer,
            ["aud"] = at.Audiences.Count == 1 ? at.Audiences[0] : at.Audiences,
            ["exp"] = new DateTimeOffset(jwt.ValidTo).ToUnixTimeSeconds(),
            ["iat"] = new DateTimeOffset(jwt.IssuedAt).ToUnixTimeSeconds(),
            ["nbf"] = new DateTimeOffset(jwt.ValidFrom).ToUnixTimeSeconds(),
            ["jti"] = jwt.Id,
        };
        if (at.Scopes.Count > 0) body["scope"] = Scopes.Join(at.Scopes);
        if (at.SessionId is not null) body["sid"] = at.SessionId;
        await OAuthResults.WriteJsonAsync(http, 200, body);
    }
}
