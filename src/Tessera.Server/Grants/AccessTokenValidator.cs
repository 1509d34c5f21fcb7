using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Keys;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;

namespace Tessera.Server.Grants;

public sealed record ValidatedAccessToken(JsonWebToken Token, string Subject, string ClientId, string? SessionId, IReadOnlyList<string> Scopes, IReadOnlyList<string> Audiences);

/// <summary>
/// Checks Tessera's own access tokens (userinfo, introspection, revocation) with JsonWebTokenHandler:
/// RFC 9068 §4 type, issuer, one of Tessera's own algorithms with the key of that kid, lifetime; then that its session is still alive.
/// </summary>
public sealed class AccessTokenValidator(KeyRing keys, TesseraOptions options, ITesseraStore store, TimeProvider time)
{
    private static readonly JsonWebTokenHandler Handler = new();

    /// <summary>Null when the token is not a valid, unexpired Tessera access token (signature/type/issuer/time).</summary>
    public async Task<ValidatedAccessToken?> ValidateSignatureAsync(string token, bool allowExpired, CancellationToken ct)
    {
        if (token.Length > 8192) return null;
        var published = await keys.GetPublishedAsync(ct);
        var parameters = new TokenValidationParameters
        {
            ValidIssuer = options.Issuer,
            ValidateAudience = false,
            ValidTypes = ["at+jwt"],
            ValidAlgorithms = KeyRing.Algorithms,
            IssuerSigningKeys = published.Select(k => (SecurityKey)k.PublicKey),
            ValidateLifetime = !allowExpired,
            RequireExpirationTime = true,
            ClockSkew = options.ClockSkew,
            LifetimeValidator = allowExpired ? null : (nbf, exp, _, p) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return exp is { } e && e + p.ClockSkew > now && (nbf is not { } n || n - p.ClockSkew <= now);
            },
            TryAllIssuerSigningKeys = false,
        };
        var result = await Handler.ValidateTokenAsync(token, parameters);
        if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt) return null;
        if (!jwt.TryGetPayloadValue<string>("sub", out var sub) || !jwt.TryGetPayloadValue<string>("client_id", out var clientId)) return null;
        jwt.TryGetPayloadValue<string>("sid", out var sid);
        jwt.TryGetPayloadValue<string>("scope", out var scope);
        return new ValidatedAccessToken(jwt, sub, clientId, sid, (scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries), jwt.Audiences.ToList());
    }

    /// <summary>
    /// Valid signature and lifetime, not obtained before its client's secret was rotated, and (for user tokens) the
    /// session is not revoked, the user still active and still allowed every scope the token carries: what the
    /// revocation feed tells resource servers, the token service applies to its own endpoints too.
    /// </summary>
    public async Task<ValidatedAccessToken?> ValidateActiveAsync(string token, CancellationToken ct)
    {
        var v = await ValidateSignatureAsync(token, allowExpired: false, ct);
        if (v is null) return null;
        // Whole seconds, as on the feed (RevocationTimes.AfterSecondOf): tokens of the rotation's own second are refused too.
        // A deleted client's tokens are void here; at the resource servers the client watermark published on deletion voids them.
        var client = await store.Clients.FindAsync(v.ClientId, ct);
        if (client is null) return null;
        if (client.SecretRotatedAt is { } rotated && new DateTimeOffset(v.Token.IssuedAt, TimeSpan.Zero) < RevocationTimes.AfterSecondOf(rotated))
            return null;
        if (v.SessionId is null) return v;
        var session = await store.Sessions.FindAsync(v.SessionId, ct);
        if (session is null || session.RevokedAt is not null) return null;
        var user = await store.Users.FindByIdAsync(session.UserId, ct);
        var now = time.GetUtcNow();
        if (user is null || user.Disabled || user.IsLocked(now)) return null;
        if (user.RevokedBefore is { } watermark && session.CreatedAt < watermark) return null;
        // Permissions taken away since the token was issued: the next refresh drops them; this token still has them.
        if (user.AllowedScopes is { } allowed && v.Scopes.Any(s => !Scopes.Identity.Contains(s) && !allowed.Contains(s))) return null;
        return v;
    }
}
