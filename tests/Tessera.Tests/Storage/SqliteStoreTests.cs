using Tessera.Core.Storage;
using Tessera.Storage.Sqlite;

namespace Tessera.Tests.Storage;

/// <summary>The store specification against the embedded SQLite store: one temporary database file per test.</summary>
public sealed class SqliteStoreTests : StoreSpecification
{
    private DirectoryInfo? _dir;

    protected override async Task<ITesseraStore> CreateStoreAsync()
    {
        _dir = Directory.CreateTempSubdirectory("tessera-sqlite-");
        var store = new SqliteStore(new SqliteStoreOptions { Path = Path.Combine(_dir.FullName, "tessera.db") });
        try
        {
            await store.MigrateAsync(CancellationToken.None);
            return store;
        }
        catch
        {
            await store.DisposeAsync();
            _dir.Delete(recursive: true);
            throw;
        }
    }

    protected override async Task DestroyStoreAsync(ITesseraStore store)
    {
        // Disposing drains the writer and clears this store's connection pool, so the files (db, -wal, -shm) can go.
        await base.DestroyStoreAsync(store);
        _dir?.Delete(recursive: true);
    }
}
