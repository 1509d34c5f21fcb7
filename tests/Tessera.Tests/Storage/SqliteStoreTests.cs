using Tessera.Core.Storage;
using Tessera.Storage.Sqlite;
using static Tessera.Tests.Storage.StoreSamples;

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

    // ---- reads through kept connections and remembered documents (SqliteReaders, DocCache) -----------------------

    private async Task<SqliteStore> SecondStoreOnTheSameFileAsync()
    {
        var other = new SqliteStore(new SqliteStoreOptions { Path = Path.Combine(_dir!.FullName, "tessera.db") });
        await other.MigrateAsync(CancellationToken.None);
        return other;
    }

    [Fact]
    public async Task A_client_or_user_changed_by_another_process_is_read_fresh_at_once()
    {
        var ct = CancellationToken.None;
        await Store.Clients.SaveAsync(NewClient("web"), ct);
        Assert.True(await Store.Users.CreateAsync(NewUser("u1", "alice"), ct));
        // Warm this store's kept statement and remembered documents.
        var before = (await Store.Clients.FindAsync("web", ct))!;
        var user = (await Store.Users.FindByIdAsync("u1", ct))!;
        Assert.False(user.Disabled);

        await using (var other = await SecondStoreOnTheSameFileAsync())
        {
            await other.Clients.SaveAsync(before with { DisplayName = "Renamed", SecretHash = Hash() }, ct);
            Assert.Equal(UserSaveOutcome.Saved, await other.Users.SaveAsync(user with { Disabled = true }, ct));
        }

        var after = (await Store.Clients.FindAsync("web", ct))!;
        Assert.Equal("Renamed", after.DisplayName);
        Assert.NotEqual(before.SecretHash, after.SecretHash);
        var changed = (await Store.Users.FindByIdAsync("u1", ct))!;
        Assert.True(changed.Disabled);
        Assert.Equal(user.Version + 1, changed.Version);
        Assert.True((await Store.Users.FindByUsernameAsync("alice", ct))!.Disabled);
        // The copy read earlier is untouched: remembered documents are shared, never changed in place.
        Assert.False(user.Disabled);
        Assert.Equal("The web app", before.DisplayName);
    }

    [Fact]
    public async Task Parallel_reads_during_writes_see_either_the_old_or_the_new_document()
    {
        var ct = CancellationToken.None;
        await Store.Clients.SaveAsync(NewClient("web") with { DisplayName = "v0" }, ct);
        var writes = Task.Run(async () =>
        {
            for (var i = 1; i <= 50; i++)
                await Store.Clients.SaveAsync(NewClient("web") with { DisplayName = "v" + i }, ct);
        });
        var seen = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            var last = -1;
            while (!writes.IsCompleted)
            {
                var name = (await Store.Clients.FindAsync("web", ct))!.DisplayName;
                var version = int.Parse(name[1..], System.Globalization.CultureInfo.InvariantCulture);
                // Each reader sees the versions in commit order, never an older one after a newer one.
                Assert.True(version >= last, $"read v{version} after v{last}");
                last = version;
            }
            return last;
        })));
        await writes;
        Assert.All(seen, v => Assert.InRange(v, 0, 50));
        Assert.Equal("v50", (await Store.Clients.FindAsync("web", ct))!.DisplayName);
    }
}
