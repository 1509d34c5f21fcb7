using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Crypto;
using Tessera.Core.Keys;
using Tessera.Core.Storage;
using Tessera.EdDsa;
using Tessera.Storage.Postgres;
using Tessera.Storage.Sqlite;
using Tessera.Tests.Storage;

namespace Tessera.Tests.Keys;

/// <summary>
/// EdDSA keys in the key ring: stored encrypted with the master key in both stores and shared by every node reading
/// that store, and rotated on the same schedule as the other algorithms (announced, activated, retired).
/// </summary>
public sealed class EdDsaKeyRingTests
{
    private static readonly JsonWebTokenHandler Handler = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly TesseraOptions _options = new();

    private KeyRing Ring(ITesseraStore store, byte[] masterKey) => new(store.Keys, new SecretProtector(masterKey), _options, _time);

    private static string Sign(KeyRing.LoadedKey key) => Handler.CreateToken(new SecurityTokenDescriptor
    {
        Issuer = "https://issuer.example", Audience = "api", TokenType = "at+jwt",
        IssuedAt = DateTime.UtcNow, Expires = DateTime.UtcNow.AddMinutes(5),
        Claims = new Dictionary<string, object> { ["sub"] = "alice" },
        SigningCredentials = new SigningCredentials(key.PrivateKey, key.Algorithm),
    });

    private static async Task<bool> VerifiesAsync(string token, IEnumerable<KeyRing.LoadedKey> published) =>
        (await Handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = "https://issuer.example", ValidAudience = "api", ValidateLifetime = false,
            ValidAlgorithms = KeyRing.Algorithms, IssuerSigningKeys = published.Select(k => (SecurityKey)k.PublicKey), TryAllIssuerSigningKeys = false,
        })).IsValid;

    private static async Task AnEdDsaKey_IsStoredEncrypted_AndEveryNodeWithTheMasterKeySignsWithIt(ITesseraStore store)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var masterKey = RandomNumberGenerator.GetBytes(32);
        var node1 = new KeyRing(store.Keys, new SecretProtector(masterKey), new TesseraOptions(), time);
        await node1.EnsureKeyAsync(default);
        // The first request for EdDSA creates its key (ES256 exists from the start).
        var key = await node1.GetCurrentAsync(EdDsaAlgorithms.EdDsa, default);
        Assert.Equal(EdDsaAlgorithms.EdDsa, key.Algorithm);
        Assert.IsType<EdDsaSecurityKey>(key.PrivateKey);
        Assert.Equal(PrivateKeyStatus.DoesNotExist, key.PublicKey.PrivateKeyStatus);

        var record = Assert.Single(await store.Keys.ListAsync(default), k => k.Algorithm == EdDsaAlgorithms.EdDsa);
        Assert.Equal(key.Kid, record.Kid);
        // Stored sealed: neither the PKCS#8 header nor the public key appears in the clear.
        Assert.Equal(-1, record.ProtectedPrivateKey.AsSpan().IndexOf(Convert.FromHexString("302e020100300506032b6570")));
        Assert.Equal(-1, record.ProtectedPrivateKey.AsSpan().IndexOf(((EdDsaSecurityKey)key.PublicKey).ExportRawPublicKey()));

        // Another node with the same master key: the same current key, and it verifies what the first one signed.
        var node2 = new KeyRing(store.Keys, new SecretProtector(masterKey), new TesseraOptions(), time);
        var seen = await node2.GetCurrentAsync(EdDsaAlgorithms.EdDsa, default);
        Assert.Equal(key.Kid, seen.Kid);
        var token = Sign(key);
        Assert.Equal("EdDSA", new JsonWebToken(token).Alg);
        Assert.True(await VerifiesAsync(token, await node2.GetPublishedAsync(default)));
        Assert.True(await VerifiesAsync(Sign(seen), await node1.GetPublishedAsync(default)));

        // A node with another master key cannot use it, and says why.
        var stranger = new KeyRing(store.Keys, new SecretProtector(RandomNumberGenerator.GetBytes(32)), new TesseraOptions(), time);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(async () => await stranger.GetPublishedAsync(default));
        Assert.Contains("MasterKey", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sqlite_StoresEdDsaKeysEncrypted_AndSharesThemBetweenNodes()
    {
        var dir = Directory.CreateTempSubdirectory("tessera-eddsa-");
        try
        {
            await using var store = new SqliteStore(new SqliteStoreOptions { Path = Path.Combine(dir.FullName, "tessera.db") });
            await store.MigrateAsync(default);
            await AnEdDsaKey_IsStoredEncrypted_AndEveryNodeWithTheMasterKeySignsWithIt(store);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Postgres_StoresEdDsaKeysEncrypted_AndSharesThemBetweenNodes()
    {
        await using var database = await PostgresTestDatabase.CreateAsync();
        await using var store = new PostgresStore(database.ConnectionString);
        await store.MigrateAsync(default);
        await AnEdDsaKey_IsStoredEncrypted_AndEveryNodeWithTheMasterKeySignsWithIt(store);
    }

    [Fact]
    public async Task EdDsaKeys_AreAnnouncedActivatedAndRetired_OnTheScheduleOfTheOtherAlgorithms()
    {
        var dir = Directory.CreateTempSubdirectory("tessera-eddsa-");
        try
        {
            await using var store = new SqliteStore(new SqliteStoreOptions { Path = Path.Combine(dir.FullName, "tessera.db") });
            await store.MigrateAsync(default);
            var ring = Ring(store, RandomNumberGenerator.GetBytes(32));
            await ring.EnsureKeyAsync(default);
            var first = await ring.GetCurrentAsync(EdDsaAlgorithms.EdDsa, default);
            var es256 = await ring.GetCurrentAsync(SecurityAlgorithms.EcdsaSha256, default);
            async Task<List<string>> PublishedEdKids() =>
                (await ring.GetPublishedAsync(default)).Where(k => k.Algorithm == EdDsaAlgorithms.EdDsa).Select(k => k.Kid).ToList();
            Assert.Equal([first.Kid], await PublishedEdKids());

            // 77 days in (90-day lifetime, 14-day announcement): the next EdDSA key is published, not yet signing.
            _time.Advance(TimeSpan.FromDays(77));
            await ring.EnsureKeyAsync(default);
            var announced = await PublishedEdKids();
            Assert.Equal(2, announced.Count);
            var next = announced.Single(k => k != first.Kid);
            Assert.Equal(first.Kid, (await ring.GetCurrentAsync(EdDsaAlgorithms.EdDsa, default)).Kid);
            var lastOfFirst = Sign(await ring.GetCurrentAsync(EdDsaAlgorithms.EdDsa, default));

            // At day 90 it takes over; the first key's tokens still verify while it stays published.
            _time.Advance(TimeSpan.FromDays(13) + TimeSpan.FromSeconds(1));
            var current = await ring.GetCurrentAsync(EdDsaAlgorithms.EdDsa, default);
            Assert.Equal(next, current.Kid);
            Assert.True(await VerifiesAsync(lastOfFirst, await ring.GetPublishedAsync(default)));
            Assert.True(await VerifiesAsync(Sign(current), await ring.GetPublishedAsync(default)));

            // After the retention period (1 day) the first key is gone from what is published.
            _time.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
            Assert.Equal([next], await PublishedEdKids());
            Assert.False(await VerifiesAsync(lastOfFirst, await ring.GetPublishedAsync(default)));

            // An immediate rotation of EdDSA leaves the other algorithms' keys alone.
            var esBefore = (await ring.GetCurrentAsync(SecurityAlgorithms.EcdsaSha256, default)).Kid;
            var rotated = await ring.RotateNowAsync(default, EdDsaAlgorithms.EdDsa);
            _time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(rotated.Kid, (await ring.GetCurrentAsync(EdDsaAlgorithms.EdDsa, default)).Kid);
            Assert.Equal(esBefore, (await ring.GetCurrentAsync(SecurityAlgorithms.EcdsaSha256, default)).Kid);
            Assert.Contains(next, await PublishedEdKids());
            Assert.NotEqual(es256.Kid, esBefore);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
