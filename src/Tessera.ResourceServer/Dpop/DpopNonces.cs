using System.Buffers.Binary;
using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>
/// Resource-server nonces (RFC 9449 §9) without server state: the issue time and an HMAC of it under a key made when
/// the process starts, so a nonce is good only at the process that made it, and only for its lifetime. §8: "Nonce
/// values MUST be unpredictable"; the MAC makes them unforgeable too. §11.1: "it is acceptable for clients to use the
/// same nonce multiple times and for the server to accept the same nonce multiple times" (the jti check stays).
/// </summary>
internal sealed class DpopNonces(TimeProvider time, TimeSpan lifetime)
{
    private const int TimeBytes = 8;
    private const int MacBytes = 16;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);

    /// <summary>A new nonce: base64url, so it is within §8.1's <c>nonce = 1*NQCHAR</c>.</summary>
    public string Create()
    {
        Span<byte> raw = stackalloc byte[TimeBytes + MacBytes];
        BinaryPrimitives.WriteInt64BigEndian(raw, time.GetUtcNow().ToUnixTimeMilliseconds());
        Mac(raw[..TimeBytes], raw[TimeBytes..]);
        return Base64UrlEncoder.Encode(raw.ToArray());
    }

    /// <summary>Whether <paramref name="nonce"/> was made here and is still fresh; <paramref name="age"/> tells how old it is.</summary>
    public bool IsValid(string? nonce, out TimeSpan age)
    {
        age = default;
        if (nonce is null || nonce.Length != 32) return false;
        byte[] raw;
        try
        {
            raw = Base64UrlEncoder.DecodeBytes(nonce);
        }
        catch (FormatException)
        {
            return false;
        }
        if (raw.Length != TimeBytes + MacBytes) return false;
        Span<byte> expected = stackalloc byte[MacBytes];
        Mac(raw.AsSpan(0, TimeBytes), expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, raw.AsSpan(TimeBytes))) return false;
        var issued = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(BinaryPrimitives.ReadInt64BigEndian(raw), 0, 253402300799999));
        age = time.GetUtcNow() - issued;
        // A nonce from the future can only be ours if the clock stepped back; allow a little, not a lifetime's worth.
        return age >= TimeSpan.FromSeconds(-5) && age <= lifetime;
    }

    private void Mac(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        Span<byte> full = stackalloc byte[32];
        HMACSHA256.HashData(_key, data, full);
        full[..MacBytes].CopyTo(destination);
    }
}
