using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Tessera.Core.Tokens;

/// <summary>
/// Opaque handles: random, prefixed so secret scanners can spot a leaked one, and only ever stored as SHA-256.
/// </summary>
public static class Handles
{
    public const string RefreshTokenPrefix = "tsr_";
    public const string AuthorizationCodePrefix = "tsc_";
    public const string ClientSecretPrefix = "tss_";

    private const int FamilyBytes = 16;
    private const int SecretBytes = 32;
    private static readonly int FamilyChars = Base64Url.GetEncodedLength(FamilyBytes);
    private static readonly int SecretChars = Base64Url.GetEncodedLength(SecretBytes);

    /// <summary>A new family part for a session; every refresh token of the session starts with it.</summary>
    public static string NewFamily() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(FamilyBytes));

    /// <summary>A refresh token: prefix, the session's family part, then 256 fresh random bits.</summary>
    public static string NewRefreshToken(string family) =>
        RefreshTokenPrefix + family + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));

    public static string NewAuthorizationCode() => AuthorizationCodePrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));

    public static string NewClientSecret() => ClientSecretPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));

    public static string NewId() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));

    /// <summary>Splits a refresh token into its family part; false for anything not shaped like one of ours.</summary>
    public static bool TryGetFamily(string token, out string family)
    {
        family = "";
        if (token.Length != RefreshTokenPrefix.Length + FamilyChars + SecretChars || !token.StartsWith(RefreshTokenPrefix, StringComparison.Ordinal))
            return false;
        var body = token.AsSpan(RefreshTokenPrefix.Length);
        foreach (var c in body)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')) return false;
        }
        family = body[..FamilyChars].ToString();
        return true;
    }

    public static byte[] Hash(string handle)
    {
        Span<byte> hash = stackalloc byte[32];
        var max = Encoding.UTF8.GetMaxByteCount(handle.Length);
        var buffer = max <= 512 ? stackalloc byte[max] : new byte[max];
        var n = Encoding.UTF8.GetBytes(handle, buffer);
        SHA256.HashData(buffer[..n], hash);
        return hash.ToArray();
    }

    /// <summary>Constant-time comparison of two hashes (CryptographicOperations.FixedTimeEquals).</summary>
    public static bool HashEquals(byte[]? a, byte[]? b) =>
        a is not null && b is not null && CryptographicOperations.FixedTimeEquals(a, b);
}
