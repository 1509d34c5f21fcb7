using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.Bff.Oidc;

/// <summary>
/// Checks the JWTs the backend receives from Tessera with Microsoft.IdentityModel.JsonWebTokens against the
/// discovery JWKS: ID tokens (OIDC Core §3.1.3.7) and back-channel logout tokens (OIDC Back-Channel Logout §2.6).
/// </summary>
public sealed class TokenValidator(AuthorityClient authority, IOptions<TesseraBffOptions> options, TimeProvider time)
{
    public const string BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout";
    private static readonly JsonWebTokenHandler Handler = new();
    private readonly TesseraBffOptions _o = options.Value;

    public sealed record Checked(JsonWebToken? Token, string? Error);

    public async Task<Checked> ValidateIdTokenAsync(string idToken, string expectedNonce, string accessToken, CancellationToken ct)
    {
        var (token, error) = await ValidateAsync(idToken, validTypes: null, ct);
        if (token is null) return new Checked(null, error);
        // §3.1.3.7 (11): the nonce must be the one this sign-in sent, against replayed ID tokens.
        if (!token.TryGetPayloadValue<string>("nonce", out var nonce) || !FixedEquals(nonce, expectedNonce))
            return new Checked(null, "the ID token's nonce does not match this sign-in");
        if (!token.TryGetPayloadValue<string>("sub", out var sub) || string.IsNullOrEmpty(sub))
            return new Checked(null, "the ID token has no sub");
        // §3.1.3.7 (4, 5): with several audiences, azp must be present and be this client.
        if (token.Audiences.Count() > 1 && !(token.TryGetPayloadValue<string>("azp", out var azp) && azp == _o.ClientId))
            return new Checked(null, "the ID token has several audiences and no matching azp");
        if (token.TryGetPayloadValue<string>("azp", out var azpAny) && azpAny != _o.ClientId)
            return new Checked(null, "the ID token was made for another client (azp)");
        // §3.2.2.9: at_hash, when present, binds the access token to this ID token.
        if (token.TryGetPayloadValue<string>("at_hash", out var atHash) && !FixedEquals(atHash, LeftHalfHash(accessToken, token.Alg)))
            return new Checked(null, "the ID token's at_hash does not match the access token");
        return new Checked(token, null);
    }

    /// <summary>OIDC Back-Channel Logout 1.0 §2.6, steps 1 to 6 (the receiver then ends the matching sessions).</summary>
    public async Task<Checked> ValidateLogoutTokenAsync(string logoutToken, CancellationToken ct)
    {
        // §2.4: "explicitly typed ... typ value logout+jwt" (RFC 8725 §3.11) so no other JWT can be replayed here.
        var (token, error) = await ValidateAsync(logoutToken, validTypes: ["logout+jwt"], ct);
        if (token is null) return new Checked(null, error);
        if (!token.TryGetPayloadValue<long>("iat", out _)) return new Checked(null, "the logout token has no iat");
        if (string.IsNullOrEmpty(token.Id)) return new Checked(null, "the logout token has no jti");
        // §2.6 (4): "Verify that the Logout Token contains a sub Claim, a sid Claim, or both."
        var hasSub = token.TryGetPayloadValue<string>("sub", out var sub) && !string.IsNullOrEmpty(sub);
        var hasSid = token.TryGetPayloadValue<string>("sid", out var sid) && !string.IsNullOrEmpty(sid);
        if (!hasSub && !hasSid) return new Checked(null, "the logout token has neither sub nor sid");
        // §2.6 (5): "Verify that the Logout Token contains an events Claim whose value is JSON object containing the
        // member name http://schemas.openid.net/event/backchannel-logout."
        if (!token.TryGetPayloadValue<JsonElement>("events", out var events) || events.ValueKind != JsonValueKind.Object
            || !events.TryGetProperty(BackchannelLogoutEvent, out var ev) || ev.ValueKind != JsonValueKind.Object)
            return new Checked(null, "the logout token has no back-channel logout event");
        // §2.6 (6): "Verify that the Logout Token does not contain a nonce Claim." (an ID token is not a logout token)
        if (token.TryGetClaim("nonce", out _)) return new Checked(null, "the logout token carries a nonce");
        return new Checked(token, null);
    }

    private async Task<(JsonWebToken? Token, string? Error)> ValidateAsync(string jwt, string[]? validTypes, CancellationToken ct)
    {
        if (jwt.Length > 16384) return (null, "the token is too large");
        var metadata = await authority.GetMetadataAsync(ct);
        TokenValidationResult? result = null;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var keys = await authority.GetSigningKeysAsync(refresh: attempt > 0, ct);
            var parameters = new TokenValidationParameters
            {
                ValidIssuer = metadata.Issuer,
                ValidAudience = _o.ClientId,
                IssuerSigningKeys = keys,
                ValidAlgorithms = _o.SigningAlgorithms,
                RequireSignedTokens = true,
                RequireExpirationTime = true,
                ValidateLifetime = true,
                ClockSkew = _o.ClockSkew,
                LifetimeValidator = (nbf, exp, _, p) =>
                {
                    var now = time.GetUtcNow().UtcDateTime;
                    return exp is { } e && e + p.ClockSkew > now && (nbf is not { } n || n - p.ClockSkew <= now);
                },
                ValidTypes = validTypes,
                TryAllIssuerSigningKeys = false,
            };
            result = await Handler.ValidateTokenAsync(jwt, parameters);
            if (result.IsValid) return ((JsonWebToken)result.SecurityToken, null);
            // An unknown kid may be a key Tessera published after our last fetch: fetch once more, then give up.
            if (result.Exception is not SecurityTokenSignatureKeyNotFoundException) break;
        }
        return (null, "the token is not valid: " + result?.Exception?.GetType().Name);
    }

    private static string LeftHalfHash(string value, string alg)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        // EdDSA names no hash; Ed25519's own is SHA-512 (RFC 8032 §5.1), the one Tessera uses for EdDSA ID tokens.
        var hash = alg == Tessera.EdDsa.EdDsaAlgorithms.EdDsa ? SHA512.HashData(bytes) : alg[^3..] switch
        {
            "384" => SHA384.HashData(bytes),
            "512" => SHA512.HashData(bytes),
            _ => SHA256.HashData(bytes),
        };
        return Base64UrlEncoder.Encode(hash, 0, hash.Length / 2);
    }

    internal static bool FixedEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));
}
