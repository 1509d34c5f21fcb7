using Tessera.Core.Storage;
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
