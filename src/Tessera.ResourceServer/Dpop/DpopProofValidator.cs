using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>What the proof check of one request decided: a failure to answer with, and a nonce to hand out on success.</summary>
internal readonly record struct DpopCheck(SecurityTokenValidationException? Failure, string? NextNonce = null, bool ReplayCacheFull = false);

/// <summary>
/// RFC 9449 §4.3 and §7.1 checks of the DPoP proof that comes with a DPoP-bound access token, at a resource server.
/// The same rules as Tessera's token endpoint (Tessera.Core's DpopProofValidator), without its database: the replay
/// cache and the nonce key live in this process. JWT parsing and the signature check are Microsoft.IdentityModel's,
/// with the public key embedded in the proof as the only key.
/// </summary>
internal sealed class DpopProofValidator
{
    /// <summary>Far above any real proof (a header with an RSA-4096 key is under 1 KiB); refused before anything is parsed.</summary>
    internal const int MaxProofLength = 8 * 1024;

    /// <summary>§11.1: "reject DPoP proof JWTs with unnecessarily large jti values".</summary>
    internal const int MaxJtiLength = 256;

    /// <summary>RFC 7517/7518 private key members; §4.3 (7): "The jwk JOSE Header Parameter does not contain a private key."</summary>
    private static readonly string[] PrivateKeyMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    /// <summary>Keys come from strangers: their signature providers are not cached.</summary>
    private static readonly CryptoProviderFactory Uncached = new() { CacheSignatureProviders = false };

    private static readonly JsonWebTokenHandler Handler = new() { MapInboundClaims = false, MaximumTokenSizeInBytes = MaxProofLength };

    private readonly TesseraDpopOptions _options;
    private readonly HashSet<string> _algorithms;
    private readonly TimeProvider _time;
    private readonly DpopReplayCache _replays;
    private readonly DpopNonces? _nonces;
    private readonly Uri? _publicBase;

    public DpopProofValidator(TesseraDpopOptions options, TimeProvider time)
    {
        _options = options;
        _algorithms = new HashSet<string>(options.Algorithms.Where(a => !TesseraAccessTokenOptions.IsForbiddenAlgorithm(a)), StringComparer.Ordinal);
        _time = time;
        _replays = new DpopReplayCache(options.ReplayCacheSize);
        _nonces = options.RequireNonce ? new DpopNonces(time, options.NonceLifetime) : null;
        _publicBase = options.ResolvedPublicBaseUrl;
    }

    /// <summary>
    /// Checks the request's proof for <paramref name="accessToken"/>, which is bound to the key with RFC 7638 thumbprint
    /// <paramref name="jkt"/> (its <c>cnf.jkt</c>). §7.1: "For such an access token, a resource server MUST check that a
    /// DPoP proof was also received in the DPoP header field of the HTTP request, check the DPoP proof according to the
    /// rules in Section 4.3, and check that the public key of the DPoP proof matches the public key to which the access
    /// token is bound per Section 6. The resource server MUST NOT grant access to the resource unless all checks are
    /// successful." The checks "may be performed in any order": cheap and structural first, the replay cache last, so
    /// only proofs that passed everything else take room in it.
    /// </summary>
    public async Task<DpopCheck> CheckAsync(HttpRequest request, string accessToken, string jkt)
    {
        // §4.3 (1) "There is not more than one DPoP HTTP request header field."
        var headers = request.Headers["DPoP"];
        if (headers.Count == 0) return Proof("A DPoP proof is required: send one in the DPoP header.");
        if (headers.Count > 1) return Proof("Send exactly one DPoP header.");
        var proof = headers[0];

        // §4.3 (2) "The DPoP HTTP request header field value is a single and well-formed JWT."
        if (string.IsNullOrEmpty(proof) || proof.Length > MaxProofLength) return Proof("The DPoP proof is missing or too large.");
        JsonWebToken jwt;
        try
        {
            jwt = new JsonWebToken(proof);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenException or FormatException or JsonException)
        {
            return Proof("The DPoP proof is not a well-formed JWT.");
        }
        if (jwt.IsEncrypted) return Proof("The DPoP proof is not a well-formed JWT.");

        // §4.3 (4) "The typ JOSE Header Parameter has the value dpop+jwt." (§11.5: so JWTs made for other purposes cannot be swapped in.)
        if (!string.Equals(jwt.Typ, "dpop+jwt", StringComparison.Ordinal)) return Proof("The DPoP proof's typ must be dpop+jwt.");
        // §4.3 (5) "The alg JOSE Header Parameter indicates a registered asymmetric digital signature algorithm, is not
        // none, is supported by the application, and is acceptable per local policy." §11.6: "the algorithm none MUST NOT be allowed."
        if (string.IsNullOrEmpty(jwt.Alg) || TesseraAccessTokenOptions.IsForbiddenAlgorithm(jwt.Alg) || !_algorithms.Contains(jwt.Alg))
            return Proof("The DPoP proof's signing algorithm is not accepted.");
        // RFC 7515 §4.1.11: critical extensions this library does not understand make the JWS invalid.
        if (jwt.TryGetHeaderValue<JsonElement>("crit", out _)) return Proof("The DPoP proof names critical header extensions, which are not supported.");

        // §4.3 (6)/(7): a public key in the jwk header, matching the algorithm.
        var (key, keyProblem) = PublicKey(jwt);
        if (key is null) return Proof(keyProblem!);

        // §4.3 (6) "The JWT signature verifies with the public key contained in the jwk JOSE Header Parameter."
        if (!await SignatureIsValidAsync(jwt, key)) return Proof("The DPoP proof's signature is invalid.");

        // §4.3 (3) "All required claims per Section 4.2 are contained in the JWT": jti, htm, htu, iat (ath below).
        if (!jwt.TryGetPayloadValue<string>("jti", out var jti) || string.IsNullOrEmpty(jti) || jti.Length > MaxJtiLength)
            return Proof("The DPoP proof needs a jti of at most 256 characters.");
        // §4.3 (8) "The htm claim matches the HTTP method of the current request." (RFC 9110 §9.1: methods are case-sensitive.)
        if (!jwt.TryGetPayloadValue<string>("htm", out var htm) || !string.Equals(htm, request.Method, StringComparison.Ordinal))
            return Proof("The DPoP proof's htm does not match the request method.");
        // §4.3 (9) "The htu claim matches the HTTP URI value for the HTTP request in which the JWT was received,
        // ignoring any query and fragment parts" — after RFC 3986 normalization, see HttpUri.
        if (!jwt.TryGetPayloadValue<string>("htu", out var htu) || htu is null || !HttpUri.Same(htu, HttpUri.RequestUri(request, _publicBase)))
            return Proof("The DPoP proof's htu does not match the request URI.");
        // §4.3 (11) "The creation time of the JWT ... is within an acceptable window (see Section 11.1)." §11.1: "servers
        // MUST only accept DPoP proofs for a limited time after their creation"; "the server MAY accept DPoP proofs that
        // carry an iat time in the reasonably near future (on the order of seconds or minutes)".
        if (!jwt.TryGetPayloadValue<long>("iat", out var iat) || iat is < 0 or > 253402300799) return Proof("The DPoP proof needs an iat.");
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var iatMs = iat * 1000;
        if (iatMs < nowMs - (long)_options.ProofLifetime.TotalMilliseconds) return Proof("The DPoP proof is too old.");
        if (iatMs > nowMs + (long)_options.ProofClockSkew.TotalMilliseconds) return Proof("The DPoP proof's iat is in the future.");

        // §4.3 (10) "If the server provided a nonce value to the client, the nonce claim matches the server-provided
        // nonce value." §11.3: "A server MUST NOT accept any DPoP proofs without the nonce claim when a DPoP nonce has
        // been provided to the client." §9: refused with use_dpop_nonce and a nonce to use.
        string? nextNonce = null;
        if (_nonces is not null)
        {
            jwt.TryGetPayloadValue<string>("nonce", out var nonce);
            if (!_nonces.IsValid(nonce, out var age))
                return new DpopCheck(new TesseraDpopProofRejectedException(TesseraDpopProofRejectedException.UseDpopNonce,
                    "A fresh DPoP nonce is required: use the one in the DPoP-Nonce header.", _nonces.Create()));
            // §8.2 by way of §9: the next nonce rides on a successful response, before this one runs out.
            if (age > _options.NonceLifetime / 2) nextNonce = _nonces.Create();
        }

        // §4.3 (12) "ensure that the value of the ath claim equals the hash of that access token"; §4.2: "base64url
        // encoding ... the SHA-256 hash of the ASCII encoding of the associated access token's value."
        var ath = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        if (!jwt.TryGetPayloadValue<string>("ath", out var sentAth) || sentAth is null || !FixedTimeEquals(sentAth, ath))
            return Proof("The DPoP proof's ath does not match the access token.");

        // §4.3 (12) "confirm that the public key to which the access token is bound matches the public key from the
        // DPoP proof"; §6.1: cnf.jkt is the RFC 7638 SHA-256 thumbprint. A mismatch is the token's binding failing,
        // which §7.1's Figure 16 answers with invalid_token ("Invalid DPoP key binding").
        string thumbprint;
        try
        {
            thumbprint = Base64UrlEncoder.Encode(key.ComputeJwkThumbprint());
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            return Proof("The DPoP proof's jwk is malformed.");
        }
        if (!FixedTimeEquals(thumbprint, jkt)) return new DpopCheck(new TesseraTokenRejectedException("The DPoP proof is not signed with the key the token is bound to."));

        // §11.1: "HTTP requests to the same URI for which the jti value has been seen before would be declined."
        // Remembered for as long as the proof could be accepted: until iat + ProofLifetime (+1 s for iat's whole seconds).
        switch (_replays.TryRemember(thumbprint, jti, nowMs, iatMs + (long)_options.ProofLifetime.TotalMilliseconds + 1000))
        {
            case DpopReplayCache.Outcome.Replay:
                return Proof("The DPoP proof was already used.");
            case DpopReplayCache.Outcome.Full:
                // Never accepted unchecked: a full cache of live entries refuses (and the handler logs it as a warning).
                return new DpopCheck(new TesseraDpopProofRejectedException(TesseraDpopProofRejectedException.InvalidDpopProof,
                    "The server cannot take more DPoP proofs right now; retry with a new proof."), ReplayCacheFull: true);
        }
        return new DpopCheck(null, nextNonce);
    }

    /// <summary>
    /// The jwk header as a key: a public EC or RSA key that suits the algorithm, or why not. The key is rebuilt from
    /// exactly the members RFC 7638 hashes (crv, x, y / n, e), so the key that checks the signature is the key whose
    /// thumbprint is compared with cnf.jkt: no x5c or other member can stand in for it during verification.
    /// </summary>
    private static (JsonWebKey? Key, string? Problem) PublicKey(JsonWebToken jwt)
    {
        if (!jwt.TryGetHeaderValue<JsonElement>("jwk", out var element) || element.ValueKind != JsonValueKind.Object)
            return (null, "The DPoP proof has no jwk header.");
        foreach (var member in PrivateKeyMembers)
        {
            if (element.TryGetProperty(member, out _)) return (null, "The DPoP proof's jwk must not contain private key material.");
        }
        var alg = jwt.Alg;
        JsonWebKey key;
        switch (Member(element, "kty"))
        {
            case JsonWebAlgorithmsKeyTypes.EllipticCurve:
                var curve = alg switch { "ES256" => "P-256", "ES384" => "P-384", "ES512" => "P-521", _ => null };
                if (curve is null || Member(element, "crv") != curve || Member(element, "x") is not { Length: > 0 } x || Member(element, "y") is not { Length: > 0 } y)
                    return (null, "The DPoP proof's jwk does not fit its algorithm.");
                key = new JsonWebKey { Kty = JsonWebAlgorithmsKeyTypes.EllipticCurve, Crv = curve, X = x, Y = y };
                break;
            case JsonWebAlgorithmsKeyTypes.RSA:
                if (!(alg.StartsWith("RS", StringComparison.Ordinal) || alg.StartsWith("PS", StringComparison.Ordinal))
                    || Member(element, "n") is not { Length: > 0 } n || Member(element, "e") is not { Length: > 0 and <= 8 } e)
                    return (null, "The DPoP proof's jwk does not fit its algorithm.");
                if (ModulusBits(n) < 2048) return (null, "The DPoP proof's RSA key must have at least 2048 bits.");
                key = new JsonWebKey { Kty = JsonWebAlgorithmsKeyTypes.RSA, N = n, E = e };
                break;
            default:
                return (null, "The DPoP proof's jwk must be an EC or RSA public key.");
        }
        key.CryptoProviderFactory = Uncached;
        return (key, null);
    }

    private static string? Member(JsonElement jwk, string name) =>
        jwk.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static int ModulusBits(string n)
    {
        try
        {
            var bytes = Base64UrlEncoder.DecodeBytes(n).AsSpan();
            var first = bytes.IndexOfAnyExcept((byte)0);
            return first < 0 ? 0 : (bytes.Length - first) * 8 - System.Numerics.BitOperations.LeadingZeroCount((uint)bytes[first]) + 24;
        }
        catch (FormatException)
        {
            return 0;
        }
    }

    private async Task<bool> SignatureIsValidAsync(JsonWebToken jwt, JsonWebKey key)
    {
        try
        {
            var result = await Handler.ValidateTokenAsync(jwt, new TokenValidationParameters
            {
                IssuerSigningKey = key,
                // The proof names no kid: its one key is the embedded one.
                TryAllIssuerSigningKeys = true,
                RequireSignedTokens = true,
                ValidAlgorithms = _algorithms,
                ValidTypes = ["dpop+jwt"],
                ValidateIssuer = false,
                ValidateAudience = false,
                ValidateLifetime = false,
                RequireExpirationTime = false,
                RequireAudience = false,
                ValidateIssuerSigningKey = false,
                CryptoProviderFactory = Uncached,
            });
            return result.IsValid;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException or InvalidOperationException or NotSupportedException or FormatException or SecurityTokenException)
        {
            return false;
        }
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    private static DpopCheck Proof(string message) =>
        new(new TesseraDpopProofRejectedException(TesseraDpopProofRejectedException.InvalidDpopProof, message));
}
