using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Crypto;

namespace Tessera.Core.Dpop;

/// <summary>Remembers one-time values (DPoP proof jti) until they expire; shared through the store so it holds across nodes.</summary>
public interface IReplayCache
{
    /// <summary>True the first time a key is seen before it expires; false for a replay.</summary>
    Task<bool> TryRememberAsync(byte[] key, DateTimeOffset now, DateTimeOffset expiresAt, CancellationToken ct);
}

public sealed record DpopProof(string Thumbprint, string Jti);

public sealed record DpopResult(DpopProof? Proof, string? Error, bool NonceRequired = false);

/// <summary>
/// RFC 9449 §4.3 checks of a DPoP proof, in the order the RFC lists them. JWT parsing and signature checks are done
/// by Microsoft.IdentityModel.JsonWebTokens with the public key embedded in the proof.
/// </summary>
public sealed class DpopProofValidator(IReplayCache replay, SecretProtector protector, TimeProvider time)
{
    private static readonly CryptoProviderFactory Uncached = new() { CacheSignatureProviders = false };

    public static readonly string[] Algorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSsaPssSha256];
    private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan NonceLifetime = TimeSpan.FromMinutes(5);
    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];
    private static readonly JsonWebTokenHandler Handler = new();
    private readonly byte[] _nonceKey = protector.DeriveKey("tessera.dpop-nonce.v1");

    /// <param name="accessToken">For resource requests: the token whose hash must be in <c>ath</c>.</param>
    public async Task<DpopResult> ValidateAsync(string proof, string method, Uri url, bool requireNonce, string? accessToken, CancellationToken ct)
    {
        if (proof.Length > 8192) return Fail("The DPoP proof is too large.");
        JsonWebToken jwt;
        try
        {
            jwt = new JsonWebToken(proof);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenMalformedException)
        {
            return Fail("The DPoP proof is not a JWT.");
        }
        // §4.3 (4)-(6): typ dpop+jwt, an asymmetric allow-listed alg, a public key in the header.
        if (jwt.Typ != "dpop+jwt") return Fail("The DPoP proof must have typ dpop+jwt.");
        if (!Algorithms.Contains(jwt.Alg)) return Fail("The DPoP proof's algorithm is not allowed.");
        if (!jwt.TryGetHeaderValue<JsonElement>("jwk", out var jwkElement) || jwkElement.ValueKind != JsonValueKind.Object)
            return Fail("The DPoP proof has no jwk header.");
        foreach (var member in PrivateMembers)
            if (jwkElement.TryGetProperty(member, out _)) return Fail("The DPoP proof's jwk must not contain private key material.");
        // The key is rebuilt from exactly the members its RFC 7638 thumbprint covers, so the key that checks the signature
        // is the key the thumbprint names: an x5c (or any other member) beside a victim's n/e cannot carry an attacker's
        // signature through.
        var jwk = PublicKey(jwkElement);
        if (jwk is null) return Fail("The DPoP proof's jwk must be an EC or RSA public key.");
        // Every proof brings its own key: nothing about it is worth keeping in the process-wide signature-provider cache.
        jwk.CryptoProviderFactory = Uncached;

        // §4.3 (7): the signature verifies with that key.
        var result = await Handler.ValidateTokenAsync(proof, new TokenValidationParameters
        {
            IssuerSigningKey = jwk,
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
            RequireSignedTokens = true,
            ValidTypes = ["dpop+jwt"],
            ValidAlgorithms = Algorithms,
            // The proof names no kid; its one key is the embedded one.
            TryAllIssuerSigningKeys = true,
        });
        if (!result.IsValid) return Fail("The DPoP proof's signature is invalid.");

        // §4.3 (8)-(11): htm, htu, iat, nonce, ath.
        if (!jwt.TryGetPayloadValue<string>("jti", out var jti) || string.IsNullOrEmpty(jti) || jti.Length > 256) return Fail("The DPoP proof has no jti.");
        if (!jwt.TryGetPayloadValue<string>("htm", out var htm) || htm != method) return Fail("The DPoP proof's htm does not match the request method.");
        if (!jwt.TryGetPayloadValue<string>("htu", out var htu) || htu is null || !SameUri(htu, url)) return Fail("The DPoP proof's htu does not match the request URI.");
        // A JSON null passes TryGetPayloadValue as a null string, and an iat past year 9999 cannot be a time: both refused, never thrown.
        if (!jwt.TryGetPayloadValue<long>("iat", out var iat) || iat is < 0 or > 253402300799) return Fail("The DPoP proof has no valid iat.");
        var now = time.GetUtcNow();
        var issued = DateTimeOffset.FromUnixTimeSeconds(iat);
        if (issued > now + TimeSpan.FromSeconds(5) || now - issued > MaxAge) return Fail("The DPoP proof is too old or from the future.");
        if (requireNonce)
        {
            if (!jwt.TryGetPayloadValue<string>("nonce", out var nonce) || nonce is null || !IsValidNonce(nonce, now))
                return new DpopResult(null, "A fresh server nonce is required.", NonceRequired: true);
        }
        if (accessToken is not null)
        {
            var ath = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
            if (!jwt.TryGetPayloadValue<string>("ath", out var sentAth) || sentAth is null || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(sentAth), Encoding.ASCII.GetBytes(ath)))
                return Fail("The DPoP proof's ath does not match the access token.");
        }

        var thumbprint = Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint());
        // §11.1: a proof is used once. The key is scoped to the signing key so two clients cannot collide.
        if (!await replay.TryRememberAsync(SHA256.HashData(Encoding.UTF8.GetBytes("dpop\0" + thumbprint + "\0" + jti)), now, issued + MaxAge + TimeSpan.FromSeconds(5), ct))
            return Fail("The DPoP proof was already used.");
        return new DpopResult(new DpopProof(thumbprint, jti), null);
    }

    /// <summary>A stateless server nonce (§8): a timestamp and its HMAC, so every node can check any node's nonce.</summary>
    public string NewNonce()
    {
        var ts = BitConverter.GetBytes(time.GetUtcNow().ToUnixTimeSeconds());
        var mac = HMACSHA256.HashData(_nonceKey, ts);
        return Base64UrlEncoder.Encode([.. ts, .. mac.AsSpan(0, 16)]);
    }

    private bool IsValidNonce(string nonce, DateTimeOffset now)
    {
        byte[] raw;
        try { raw = Base64UrlEncoder.DecodeBytes(nonce); } catch (FormatException) { return false; }
        if (raw.Length != 24) return false;
        var mac = HMACSHA256.HashData(_nonceKey, raw.AsSpan(0, 8));
        if (!CryptographicOperations.FixedTimeEquals(mac.AsSpan(0, 16), raw.AsSpan(8))) return false;
        var issued = DateTimeOffset.FromUnixTimeSeconds(BitConverter.ToInt64(raw, 0));
        return issued <= now + TimeSpan.FromSeconds(5) && now - issued <= NonceLifetime;
    }

    /// <summary>
    /// §4.3 (9): htu compared without query and fragment, after normalisation (RFC 3986 §6.2.2 and §6.2.3): System.Uri
    /// lower-cases scheme and host and drops a default port; the path stays case-sensitive (§6.2.2.1), so the
    /// comparison is ordinal.
    /// </summary>
    private static bool SameUri(string htu, Uri url)
    {
        if (!Uri.TryCreate(htu, UriKind.Absolute, out var u)) return false;
        return string.Equals(u.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped),
            url.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped), StringComparison.Ordinal);
    }

    private static JsonWebKey? PublicKey(JsonElement jwk)
    {
        static string? Member(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        return Member(jwk, "kty") switch
        {
            "EC" when Member(jwk, "crv") is { Length: > 0 } crv && Member(jwk, "x") is { Length: > 0 } x && Member(jwk, "y") is { Length: > 0 } y =>
                new JsonWebKey { Kty = "EC", Crv = crv, X = x, Y = y },
            "RSA" when Member(jwk, "n") is { Length: > 0 } n && Member(jwk, "e") is { Length: > 0 } e => new JsonWebKey { Kty = "RSA", N = n, E = e },
            _ => null,
        };
    }

    private static DpopResult Fail(string error) => new(null, error);
}
