using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;

namespace Tessera.Server.Grants;

/// <summary>Builds the RFC 6749 §5.1 success response shared by the grants: access token, optional refresh and ID token.</summary>
public sealed class TokenResponder(TokenMinter minter, TesseraOptions options)
{
    public async Task<Dictionary<string, object>> ForUserAsync(
        Client client, User user, Session session, IReadOnlyList<string> scopes, string? refreshToken, TimeSpan? refreshExpiresIn, string? nonce, string? dpopJkt, CancellationToken ct, IReadOnlyList<string>? amr = null)
    {
        var lifetime = client.AccessTokenLifetime ?? options.AccessTokenLifetime;
        var (accessToken, _, _) = await minter.MintAccessTokenAsync(new AccessTokenRequest(
            options.Issuer!, client.Id, user.Id, session.Resource ?? DefaultAudience(client), scopes, lifetime, session.Id, session.AuthTime, dpopJkt, client.SigningAlgorithm), ct);
        var response = new Dictionary<string, object>
        {
            ["access_token"] = accessToken,
            ["token_type"] = dpopJkt is null ? "Bearer" : "DPoP",
            ["expires_in"] = (long)lifetime.TotalSeconds,
            ["scope"] = Scopes.Join(scopes),
        };
        if (refreshToken is not null)
        {
            response["refresh_token"] = refreshToken;
            if (refreshExpiresIn is { } r) response["refresh_expires_in"] = Math.Max(0, (long)r.TotalSeconds);
        }
        if (scopes.Contains(Scopes.OpenId))
        {
            var claims = new Dictionary<string, object>();
            if (scopes.Contains(Scopes.Profile))
            {
                claims["preferred_username"] = user.Username;
                if (user.Name is not null) claims["name"] = user.Name;
            }
            if (scopes.Contains(Scopes.Email) && user.Email is not null) claims["email"] = user.Email;
            if (amr is { Count: > 0 }) claims["amr"] = amr.ToArray();
            response["id_token"] = await minter.MintIdTokenAsync(new IdTokenRequest(
                options.Issuer!, client.Id, user.Id, session.Id, session.AuthTime, nonce, accessToken, lifetime, claims, client.SigningAlgorithm), ct);
        }
        return response;
    }

    public string DefaultAudience(Client client) => client.Resources.Count > 0 ? client.Resources[0] : options.Issuer!;

    public static AuditEvent Issued(Session session, string clientId, string? ip, DateTimeOffset now, string reason) => new()
    {
        At = now, Type = AuditTypes.TokenIssued, UserId = session.UserId, ClientId = clientId, SessionId = session.Id, IpAddress = ip, Reason = reason,
    };
}
