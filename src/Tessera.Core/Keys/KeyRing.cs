using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Crypto;
using Tessera.Core.Storage;

namespace Tessera.Core.Keys;

/// <summary>
/// The signing keys, read from the store (so every node signs with the same current key and serves the same JWKS)
/// and decrypted with the master key. ES256 only for now.
/// </summary>
public sealed class KeyRing(ISigningKeyStore store, SecretProtector protector, TimeProvider time)
{
    private const string Purpose = "tessera.signing-key.v1";
    private static readonly TimeSpan ReloadEvery = TimeSpan.FromMinutes(1);
    private volatile Snapshot? _snapshot;
    private readonly SemaphoreSlim _lock = new(1, 1);

    public sealed record LoadedKey(string Kid, string Algorithm, ECDsaSecurityKey PrivateKey, ECDsaSecurityKey PublicKey, SigningKeyRecord Record);

    private sealed record Snapshot(IReadOnlyList<LoadedKey> Keys, LoadedKey Current, DateTimeOffset LoadedAt);

    /// <summary>Creates the first key when the store has none. Several nodes starting at once may each add one; all are published.</summary>
    public async Task EnsureKeyAsync(CancellationToken ct)
    {
        var keys = await store.ListAsync(ct);
        var now = time.GetUtcNow();
        if (!keys.Any(k => k.ActivatesAt <= now && (k.RetiresAt is null || k.RetiresAt > now)))
            await store.AddAsync(NewKeyRecord(now, now), ct);
        await ReloadAsync(ct);
    }

    public SigningKeyRecord NewKeyRecord(DateTimeOffset now, DateTimeOffset activatesAt)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pkcs8 = ec.ExportPkcs8PrivateKey();
        try
        {
            var kid = Base64UrlEncoder.Encode(SHA256.HashData(ec.ExportSubjectPublicKeyInfo()))[..22];
            return new SigningKeyRecord
            {
                Kid = kid,
                Algorithm = SecurityAlgorithms.EcdsaSha256,
                ProtectedPrivateKey = protector.Protect(pkcs8, Purpose),
                CreatedAt = now,
                ActivatesAt = activatesAt,
            };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    public async ValueTask<LoadedKey> GetCurrentAsync(CancellationToken ct) => (await GetSnapshotAsync(ct)).Current;

    /// <summary>Keys to publish: announced, current and recently retired ones.</summary>
    public async ValueTask<IReadOnlyList<LoadedKey>> GetPublishedAsync(CancellationToken ct) => (await GetSnapshotAsync(ct)).Keys;

    private async ValueTask<Snapshot> GetSnapshotAsync(CancellationToken ct)
    {
        var s = _snapshot;
        if (s is not null && time.GetUtcNow() - s.LoadedAt < ReloadEvery) return s;
        return await ReloadAsync(ct);
    }

    private async Task<Snapshot> ReloadAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var now = time.GetUtcNow();
            if (_snapshot is { } fresh && now - fresh.LoadedAt < TimeSpan.FromSeconds(1)) return fresh;
            var records = await store.ListAsync(ct);
            var loaded = new List<LoadedKey>();
            foreach (var r in records.Where(r => r.RetiresAt is null || r.RetiresAt > now).OrderBy(r => r.ActivatesAt).ThenBy(r => r.Kid, StringComparer.Ordinal))
            {
                var pkcs8 = protector.Unprotect(r.ProtectedPrivateKey, Purpose)
                    ?? throw new InvalidOperationException($"Signing key {r.Kid} cannot be decrypted: the configured Tessera:MasterKey is not the one it was stored with.");
                var ec = ECDsa.Create();
                ec.ImportPkcs8PrivateKey(pkcs8, out _);
                CryptographicOperations.ZeroMemory(pkcs8);
                var pub = ECDsa.Create(ec.ExportParameters(false));
                loaded.Add(new LoadedKey(r.Kid, r.Algorithm, new ECDsaSecurityKey(ec) { KeyId = r.Kid }, new ECDsaSecurityKey(pub) { KeyId = r.Kid }, r));
            }
            // The current key is the newest one already active; ties broken by kid so every node picks the same.
            var current = loaded.Where(k => k.Record.ActivatesAt <= now).OrderByDescending(k => k.Record.ActivatesAt).ThenBy(k => k.Kid, StringComparer.Ordinal).FirstOrDefault()
                ?? throw new InvalidOperationException("No active signing key; start the server once to create one.");
            var snapshot = new Snapshot(loaded, current, now);
            _snapshot = snapshot;
            return snapshot;
        }
        finally
        {
            _lock.Release();
        }
    }
}
