using System.Security.Cryptography;
using System.Text;

namespace Tessera.Core.Crypto;

/// <summary>
/// Encrypts small secrets at rest (signing keys, a retry window's successor token) with the configured
/// master key, using the platform's AES-256-GCM. The purpose string is bound as associated data so a
/// ciphertext made for one use cannot be replayed into another. Every node shares the master key, so
/// every node can read what another wrote.
/// </summary>
public sealed class SecretProtector
{
    private const byte Version = 1;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly byte[] _key;

    // One cipher context per thread: AesGcm is not safe for concurrent use, and creating one per call (a new
    // OpenSSL context each time) cost more than the encryption itself on the refresh path.
    private readonly ThreadLocal<AesGcm> _aes;

    public SecretProtector(byte[] masterKey)
    {
        if (masterKey.Length != 32)
            throw new ArgumentException("The master key must be 32 bytes (256 bits).", nameof(masterKey));
        _key = masterKey.ToArray();
        _aes = new ThreadLocal<AesGcm>(() => new AesGcm(_key, TagSize));
    }

    /// <summary>A key for another use, derived from the master key with HKDF-SHA256 (RFC 5869).</summary>
    public byte[] DeriveKey(string purpose) => HKDF.DeriveKey(HashAlgorithmName.SHA256, _key, 32, info: Encoding.UTF8.GetBytes(purpose));

    public byte[] Protect(ReadOnlySpan<byte> plaintext, string purpose)
    {
        var output = new byte[1 + NonceSize + TagSize + plaintext.Length];
        output[0] = Version;
        var nonce = output.AsSpan(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        _aes.Value!.Encrypt(nonce, plaintext, output.AsSpan(1 + NonceSize + TagSize), output.AsSpan(1 + NonceSize, TagSize), Encoding.UTF8.GetBytes(purpose));
        return output;
    }

    /// <summary>Null when the ciphertext is damaged, made with another key, or for another purpose.</summary>
    public byte[]? Unprotect(ReadOnlySpan<byte> protectedData, string purpose)
    {
        if (protectedData.Length < 1 + NonceSize + TagSize || protectedData[0] != Version) return null;
        var plaintext = new byte[protectedData.Length - 1 - NonceSize - TagSize];
        try
        {
            _aes.Value!.Decrypt(protectedData.Slice(1, NonceSize), protectedData[(1 + NonceSize + TagSize)..],
                protectedData.Slice(1 + NonceSize, TagSize), plaintext, Encoding.UTF8.GetBytes(purpose));
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    public string ProtectString(string value, string purpose) => Convert.ToBase64String(Protect(Encoding.UTF8.GetBytes(value), purpose));

    public string? UnprotectString(byte[] protectedData, string purpose) =>
        Unprotect(protectedData, purpose) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;
}
