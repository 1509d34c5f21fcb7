using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>A token refused by one of Tessera's own rules; the message is safe to show (it never contains the token).</summary>
public sealed class TesseraTokenRejectedException(string message) : SecurityTokenValidationException(message);

/// <summary>
/// JsonWebTokenHandler with the rules RFC 9068 and RFC 8725 ask of a resource server that the stock handler does not
/// enforce, a cache of validated tokens in front of it, the revocation check, and the sender binding of RFC 9449: which
/// scheme the token came with and, for a DPoP-bound token, the request's proof. The last two run on both paths (a token
/// validated now and one found in the cache): the cache remembers tokens, never requests.
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
    private readonly TesseraDpopOptions _dpopOptions;
    private readonly DpopProofValidator? _dpop;
    private readonly IHttpContextAccessor? _requests;

    /// <param name="requests">The current request, for its Authorization scheme and DPoP proof. Without a request every token counts as a bearer token.</param>
    public TesseraTokenHandler(TesseraAccessTokenOptions options, IEnumerable<string> algorithms, RevocationState revocations, TimeProvider time, ILogger logger,
        IHttpContextAccessor? requests = null)
    {
        _issuer = options.Issuer;
        _algorithms = new HashSet<string>(algorithms, StringComparer.Ordinal);
        _skewSeconds = (long)options.ClockSkew.TotalSeconds;
        _revocations = revocations;
        _cache = new ValidatedTokenCache(options.CacheSize);
        _time = time;
        _logger = logger;
        _dpopOptions = options.Dpop;
        _dpop = options.Dpop.AcceptsDpop ? new DpopProofValidator(options.Dpop, time) : null;
        _requests = requests;
        MapInboundClaims = false;
        MaximumTokenSizeInBytes = MaxTokenLength;
    }

    internal ValidatedTokenCache Cache => _cache;

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        var (result, jkt) = await ValidateAccessTokenAsync(token, validationParameters);
        if (!result.IsValid) return result;
        var refusal = await CheckSenderBindingAsync(token, jkt);
        return refusal is null ? result : new TokenValidationResult { IsValid = false, Exception = refusal };
    }

    /// <summary>The token on its own: from the cache, or validated now. Returns its <c>cnf.jkt</c> when it is DPoP-bound.</summary>
    private async Task<(TokenValidationResult Result, string? Jkt)> ValidateAccessTokenAsync(string token, TokenValidationParameters validationParameters)
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
            return (new TokenValidationResult
            {
                IsValid = true,
                // A copy per request: whatever the application does to its principal stays in that request.
                ClaimsIdentity = cached.Identity.Clone(),
                SecurityToken = cached.Token,
                Issuer = cached.Token.Issuer,
                TokenType = cached.Token.Typ,
            }, cached.Jkt);
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
            return (result, null);
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
        // RFC 7800 §3.1: cnf names the key the token is bound to. RFC 9449 §6.1: for DPoP, as the jkt member. A token
        // bound by any other confirmation method (mTLS x5t#S256, a raw jwk, …) is one this API cannot check: refused.
        string? jkt = null;
        if (validated.TryGetClaim("cnf", out _) && (jkt = DpopThumbprint(validated)) is null)
            return Refuse("The token is bound to a key by a confirmation method this API does not support.");
        validated.TryGetPayloadValue<string>("sid", out var sid);

        if (_revocations.IsRevoked(sid, sub, clientId, iat))
        {
            Log.RevokedTokenRefused(_logger, clientId, fromCache: false);
            return Refuse("The token's session was revoked.");
        }

        var expires = validated.ValidTo == DateTime.MinValue ? now : new DateTimeOffset(validated.ValidTo, TimeSpan.Zero).ToUnixTimeMilliseconds() + _skewSeconds * 1000;
        _cache.Add(key, new ValidatedTokenCache.Entry(result.ClaimsIdentity.Clone(), validated, expires, sid, sub, iat, clientId, jkt), now);
        return (result, jkt);
    }

    /// <summary><c>cnf.jkt</c> when <c>cnf</c> holds exactly that one member, a non-empty string; null otherwise.</summary>
    private static string? DpopThumbprint(JsonWebToken token)
    {
        if (!token.TryGetPayloadValue<JsonElement>("cnf", out var cnf) || cnf.ValueKind != JsonValueKind.Object) return null;
        string? jkt = null;
        foreach (var member in cnf.EnumerateObject())
        {
            if (member.Name != "jkt" || jkt is not null || member.Value.ValueKind != JsonValueKind.String) return null;
            jkt = member.Value.GetString();
        }
        // A SHA-256 thumbprint is 43 base64url characters; anything much longer is not one.
        return jkt is { Length: > 0 and <= 128 } ? jkt : null;
    }

    /// <summary>
    /// RFC 9449 for this request: the scheme the token came with must fit its binding, and a DPoP-bound token needs a
    /// valid proof of its key. Null when the request may go on.
    /// </summary>
    private async Task<SecurityTokenValidationException?> CheckSenderBindingAsync(string token, string? jkt)
    {
        var http = _requests?.HttpContext;
        var presented = http is null ? default : PresentedCredentials.Read(http.Request, _dpopOptions);
        // The token handed to us must be the one in the Authorization header: any other source counts as bearer.
        var viaDpop = _dpop is not null && presented.Scheme == PresentedScheme.Dpop && string.Equals(presented.Token, token, StringComparison.Ordinal);
        if (!viaDpop)
        {
            // §7.2: "such a protected resource MUST reject a DPoP-bound access token received as a bearer token per [RFC6750]."
            if (jkt is not null) return Rejected("The token is bound to a key; it cannot be used as a bearer token. Send it with the DPoP scheme and a DPoP proof.");
            if (!_dpopOptions.AcceptsBearer) return Rejected("This API accepts only DPoP-bound access tokens, sent with the DPoP scheme.");
            return null;
        }

        // An unbound token sent with the DPoP scheme. §7.1 defines the scheme for bound tokens only: "A DPoP-bound access
        // token is sent using the Authorization request header field ... with an authentication scheme of DPoP", and
        // §4.3 (12) asks to "confirm that the public key to which the access token is bound matches the public key from
        // the DPoP proof", which no key can do for a token bound to none; "The resource server MUST NOT grant access to
        // the resource unless all checks are successful." Refused, whatever the proof: a proof would prove nothing.
        if (jkt is null) return Rejected("The token is not bound to a DPoP key; send it with the Bearer scheme.");

        var check = await _dpop!.CheckAsync(http!.Request, token, jkt);
        if (check.Failure is { } failure)
        {
            if (check.ReplayCacheFull) Log.DpopReplayCacheFull(_logger, _dpopOptions.ReplayCacheSize);
            Log.DpopRefused(_logger, failure is TesseraDpopProofRejectedException p ? p.Error : "invalid_token", failure.Message);
            return failure;
        }
        if (check.NextNonce is { } nonce && !http.Response.HasStarted) http.Response.Headers["DPoP-Nonce"] = nonce;
        return null;
    }

    private TesseraTokenRejectedException Rejected(string message)
    {
        Log.DpopRefused(_logger, "invalid_token", message);
        return new TesseraTokenRejectedException(message);
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

    private static (TokenValidationResult, string?) Refuse(string message) => (new() { IsValid = false, Exception = new TesseraTokenRejectedException(message) }, null);
}
