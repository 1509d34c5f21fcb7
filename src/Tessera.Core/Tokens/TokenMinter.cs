using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Keys;

namespace Tessera.Core.Tokens;

public sealed record AccessTokenRequest(
    string Issuer,
    string ClientId,
    string Subject,
    string Audience,
    IReadOnlyList<string> Scopes,
    TimeSpan Lifetime,
    string? SessionId,
    DateTimeOffset? AuthTime,
    string? DpopJkt = null,
    string? Algorithm = null);

public sealed record IdTokenRequest(
    string Issuer,
    string ClientId,
    string Subject,
    string SessionId,
    DateTimeOffset AuthTime,
    string? Nonce,
    string? AccessToken,
    TimeSpan Lifetime,
    IReadOnlyDictionary<string, object>? Claims,
    string? Algorithm = null);

/// <summary>Makes signed JWTs with Microsoft.IdentityModel.JsonWebTokens; nothing is hand-assembled.</summary>
public sealed class TokenMinter(KeyRing keys, TimeProvider time)
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    /// <summary>An RFC 9068 access token: <c>typ: at+jwt</c>, with iss, sub, aud, exp, iat, jti, client_id, scope (§2.2).</summary>
    public async ValueTask<(string Token, DateTimeOffset ExpiresAt, string Jti)> MintAccessTokenAsync(AccessTokenRequest r, CancellationToken ct)
    {
        var key = await keys.GetCurrentAsync(r.Algorithm ?? SecurityAlgorithms.EcdsaSha256, ct);
        var now = time.GetUtcNow();
        var exp = now + r.Lifetime;
        var jti = Handles.NewId();
        var claims = new Dictionary<string, object>(10)
        {
            ["client_id"] = r.ClientId,
            ["jti"] = jti,
            ["sub"] = r.Subject,
        };
        if (r.Scopes.Count > 0) claims["scope"] = string.Join(' ', r.Scopes);
        if (r.SessionId is not null) claims["sid"] = r.SessionId;
        if (r.AuthTime is { } at) claims["auth_time"] = at.ToUnixTimeSeconds();
        // RFC 9449 §6.1: a DPoP-bound token names its key by thumbprint.
        if (r.DpopJkt is not null) claims["cnf"] = new Dictionary<string, object> { ["jkt"] = r.DpopJkt };
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = r.Issuer,
            Audience = r.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = exp.UtcDateTime,
            TokenType = "at+jwt",
            Claims = claims,
            SigningCredentials = new SigningCredentials(key.PrivateKey, key.Algorithm),
        };
        return (Handler.CreateToken(descriptor), exp, jti);
    }

    /// <summary>An OpenID Connect Core §2 ID token, with at_hash (§3.1.3.6) when an access token is issued alongside.</summary>
    public async ValueTask<string> MintIdTokenAsync(IdTokenRequest r, CancellationToken ct)
    {
        var key = await keys.GetCurrentAsync(r.Algorithm ?? SecurityAlgorithms.EcdsaSha256, ct);
        var now = time.GetUtcNow();
        var claims = new Dictionary<string, object>
        {
            ["sub"] = r.Subject,
            ["auth_time"] = r.AuthTime.ToUnixTimeSeconds(),
            ["azp"] = r.ClientId,
            ["sid"] = r.SessionId,
        };
        if (r.Nonce is not null) claims["nonce"] = r.Nonce;
        if (r.AccessToken is not null) claims["at_hash"] = LeftHalfHash(r.AccessToken, key.Algorithm);
        if (r.Claims is not null)
            foreach (var (k, v) in r.Claims) claims[k] = v;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = r.Issuer,
            Audience = r.ClientId,
            IssuedAt = now.UtcDateTime,
            Expires = (now + r.Lifetime).UtcDateTime,
            TokenType = "JWT",
            Claims = claims,
            SigningCredentials = new SigningCredentials(key.PrivateKey, key.Algorithm),
        };
        return Handler.CreateToken(descriptor);
    }

    /// <summary>
    /// OIDC Core §3.1.3.6: base64url of "the left-most half of the hash of the octets of the ASCII representation of
    /// the access_token value, where the hash algorithm used is the hash algorithm used in the alg Header Parameter".
    /// SHA-256 for ES256 and RS256. "EdDSA" names no hash of its own: the one inside Ed25519 is SHA-512 (RFC 8032
    /// §5.1), which is what relying parties that accept EdDSA ID tokens compute.
    /// </summary>
    public static string LeftHalfHash(string value, string algorithm = SecurityAlgorithms.EcdsaSha256)
    {
        var ascii = Encoding.ASCII.GetBytes(value);
        var hash = algorithm == EdDsa.EdDsaAlgorithms.EdDsa ? SHA512.HashData(ascii) : SHA256.HashData(ascii);
        return Base64UrlEncoder.Encode(hash, 0, hash.Length / 2);
    }
}
