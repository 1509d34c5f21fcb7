using Microsoft.IdentityModel.Tokens;
using NSec.Cryptography;

namespace Tessera.EdDsa;

/// <summary>
/// The <see cref="ICryptoProvider"/> that answers for <c>alg: EdDSA</c> with an <see cref="EdDsaSecurityKey"/>, and
/// for nothing else: every other algorithm, and EdDSA with any other key type, falls through to the stock provider,
/// which refuses the pair. So neither an EC or RSA key can be made to "verify" an EdDSA token, nor an Ed25519 key an
/// ES256 one.
/// </summary>
public sealed class EdDsaCryptoProvider : ICryptoProvider
{
    public static readonly EdDsaCryptoProvider Instance = new();

    /// <summary>The factory every <see cref="EdDsaSecurityKey"/> carries (not <see cref="CryptoProviderFactory.Default"/>, which is process-wide).</summary>
    internal static readonly CryptoProviderFactory Factory = new() { CustomCryptoProvider = Instance, CacheSignatureProviders = false };

    private EdDsaCryptoProvider()
    {
    }

    /// <remarks>
    /// The factory asks with (key), (key, willCreateSignatures), and, when releasing a provider, with no arguments at all.
    /// </remarks>
    public bool IsSupportedAlgorithm(string algorithm, params object[] args) =>
        // RFC 7515 §4.1.1: "alg" values are case-sensitive.
        string.Equals(algorithm, EdDsaAlgorithms.EdDsa, StringComparison.Ordinal) && (args.Length == 0 || args[0] is EdDsaSecurityKey);

    public object Create(string algorithm, params object[] args)
    {
        if (!string.Equals(algorithm, EdDsaAlgorithms.EdDsa, StringComparison.Ordinal) || args.Length == 0 || args[0] is not EdDsaSecurityKey key)
            throw new NotSupportedException($"EdDsaCryptoProvider makes only EdDSA signature providers for an EdDsaSecurityKey, not {algorithm}.");
        var willCreateSignatures = args.Length > 1 && args[1] is true;
        return new EdDsaSignatureProvider(key, willCreateSignatures);
    }

    public void Release(object cryptoInstance)
    {
        if (cryptoInstance is IDisposable disposable) disposable.Dispose();
    }
}

/// <summary>
/// RFC 8037 §3.1 and §3.2 with libsodium's Ed25519 (PureEdDSA: the JWS Signing Input itself is the message, never a
/// hash of it). The provider borrows its key; disposing it leaves the key alone.
/// </summary>
internal sealed class EdDsaSignatureProvider : SignatureProvider
{
    private static readonly SignatureAlgorithm Ed25519 = SignatureAlgorithm.Ed25519;
    private readonly EdDsaSecurityKey _key;

    public EdDsaSignatureProvider(EdDsaSecurityKey key, bool willCreateSignatures) : base(key, EdDsaAlgorithms.EdDsa)
    {
        if (willCreateSignatures && key.PrivateKey is null)
            throw new InvalidOperationException($"Key '{key.KeyId}' has no private half; it can only verify.");
        _key = key;
    }

    // RFC 8037 §3.1: "Signing for these is performed by applying the signing algorithm defined in [RFC8032] to the
    // private key (as private key), public key (as public key), and the JWS Signing Input (as message). The resulting
    // signature is the JWS Signature."
    public override byte[] Sign(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Ed25519.Sign(SigningKey, input);
    }

    public override byte[] Sign(byte[] input, int offset, int count)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Ed25519.Sign(SigningKey, input.AsSpan(offset, count));
    }

    public override bool Sign(ReadOnlySpan<byte> data, Span<byte> destination, out int bytesWritten)
    {
        if (destination.Length < Ed25519.SignatureSize)
        {
            bytesWritten = 0;
            return false;
        }
        Ed25519.Sign(SigningKey, data, destination[..Ed25519.SignatureSize]);
        bytesWritten = Ed25519.SignatureSize;
        return true;
    }

    // RFC 8037 §3.2: "Verification is performed by applying the verification algorithm defined in [RFC8032] to the
    // public key (as public key), the JWS Signing Input (as message), and the JWS Signature (as signature). [...] If
    // the algorithm accepts, the signature is valid; otherwise, the signature is invalid."
    public override bool Verify(byte[] input, byte[] signature)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(signature);
        return VerifyCore(input, signature);
    }

    public override bool Verify(byte[] input, int inputOffset, int inputLength, byte[] signature, int signatureOffset, int signatureLength)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(signature);
        return VerifyCore(input.AsSpan(inputOffset, inputLength), signature.AsSpan(signatureOffset, signatureLength));
    }

    // An Ed25519 signature is exactly 64 octets (RFC 8032 §5.1.6); anything else is refused before libsodium sees it.
    private bool VerifyCore(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        signature.Length == Ed25519.SignatureSize && Ed25519.Verify(_key.PublicKey, data, signature);

    private Key SigningKey => _key.PrivateKey ?? throw new InvalidOperationException($"Key '{_key.KeyId}' has no private half; it can only verify.");

    protected override void Dispose(bool disposing)
    {
    }
}
