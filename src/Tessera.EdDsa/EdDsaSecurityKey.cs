using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;
using NSec.Cryptography;

namespace Tessera.EdDsa;

/// <summary>Names RFC 8037 gives Ed25519 in JOSE.</summary>
public static class EdDsaAlgorithms
{
    /// <summary>
    /// RFC 8037 §3.1: "algorithm "EdDSA" is defined here, to be applied as the value of the "alg" header parameter".
    /// (RFC 9864 later registered the fully-specified "Ed25519" and deprecated the polymorphic "EdDSA"; Tessera issues
    /// "EdDSA", the name deployed JOSE libraries and the issue ask for, and only ever with Ed25519 keys.)
    /// </summary>
    public const string EdDsa = "EdDSA";

    /// <summary>RFC 8037 §2: "A new key type (kty) value "OKP" (Octet Key Pair) is defined".</summary>
    public const string OctetKeyPair = "OKP";

    /// <summary>RFC 8037 §3.1: the curve ("crv") whose EdDSA variant signs; the only one Tessera uses.</summary>
    public const string Ed25519 = "Ed25519";
}

/// <summary>
/// An Ed25519 key for Microsoft.IdentityModel, which has no EdDSA of its own (8.x): the primitive is libsodium's,
/// through NSec.Cryptography, plugged in with a <see cref="CryptoProviderFactory"/> of the key's own, so
/// <c>JsonWebTokenHandler</c> signs and validates EdDSA JWTs without touching the process-wide default factory.
/// The private half, when there is one, lives in libsodium's guarded memory and cannot be exported.
/// </summary>
public sealed class EdDsaSecurityKey : AsymmetricSecurityKey, IDisposable
{
    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;
    private readonly Key? _privateKey;

    private EdDsaSecurityKey(Key? privateKey, PublicKey publicKey)
    {
        _privateKey = privateKey;
        PublicKey = publicKey;
        CryptoProviderFactory = EdDsaCryptoProvider.Factory;
    }

    /// <summary>The public half.</summary>
    public PublicKey PublicKey { get; }

    internal Key? PrivateKey => _privateKey;

    /// <summary>A new key, as PKCS#8 (RFC 8410 <c>OneAsymmetricKey</c>) for storage; the caller zeroes the bytes when done.</summary>
    public static byte[] CreatePkcs8()
    {
        using var key = Key.Create(Algorithm, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return key.Export(KeyBlobFormat.PkixPrivateKey);
    }

    /// <summary>A signing key from PKCS#8 (what <see cref="CreatePkcs8"/> made); the imported private key is not exportable.</summary>
    public static EdDsaSecurityKey FromPkcs8(ReadOnlySpan<byte> pkcs8, string? keyId = null)
    {
        if (!Key.TryImport(Algorithm, pkcs8, KeyBlobFormat.PkixPrivateKey, out var key) || key is null)
            throw new CryptographicException("The bytes are not an Ed25519 private key in PKCS#8 form.");
        return new EdDsaSecurityKey(key, key.PublicKey) { KeyId = keyId };
    }

    /// <summary>A verification key from the 32 octets of an Ed25519 public key (RFC 8032 §5.1.5).</summary>
    public static EdDsaSecurityKey FromPublicKey(ReadOnlySpan<byte> rawPublicKey, string? keyId = null)
    {
        if (!TryFromPublicKey(rawPublicKey, keyId, out var key))
            throw new CryptographicException("The bytes are not an Ed25519 public key (32 octets).");
        return key;
    }

    private static bool TryFromPublicKey(ReadOnlySpan<byte> rawPublicKey, string? keyId, out EdDsaSecurityKey key)
    {
        key = null!;
        if (rawPublicKey.Length != Algorithm.PublicKeySize || !PublicKey.TryImport(Algorithm, rawPublicKey, KeyBlobFormat.RawPublicKey, out var publicKey) || publicKey is null)
            return false;
        key = new EdDsaSecurityKey(null, publicKey) { KeyId = keyId };
        return true;
    }

    /// <summary>
    /// The verification key a JWK describes, or null when it is not an Ed25519 signing key. Only the public member is
    /// read: RFC 8037 §2 says "d" "MUST NOT be present for public keys", and a key set is never a place to take a private key from.
    /// </summary>
    public static EdDsaSecurityKey? FromJsonWebKey(JsonWebKey jwk)
    {
        ArgumentNullException.ThrowIfNull(jwk);
        // RFC 8037 §2: "The parameter "crv" MUST be present and contain the subtype of the key"; "The parameter "x"
        // MUST be present and contain the public key encoded using the base64url [RFC4648] encoding."
        if (jwk.Kty != EdDsaAlgorithms.OctetKeyPair || jwk.Crv != EdDsaAlgorithms.Ed25519 || string.IsNullOrEmpty(jwk.X)) return null;
        // RFC 7517 §4.2, §4.4: a key published for another use or another algorithm does not sign JWTs for us.
        if (!string.IsNullOrEmpty(jwk.Use) && jwk.Use != JsonWebKeyUseNames.Sig) return null;
        if (!string.IsNullOrEmpty(jwk.Alg) && jwk.Alg != EdDsaAlgorithms.EdDsa) return null;
        byte[] x;
        try
        {
            x = Base64UrlEncoder.DecodeBytes(jwk.X);
        }
        catch (FormatException)
        {
            return null;
        }
        return TryFromPublicKey(x, jwk.Kid, out var key) ? key : null;
    }

    /// <summary>The Ed25519 signing keys of a key set (Microsoft.IdentityModel's <c>GetSigningKeys</c> leaves "OKP" keys out).</summary>
    public static IReadOnlyList<EdDsaSecurityKey> SigningKeysOf(JsonWebKeySet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        var keys = new List<EdDsaSecurityKey>();
        foreach (var jwk in set.Keys)
            if (FromJsonWebKey(jwk) is { } key) keys.Add(key);
        return keys;
    }

    /// <summary>The same key without its private half: what verifiers get.</summary>
    public EdDsaSecurityKey PublicOnly() => new(null, PublicKey) { KeyId = KeyId };

    /// <summary>The 32 octets RFC 8037 §2 publishes as "x".</summary>
    public byte[] ExportRawPublicKey() => PublicKey.Export(KeyBlobFormat.RawPublicKey);

    /// <summary>X.509 SubjectPublicKeyInfo (RFC 8410), the input Tessera derives key ids from for every algorithm.</summary>
    public byte[] ExportSubjectPublicKeyInfo() => PublicKey.Export(KeyBlobFormat.PkixPublicKey);

    /// <summary>RFC 8037 §2's public JWK members: kty, crv and x. Never d.</summary>
    public IReadOnlyDictionary<string, string> PublicJwkMembers() => new Dictionary<string, string>
    {
        ["kty"] = EdDsaAlgorithms.OctetKeyPair,
        ["crv"] = EdDsaAlgorithms.Ed25519,
        ["x"] = Base64UrlEncoder.Encode(ExportRawPublicKey()),
    };

    public override int KeySize => 256;

    [Obsolete("HasPrivateKey method is deprecated, please use PrivateKeyStatus.")]
    public override bool HasPrivateKey => _privateKey is not null;

    public override PrivateKeyStatus PrivateKeyStatus => _privateKey is null ? PrivateKeyStatus.DoesNotExist : PrivateKeyStatus.Exists;

    public override bool CanComputeJwkThumbprint() => true;

    /// <summary>
    /// RFC 7638 over the members RFC 8037 §2 names: "the three public key fields are included in the hash input in
    /// lexicographic order: "crv", "kty", and "x"."
    /// </summary>
    public override byte[] ComputeJwkThumbprint() => SHA256.HashData(Encoding.UTF8.GetBytes(
        $$"""{"crv":"{{EdDsaAlgorithms.Ed25519}}","kty":"{{EdDsaAlgorithms.OctetKeyPair}}","x":"{{Base64UrlEncoder.Encode(ExportRawPublicKey())}}"}"""));

    public override string ToString() => $"{GetType().Name}, KeyId: '{KeyId}', Private: {(_privateKey is not null ? "yes" : "no")}";

    /// <summary>Frees the private key's guarded memory now rather than at finalization.</summary>
    public void Dispose() => _privateKey?.Dispose();
}
