using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Tessera.Tests.Dpop;

/// <summary>
/// Builds DPoP proofs by hand (JSON, Base64url and an ECDSA P1363 signature from System.Security.Cryptography),
/// independent of the JWT library the server validates with.
/// </summary>
public sealed class DpopProofBuilder : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public Dictionary<string, object> PublicJwk()
    {
        var p = _key.ExportParameters(false);
        return new Dictionary<string, object> { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = B64(p.Q.X!), ["y"] = B64(p.Q.Y!) };
    }

    /// <summary>RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order, no whitespace.</summary>
    public string Thumbprint()
    {
        var p = _key.ExportParameters(false);
        var canonical = $"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{B64(p.Q.X!)}\",\"y\":\"{B64(p.Q.Y!)}\"}}";
        return B64(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    public string Build(string htm, string htu, Action<Dictionary<string, object>>? header = null, Action<Dictionary<string, object>>? payload = null,
        DateTimeOffset? iat = null, bool breakSignature = false)
    {
        var h = new Dictionary<string, object> { ["typ"] = "dpop+jwt", ["alg"] = "ES256", ["jwk"] = PublicJwk() };
        header?.Invoke(h);
        var p = new Dictionary<string, object>
        {
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["htm"] = htm,
            ["htu"] = htu,
            ["iat"] = (iat ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        };
        payload?.Invoke(p);
        var signingInput = B64(JsonSerializer.SerializeToUtf8Bytes(h)) + "." + B64(JsonSerializer.SerializeToUtf8Bytes(p));
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        if (breakSignature) signature[0] ^= 0xFF;
        return signingInput + "." + B64(signature);
    }

    public static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void Dispose() => _key.Dispose();
}
