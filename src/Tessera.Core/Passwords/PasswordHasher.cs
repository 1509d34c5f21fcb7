using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Tessera.Core.Passwords;

/// <summary>Argon2id parameters. Defaults are OWASP's minimum (m=19 MiB, t=2, p=1).</summary>
public sealed record PasswordHashParameters(int MemoryKiB = 19456, int Iterations = 2, int Parallelism = 1);

/// <summary>
/// Argon2id through libsodium (NSec.Cryptography), stored as a PHC string
/// <c>$argon2id$v=19$m=…,t=…,p=…$salt$hash</c> (unpadded standard Base64, as the PHC format says).
/// </summary>
public sealed class PasswordHasher(PasswordHashParameters parameters)
{
    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    public PasswordHashParameters Parameters { get; } = parameters;

    public string Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Derive(password, salt, Parameters);
        return $"$argon2id$v=19$m={Parameters.MemoryKiB},t={Parameters.Iterations},p={Parameters.Parallelism}${B64(salt)}${B64(hash)}";
    }

    /// <summary>Checks a password against a PHC string; <paramref name="needsRehash"/> says the stored parameters are below today's.</summary>
    public bool Verify(string password, string phc, out bool needsRehash)
    {
        needsRehash = false;
        if (!TryParse(phc, out var p, out var salt, out var expected)) return false;
        var actual = Derive(password, salt, p);
        var ok = CryptographicOperations.FixedTimeEquals(actual, expected);
        needsRehash = ok && (p.MemoryKiB < Parameters.MemoryKiB || p.Iterations < Parameters.Iterations || p.Parallelism < Parameters.Parallelism);
        return ok;
    }

    /// <summary>Spends the same effort as a real check, so unknown users cost what known ones do.</summary>
    public void Waste(string password) => Derive(password, new byte[SaltBytes], Parameters);

    private static byte[] Derive(string password, byte[] salt, PasswordHashParameters p)
    {
        var algorithm = PasswordBasedKeyDerivationAlgorithm.Argon2id(new NSec.Cryptography.Argon2Parameters
        {
            DegreeOfParallelism = p.Parallelism,
            MemorySize = p.MemoryKiB,
            NumberOfPasses = p.Iterations,
        });
        return algorithm.DeriveBytes(Encoding.UTF8.GetBytes(password), salt, HashBytes);
    }

    private static bool TryParse(string phc, out PasswordHashParameters p, out byte[] salt, out byte[] hash)
    {
        p = new PasswordHashParameters();
        salt = hash = [];
        var parts = phc.Split('$');
        // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
        if (parts.Length != 6 || parts[1] != "argon2id" || parts[2] != "v=19") return false;
        int m = 0, t = 0, par = 0;
        foreach (var kv in parts[3].Split(','))
        {
            var pair = kv.Split('=');
            if (pair.Length != 2 || !int.TryParse(pair[1], out var v)) return false;
            switch (pair[0]) { case "m": m = v; break; case "t": t = v; break; case "p": par = v; break; default: return false; }
        }
        if (m <= 0 || t <= 0 || par <= 0) return false;
        try
        {
            salt = FromB64(parts[4]);
            hash = FromB64(parts[5]);
        }
        catch (FormatException)
        {
            return false;
        }
        p = new PasswordHashParameters(m, t, par);
        return hash.Length > 0;
    }

    private static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=');

    private static byte[] FromB64(string s) => Convert.FromBase64String(s.PadRight(s.Length + (4 - s.Length % 4) % 4, '='));
}
