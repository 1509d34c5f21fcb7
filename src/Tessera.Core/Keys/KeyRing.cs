using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Crypto;
using Tessera.Core.Storage;
using Tessera.EdDsa;

namespace Tessera.Core.Keys;

/// <summary>
/// The signing keys, read from the store (so every node signs with the same current key and serves the same JWKS)
/// and decrypted with the master key. Keys rotate on a schedule: a new key is added <see cref="TesseraOptions.SigningKeyAnnouncement"/>
/// before it takes over and published from then on; a replaced key stays published for
/// <see cref="TesseraOptions.SigningKeyRetention"/>. Only additions touch the store: a key's state follows from
/// the activation times, so nodes never disagree about it.
/// </summary>
public sealed class KeyRing(ISigningKeyStore store, SecretProtector protector, TesseraOptions options, TimeProvider time)
{
    private const string Purpose = "tessera.signing-key.v1";
    private static readonly TimeSpan ReloadEvery = TimeSpan.FromMinutes(1);
    private volatile Snapshot? _snapshot;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly SemaphoreSlim _ensureLock = new(1, 1);

    /// <summary>
    /// ES256 signs by default; RS256 exists for clients that cannot check ECDSA, EdDSA (Ed25519, RFC 8037) for those
    /// that prefer it. Each algorithm has keys of its own (RFC 7518 §3.1 and RFC 8037 §3.1 tie an "alg" to one key type).
    /// </summary>
    public static readonly IReadOnlyList<string> Algorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256, EdDsaAlgorithms.EdDsa];

    public sealed record LoadedKey(string Kid, string Algorithm, AsymmetricSecurityKey PrivateKey, AsymmetricSecurityKey PublicKey, SigningKeyRecord Record);

    private sealed record Snapshot(IReadOnlyList<LoadedKey> Published, IReadOnlyDictionary<string, LoadedKey> Current, DateTimeOffset LoadedAt);

    /// <summary>
    /// Creates the first key when there is none, and the next key once the current one is within its announcement
    /// period of the end of its lifetime. Several nodes may do this at once; ties are resolved by kid everywhere.
    /// </summary>
    public async Task EnsureKeyAsync(CancellationToken ct)
    {
        await _ensureLock.WaitAsync(ct);
        try
        {
            await EnsureKeyCoreAsync(ct);
        }
        finally
        {
            _ensureLock.Release();
        }
    }

    private async Task EnsureKeyCoreAsync(CancellationToken ct, string? alsoAlgorithm = null)
    {
        var all = await store.ListAsync(ct);
        var now = time.GetUtcNow();
        // ES256 always; another algorithm once some client asked for it.
        var algorithms = all.Select(k => k.Algorithm).Append(SecurityAlgorithms.EcdsaSha256).Append(alsoAlgorithm).OfType<string>().Distinct();
        foreach (var alg in algorithms)
        {
            var keys = all.Where(k => k.Algorithm == alg).ToList();
            var current = Current(keys, now);
            if (current is null)
                await store.AddAsync(NewKeyRecord(now, now, alg), ct);
            else if (!keys.Any(k => k.ActivatesAt > now))
            {
                var next = current.ActivatesAt + options.SigningKeyLifetime;
                if (next - options.SigningKeyAnnouncement <= now)
                    await store.AddAsync(NewKeyRecord(now, next < now ? now : next, alg), ct);
            }
        }
        await ReloadAsync(force: true, ct);
    }

    /// <summary>An immediate rotation (compromise or policy): a new key signs from now on; the old one stays published for the retention period.</summary>
    public async Task<SigningKeyRecord> RotateNowAsync(CancellationToken ct, string algorithm = SecurityAlgorithms.EcdsaSha256)
    {
        var now = time.GetUtcNow();
        // Strictly after the current key's activation, so the order (activation, kid) makes the new key current.
        var latest = (await store.ListAsync(ct)).Where(k => k.Algorithm == algorithm && k.ActivatesAt <= now).Select(k => k.ActivatesAt).DefaultIfEmpty(now).Max();
        // (Stores keep milliseconds, so "after" means at least one millisecond after.)
        var record = NewKeyRecord(now, latest + TimeSpan.FromMilliseconds(1) > now ? latest + TimeSpan.FromMilliseconds(1) : now, algorithm);
        await store.AddAsync(record, ct);
        await ReloadAsync(force: true, ct);
        return record;
    }

    public SigningKeyRecord NewKeyRecord(DateTimeOffset now, DateTimeOffset activatesAt, string algorithm = SecurityAlgorithms.EcdsaSha256)
    {
        if (!Algorithms.Contains(algorithm)) throw new ArgumentException($"Signing algorithm {algorithm} is not supported.", nameof(algorithm));
        var (pkcs8, publicKeyInfo) = NewPrivateKey(algorithm);
        try
        {
            var kid = Base64UrlEncoder.Encode(SHA256.HashData(publicKeyInfo))[..22];
            return new SigningKeyRecord
            {
                Kid = kid,
                Algorithm = algorithm,
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

    /// <summary>
    /// A new private key as PKCS#8 for every algorithm (RFC 8410 for Ed25519), so the stores and the master-key
    /// encryption treat all keys alike, and its SubjectPublicKeyInfo, which the kid is derived from.
    /// </summary>
    private static (byte[] Pkcs8, byte[] PublicKeyInfo) NewPrivateKey(string algorithm)
    {
        if (algorithm == EdDsaAlgorithms.EdDsa)
        {
            var pkcs8 = EdDsaSecurityKey.CreatePkcs8();
            using var ed = EdDsaSecurityKey.FromPkcs8(pkcs8);
            return (pkcs8, ed.ExportSubjectPublicKeyInfo());
        }
        using AsymmetricAlgorithm key = algorithm == SecurityAlgorithms.RsaSha256 ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return (key.ExportPkcs8PrivateKey(), key.ExportSubjectPublicKeyInfo());
    }

    public async ValueTask<LoadedKey> GetCurrentAsync(CancellationToken ct) => await GetCurrentAsync(SecurityAlgorithms.EcdsaSha256, ct);

    /// <summary>The key that signs with <paramref name="algorithm"/> now; the first request for a new algorithm creates its key.</summary>
    public async ValueTask<LoadedKey> GetCurrentAsync(string algorithm, CancellationToken ct)
    {
        if ((await GetSnapshotAsync(ct)).Current.TryGetValue(algorithm, out var key)) return key;
        if (!Algorithms.Contains(algorithm)) throw new ArgumentException($"Signing algorithm {algorithm} is not supported.", nameof(algorithm));
        await _ensureLock.WaitAsync(ct);
        try
        {
            await EnsureKeyCoreAsync(ct, algorithm);
        }
        finally
        {
            _ensureLock.Release();
        }
        return (await GetSnapshotAsync(ct)).Current[algorithm];
    }

    /// <summary>Keys to publish: announced, current and recently replaced ones.</summary>
    public async ValueTask<IReadOnlyList<LoadedKey>> GetPublishedAsync(CancellationToken ct) => (await GetSnapshotAsync(ct)).Published;

    /// <summary>Order every node agrees on: activation time, then kid.</summary>
    private static IEnumerable<SigningKeyRecord> Ordered(IEnumerable<SigningKeyRecord> keys) =>
        keys.OrderBy(k => k.ActivatesAt).ThenBy(k => k.Kid, StringComparer.Ordinal);

    private static SigningKeyRecord? Current(IEnumerable<SigningKeyRecord> keys, DateTimeOffset now) =>
        Ordered(keys).LastOrDefault(k => k.ActivatesAt <= now);

    /// <summary>A key stays published until the key after it has signed for the retention period.</summary>
    private bool IsPublished(IReadOnlyList<SigningKeyRecord> ordered, int i, DateTimeOffset now)
    {
        if (ordered[i].RetiresAt is { } retires && retires <= now) return false;
        var successor = ordered.Skip(i + 1).FirstOrDefault(k => k.Algorithm == ordered[i].Algorithm && k.ActivatesAt <= now);
        return successor is null || now < successor.ActivatesAt + options.SigningKeyRetention;
    }

    private async ValueTask<Snapshot> GetSnapshotAsync(CancellationToken ct)
    {
        var s = _snapshot;
        if (s is not null && time.GetUtcNow() - s.LoadedAt < ReloadEvery && !ActivationPassed(s)) return s;
        return await ReloadAsync(force: false, ct);
    }

    /// <summary>An announced key whose time came makes the snapshot stale before the reload interval.</summary>
    private bool ActivationPassed(Snapshot s)
    {
        var now = time.GetUtcNow();
        return s.Published.Any(k => k.Record.ActivatesAt > s.LoadedAt && k.Record.ActivatesAt <= now);
    }

    private async Task<Snapshot> ReloadAsync(bool force, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var now = time.GetUtcNow();
            if (!force && _snapshot is { } fresh && now - fresh.LoadedAt < TimeSpan.FromSeconds(1) && !ActivationPassed(fresh)) return fresh;
            var ordered = Ordered(await store.ListAsync(ct)).ToList();
            var previous = _snapshot?.Published.ToDictionary(k => k.Kid) ?? [];
            var published = new List<LoadedKey>();
            for (var i = 0; i < ordered.Count; i++)
            {
                if (!IsPublished(ordered, i, now)) continue;
                var r = ordered[i];
                published.Add(previous.TryGetValue(r.Kid, out var known) ? known : Load(r));
            }
            var current = new Dictionary<string, LoadedKey>();
            foreach (var alg in ordered.Select(k => k.Algorithm).Distinct())
                if (Current(ordered.Where(k => k.Algorithm == alg), now) is { } record)
                    current[alg] = published.Single(k => k.Kid == record.Kid);
            if (!current.ContainsKey(SecurityAlgorithms.EcdsaSha256))
                throw new InvalidOperationException("No active signing key; start the server once to create one.");
            var snapshot = new Snapshot(published, current, now);
            _snapshot = snapshot;
            return snapshot;
        }
        finally
        {
            _lock.Release();
        }
    }

    private LoadedKey Load(SigningKeyRecord r)
    {
        var pkcs8 = protector.Unprotect(r.ProtectedPrivateKey, Purpose)
            ?? throw new InvalidOperationException($"Signing key {r.Kid} cannot be decrypted: the configured Tessera:MasterKey is not the one it was stored with.");
        try
        {
            if (r.Algorithm == EdDsaAlgorithms.EdDsa)
            {
                var ed = EdDsaSecurityKey.FromPkcs8(pkcs8, r.Kid);
                return new LoadedKey(r.Kid, r.Algorithm, ed, ed.PublicOnly(), r);
            }
            if (r.Algorithm == SecurityAlgorithms.RsaSha256)
            {
                var rsa = RSA.Create();
                rsa.ImportPkcs8PrivateKey(pkcs8, out _);
                var rsaPublic = RSA.Create(rsa.ExportParameters(false));
                return new LoadedKey(r.Kid, r.Algorithm, new RsaSecurityKey(rsa) { KeyId = r.Kid }, new RsaSecurityKey(rsaPublic) { KeyId = r.Kid }, r);
            }
            var ec = ECDsa.Create();
            ec.ImportPkcs8PrivateKey(pkcs8, out _);
            var pub = ECDsa.Create(ec.ExportParameters(false));
            return new LoadedKey(r.Kid, r.Algorithm, new ECDsaSecurityKey(ec) { KeyId = r.Kid }, new ECDsaSecurityKey(pub) { KeyId = r.Kid }, r);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }
}
