using System.Security.Claims;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>A token refused by one of Tessera's own rules; the message is safe to show (it never contains the token).</summary>
public sealed class TesseraTokenRejectedException(string message) : SecurityTokenValidationException(message);

/// <summary>
/// JsonWebTokenHandler with the rules RFC 9068 and RFC 8725 ask of a resource server that the stock handler does not
/// enforce, a cache of validated tokens in front of it, and the revocation check (on both paths: a token validated now
/// and one found in the cache).
/// </summary>
internal sealed class TesseraTokenHandler : JsonWebTokenHandler
{
    /// <summary>Far above any access token Tessera issues; refused before anything is parsed.</summary>
    internal const int MaxTokenLength = 16 * 1024;

    /// <summary>RFC 8725 §3.10: header parameters that would let the token name its own key. Keys come from the authority's JWKS only.</summary>
    internal static readonly string[] ForbiddenHeaders = ["jwk", "jku", "x5u", "x5c", "crit"];

    private readonly string _issuer;
    private readonly HashSet<string> _algorithms;
    private readonly long _skewSeconds;
    private readonly RevocationState _revocations;
    private readonly ValidatedTokenCache _cache;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public TesseraTokenHandler(TesseraAccessTokenOptions options, IEnumerable<string> algorithms, RevocationState revocations, TimeProvider time, ILogger logger)
    {
        _issuer = options.Issuer;
        _algorithms = new HashSet<string>(algorithms, StringComparer.Ordinal);
        _skewSeconds = (long)options.ClockSkew.TotalSeconds;
        _revocations = revocations;
        _cache = new ValidatedTokenCache(options.CacheSize);
        _time = time;
        _logger = logger;
        MapInboundClaims = false;
        MaximumTokenSizeInBytes = MaxTokenLength;
    }

    internal ValidatedTokenCache Cache => _cache;

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        if (string.IsNullOrEmpty(token) || token.Length > MaxTokenLength)
            return Refuse("The token is malformed.");

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var key = ValidatedTokenCache.KeyOf(token);
        if (_cache.TryGet(key, now, out var cached))
        {
            if (_revocations.IsRevoked(cached.SessionId, cached.Subject, cached.ClientId, cached.IssuedAt))
            {
                _cache.Remove(key);
                Log.RevokedTokenRefused(_logger, cached.ClientId, fromCache: true);
                return Refuse("The token's session was revoked.");
            }
            return new TokenValidationResult
            {
                IsValid = true,
                // A copy per request: whatever the application does to its principal stays in that request.
                ClaimsIdentity = cached.Identity.Clone(),
                SecurityToken = cached.Token,
                Issuer = cached.Token.Issuer,
                TokenType = cached.Token.Typ,
            };
        }

        JsonWebToken jwt;
        try
        {
            jwt = ReadJsonWebToken(token);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenException or FormatException or System.Text.Json.JsonException)
        {
            return Refuse("The token is malformed.");
        }
        if (CheckHeader(jwt, _algorithms) is { } headerProblem) return Refuse(headerProblem);

        var result = await base.ValidateTokenAsync(jwt, validationParameters);
        if (!result.IsValid)
        {
            Log.TokenInvalid(_logger, result.Exception?.GetType().Name ?? "unknown");
            return result;
        }
        var validated = (JsonWebToken)result.SecurityToken;

        // The stock issuer check also accepts the issuer named by the discovery document; we want exactly ours.
        if (!string.Equals(validated.Issuer, _issuer, StringComparison.Ordinal)) return Refuse("The issuer is invalid.");
        // RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat and jti are required.
        if (!validated.TryGetPayloadValue<string>("sub", out var sub) || string.IsNullOrEmpty(sub)
            || !validated.TryGetPayloadValue<string>("client_id", out var clientId) || string.IsNullOrEmpty(clientId)
            || !validated.TryGetPayloadValue<string>("jti", out var jti) || string.IsNullOrEmpty(jti)
            || !validated.TryGetPayloadValue<long>("iat", out var iat))
            return Refuse("The token lacks a claim RFC 9068 requires.");
        if (iat > now / 1000 + _skewSeconds) return Refuse("The token was issued in the future.");
        // RFC 9449 §7: a DPoP-bound token is only good with a proof of its key, which a bearer request does not carry.
        if (validated.TryGetClaim("cnf", out _)) return Refuse("The token is bound to a key; it cannot be used as a bearer token.");
        validated.TryGetPayloadValue<string>("sid", out var sid);

        if (_revocations.IsRevoked(sid, sub, clientId, iat))
        {
            Log.RevokedTokenRefused(_logger, clientId, fromCache: false);
            return Refuse("The token's session was revoked.");
        }

        var expires = validated.ValidTo == DateTime.MinValue ? now : new DateTimeOffset(validated.ValidTo, TimeSpan.Zero).ToUnixTimeMilliseconds() + _skewSeconds * 1000;
        _cache.Add(key, new ValidatedTokenCache.Entry(result.ClaimsIdentity.Clone(), validated, expires, sid, sub, iat, clientId), now);
        return result;
    }

    /// <summary>The header rules, shared with the revocation feed's event tokens; null when the header is acceptable.</summary>
    internal static string? CheckHeader(JsonWebToken jwt, IReadOnlySet<string> algorithms)
    {
        if (jwt.IsEncrypted) return "Encrypted tokens are not accepted.";
        if (string.IsNullOrEmpty(jwt.Alg) || TesseraAccessTokenOptions.IsForbiddenAlgorithm(jwt.Alg) || !algorithms.Contains(jwt.Alg))
            return "The token's signing algorithm is not accepted.";
        if (!TopLevelNames(jwt.EncodedHeader, out var names)) return "The token's header is malformed.";
        foreach (var name in names)
        {
            if (Array.IndexOf(ForbiddenHeaders, name) >= 0) return "The token's header carries key material or critical extensions, which are not accepted.";
        }
        return null;
    }

    /// <summary>The member names of a base64url-encoded JSON object, read without trusting any library's idea of which members matter.</summary>
    private static bool TopLevelNames(string encoded, out List<string> names)
    {
        names = new List<string>(4);
        try
        {
            var reader = new System.Text.Json.Utf8JsonReader(Base64UrlEncoder.DecodeBytes(encoded));
            if (!reader.Read() || reader.TokenType != System.Text.Json.JsonTokenType.StartObject) return false;
            while (reader.Read())
            {
                if (reader.TokenType == System.Text.Json.JsonTokenType.EndObject) return reader.CurrentDepth == 0;
                if (reader.TokenType != System.Text.Json.JsonTokenType.PropertyName) return false;
                names.Add(reader.GetString()!);
                if (!reader.Read()) return false;
                reader.Skip();
            }
            return false;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Lifetime rules on <see cref="TimeProvider"/>'s clock: exp required, nbf honoured, both with <paramref name="skew"/>.</summary>
    internal static LifetimeValidator Lifetime(TimeProvider time, TimeSpan skew) => (notBefore, expires, _, _) =>
    {
        var now = time.GetUtcNow().UtcDateTime;
        if (expires is not { } exp) throw new SecurityTokenNoExpirationException("The token has no expiration.");
        if (notBefore is { } nbf)
        {
            if (nbf > exp) throw new SecurityTokenInvalidLifetimeException("The token's nbf is after its exp.") { NotBefore = nbf, Expires = exp };
            if (nbf > now + skew) throw new SecurityTokenNotYetValidException("The token is not valid yet.") { NotBefore = nbf };
        }
        if (exp < now - skew) throw new SecurityTokenExpiredException("The token is expired.") { Expires = exp };
        return true;
    };

    private static TokenValidationResult Refuse(string message) => new() { IsValid = false, Exception = new TesseraTokenRejectedException(message) };
}
