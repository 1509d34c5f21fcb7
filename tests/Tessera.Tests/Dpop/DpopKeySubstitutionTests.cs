using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Tessera.Core.Crypto;
using Tessera.Core.Dpop;

namespace Tessera.Tests.Dpop;

/// <summary>
/// The proof's signature must be checked with exactly the key its RFC 7638 thumbprint covers. A jwk that carries a
/// victim's public n/e (so its thumbprint is the victim's) and, beside them, an attacker's certificate in x5c must not
/// let the attacker's signature through: that would bind the attacker's requests to the victim's key.
/// </summary>
public sealed class DpopKeySubstitutionTests
{
    private sealed class RememberAll : IReplayCache
    {
        public Task<bool> TryRememberAsync(byte[] key, DateTimeOffset now, DateTimeOffset expiresAt, CancellationToken ct) => Task.FromResult(true);
    }

    private static string B64(byte[] bytes) => DpopProofBuilder.B64(bytes);

    [Fact]
    public async Task Validate_RefusesAProofSignedByTheKeyOfAnX5cBesideAnotherKeysMembers()
    {
        var validator = new DpopProofValidator(new RememberAll(), new SecretProtector(RandomNumberGenerator.GetBytes(32)), TimeProvider.System);
        using var victim = RSA.Create(2048);
        using var attacker = RSA.Create(2048);
        using var certificate = new CertificateRequest("CN=attacker", attacker, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var v = victim.ExportParameters(false);
        var header = new Dictionary<string, object>
        {
            ["typ"] = "dpop+jwt", ["alg"] = "PS256",
            ["jwk"] = new Dictionary<string, object> { ["kty"] = "RSA", ["n"] = B64(v.Modulus!), ["e"] = B64(v.Exponent!), ["x5c"] = new[] { Convert.ToBase64String(certificate.RawData) } },
        };
        var payload = new Dictionary<string, object>
        {
            ["jti"] = Guid.NewGuid().ToString("N"), ["htm"] = "POST", ["htu"] = "https://as.example/connect/token", ["iat"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        };
        var input = B64(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + B64(JsonSerializer.SerializeToUtf8Bytes(payload));
        var proof = input + "." + B64(attacker.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pss));

        var result = await validator.ValidateAsync(proof, "POST", new Uri("https://as.example/connect/token"), requireNonce: false, accessToken: null, default);

        Assert.Null(result.Proof);
        Assert.NotNull(result.Error);
    }
}
