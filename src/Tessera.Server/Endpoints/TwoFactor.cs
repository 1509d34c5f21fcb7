using System.Security.Cryptography;
using System.Text;
using OtpNet;
using Tessera.Core.Crypto;
using Tessera.Core.Users;

namespace Tessera.Server.Endpoints;

/// <summary>TOTP (RFC 6238, Otp.NET): 6 digits, 30-second steps, one step of clock drift each way, each step used once.</summary>
public sealed class TwoFactor(SecretProtector protector, TimeProvider time)
{
    private const string Purpose = "tessera.totp.v1:";
    public const int RecoveryCodeCount = 10;

    public static byte[] NewSecret() => KeyGeneration.GenerateRandomKey(20);

    public static string Base32(byte[] secret) => Base32Encoding.ToString(secret).TrimEnd('=');

    public static string OtpAuthUri(string issuer, string username, byte[] secret)
    {
        var label = Uri.EscapeDataString("Tessera:" + username);
        return $"otpauth://totp/{label}?secret={Base32(secret)}&issuer={Uri.EscapeDataString(new Uri(issuer).Host)}&algorithm=SHA1&digits=6&period=30";
    }

    public byte[] Protect(string userId, byte[] secret) => protector.Protect(secret, Purpose + userId);

    public byte[]? Unprotect(string userId, byte[] protectedSecret) => protector.Unprotect(protectedSecret, Purpose + userId);

    /// <summary>The matched time step when the code is right and newer than <paramref name="lastStep"/>; else null.</summary>
    public long? Verify(byte[] secret, string code, long lastStep)
    {
        code = code.Trim().Replace(" ", "", StringComparison.Ordinal);
        if (code.Length != 6 || !code.All(char.IsAsciiDigit)) return null;
        var totp = new Totp(secret);
        if (!totp.VerifyTotp(time.GetUtcNow().UtcDateTime, code, out var step, new VerificationWindow(previous: 1, future: 1))) return null;
        return step > lastStep ? step : null;
    }

    /// <summary>Ten single-use recovery codes: returned in clear once, stored as SHA-256.</summary>
    public static (IReadOnlyList<string> Codes, IReadOnlyList<string> Hashes) NewRecoveryCodes()
    {
        const string alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
        var codes = Enumerable.Range(0, RecoveryCodeCount)
            .Select(_ => new string(Enumerable.Range(0, 10).Select(_ => alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)]).ToArray()))
            .Select(c => c[..5] + "-" + c[5..])
            .ToList();
        return (codes, codes.Select(HashRecovery).ToList());
    }

    public static string HashRecovery(string code) => Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(code.Trim().ToLowerInvariant())));

    /// <summary>The user without the recovery code when it is one of theirs (constant-time comparison), else null.</summary>
    public static User? UseRecoveryCode(User user, string code)
    {
        if (user.RecoveryCodeHashes is not { Count: > 0 } hashes) return null;
        var candidate = Convert.FromBase64String(HashRecovery(code));
        var match = hashes.FirstOrDefault(h => CryptographicOperations.FixedTimeEquals(Convert.FromBase64String(h), candidate));
        return match is null ? null : user with { RecoveryCodeHashes = hashes.Where(h => h != match).ToList() };
    }
}
