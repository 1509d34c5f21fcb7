using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.DependencyInjection;
using Tessera.Core.Crypto;
using Tessera.Core.Storage;
using Tessera.Storage.Common;
using Tessera.Storage.Postgres;

namespace Tessera.Tests.Storage;

/// <summary>
/// The store specification against PostgreSQL: each test gets a database of its own on the server named by
/// <c>TESSERA_TEST_POSTGRES</c>, dropped afterwards. Without that variable every test fails with a message saying
/// to run ./test.sh; they are never skipped.
/// </summary>
public sealed class PostgresStoreTests : StoreSpecification
{
    private PostgresTestDatabase? _database;

    protected override async Task<ITesseraStore> CreateStoreAsync()
    {
        _database = await PostgresTestDatabase.CreateAsync();
        var store = new PostgresStore(_database.ConnectionString);
        try
        {
            await store.MigrateAsync(CancellationToken.None);
            return store;
        }
        catch
        {
            await store.DisposeAsync();
            await _database.DisposeAsync();
            _database = null;
            throw;
        }
    }

    protected override async Task DestroyStoreAsync(ITesseraStore store)
    {
        try
        {
            await base.DestroyStoreAsync(store);
        }
        finally
        {
            if (_database is not null) await _database.DisposeAsync();
        }
    }

    /// <summary>What TesseraApp registers for a postgres node: the key ring in the database, encrypted with the master key.</summary>
    private static ServiceProvider DataProtectionNode(PostgresStore store, byte[] masterKey)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(new SecretProtector(masterKey));
        services.AddSingleton(new PostgresXmlRepository(store));
        services.AddDataProtection().SetApplicationName("tessera");
        services.AddOptions<KeyManagementOptions>().Configure<PostgresXmlRepository>((o, repository) => o.XmlRepository = repository);
        services.AddOptions<KeyManagementOptions>().Configure<SecretProtector>((o, protector) => o.XmlEncryptor = new MasterKeyXmlEncryptor(protector));
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task Data_protection_keys_are_shared_through_the_database_created_once_and_encrypted_with_the_master_key()
    {
        var store = Assert.IsType<PostgresStore>(Store);
        var masterKey = RandomNumberGenerator.GetBytes(32);
        var nodes = Enumerable.Range(0, 4).Select(_ => DataProtectionNode(store, masterKey)).ToList();
        try
        {
            // Nodes starting together: the advisory lock lets exactly one of them create the first key.
            await Task.WhenAll(nodes.Select(n => Task.Run(() => n.GetRequiredService<PostgresXmlRepository>()
                .EnsureKeyAsync(n.GetRequiredService<IKeyManager>(), TimeSpan.FromDays(90), CancellationToken.None))));

            var sealedText = nodes[0].GetDataProtector("test").Protect("signed in as alice");
            Assert.All(nodes, n => Assert.Equal("signed in as alice", n.GetDataProtector("test").Unprotect(sealedText)));

            await using var probe = new Npgsql.NpgsqlConnection(_database!.ConnectionString);
            await probe.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("SELECT friendly_name, xml FROM dataprotection_keys", probe);
            var rows = new List<(string Name, string Xml)>();
            await using (var r = await cmd.ExecuteReaderAsync())
                while (await r.ReadAsync()) rows.Add((r.GetString(0), r.GetString(1)));
            var (name, xml) = Assert.Single(rows);
            Assert.StartsWith("key-", name, StringComparison.Ordinal);
            Assert.Contains("encryptedKey", xml, StringComparison.Ordinal);
            Assert.Contains(typeof(MasterKeyXmlDecryptor).FullName!, xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<masterKey", xml, StringComparison.Ordinal);

            // A node with another master key cannot read the key, so it cannot read the cookie either.
            await using var stranger = DataProtectionNode(store, RandomNumberGenerator.GetBytes(32));
            Assert.ThrowsAny<CryptographicException>(() => stranger.GetDataProtector("test").Unprotect(sealedText));
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }

    [Fact]
    public async Task Several_nodes_migrating_a_new_database_at_once_all_succeed_and_apply_each_migration_once()
    {
        await using var database = await PostgresTestDatabase.CreateAsync();
        var nodes = Enumerable.Range(0, 6).Select(_ => new PostgresStore(database.ConnectionString)).ToList();
        try
        {
            await Task.WhenAll(nodes.Select(n => Task.Run(() => n.MigrateAsync(CancellationToken.None))));

            await using var probe = new Npgsql.NpgsqlConnection(database.ConnectionString);
            await probe.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("SELECT array_agg(version ORDER BY version) FROM schema_version", probe);
            var versions = (int[])(await cmd.ExecuteScalarAsync())!;
            Assert.Equal(Enumerable.Range(1, nodes[0].SchemaVersion), versions);
            Assert.Equal(0, await nodes[0].Sessions.CountAsync(CancellationToken.None));
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }
}
