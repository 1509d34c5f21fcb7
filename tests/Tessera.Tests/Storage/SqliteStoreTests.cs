using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
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

    private static readonly CancellationToken None = CancellationToken.None;

    private string DatabasePath => Path.Combine(_dir!.FullName, "tessera.db");

    // ---- reads through kept connections, remembered documents and remembered clients --------------------------------
    // (SqliteReaders, DocCache, SqliteClientCache)

    private async Task<SqliteStore> SecondStoreOnTheSameFileAsync()
    {
        var other = new SqliteStore(new SqliteStoreOptions { Path = Path.Combine(_dir!.FullName, "tessera.db") });
        await other.MigrateAsync(CancellationToken.None);
        return other;
    }

    /// <summary>
    /// A clock that stands still unless advanced, on which a store polls the clients change counter only when the test
    /// calls <see cref="SqliteStore.PollClientChanges"/>. The poll loop's timer never fires, even when the clock is
    /// advanced; and the loop's first round, which runs before any tick, fails: it takes the clock's first reading
    /// (nothing else reads this clock before a poll has completed), which is refused with the ObjectDisposedException
    /// the loop expects of a store being disposed. Nothing blocks a thread.
    /// </summary>
    private sealed class ExplicitPollsOnlyClock() : FakeTimeProvider(T0)
    {
        private int _readings;

        /// <summary>Set once the background loop's first round has failed: from then on it only waits for a tick.</summary>
        public TaskCompletionSource BackgroundPollRefused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override long GetTimestamp()
        {
            if (Interlocked.Increment(ref _readings) == 1)
            {
                BackgroundPollRefused.SetResult();
                throw new ObjectDisposedException(nameof(ExplicitPollsOnlyClock), "This test polls explicitly.");
            }
            return base.GetTimestamp();
        }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new NeverFires();

        private sealed class NeverFires : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    private sealed record ExplicitPollStore(SqliteStore Store, FakeTimeProvider Clock) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Store.DisposeAsync();
    }

    /// <summary>A second store on this test's file, on an <see cref="ExplicitPollsOnlyClock"/>, its background poll already spent.</summary>
    private async Task<ExplicitPollStore> StoreThatPollsOnlyWhenToldAsync()
    {
        var clock = new ExplicitPollsOnlyClock();
        var store = new SqliteStore(new SqliteStoreOptions { Path = DatabasePath, TimeProvider = clock });
        try
        {
            await store.MigrateAsync(None);
            await clock.BackgroundPollRefused.Task.WaitAsync(TimeSpan.FromSeconds(30));
            return new ExplicitPollStore(store, clock);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }

    [Fact]
    public async Task A_user_changed_by_another_store_is_read_fresh_at_once_and_a_client_as_soon_as_this_store_has_polled()
    {
        var sqlite = (SqliteStore)Store;
        await Store.Clients.SaveAsync(NewClient("web"), None);
        Assert.True(await Store.Users.CreateAsync(NewUser("u1", "alice"), None));
        // A poll first, so the client read next is remembered; and warm the kept statements and remembered documents.
        sqlite.PollClientChanges();
        var before = (await Store.Clients.FindAsync("web", None))!;
        var user = (await Store.Users.FindByIdAsync("u1", None))!;
        Assert.False(user.Disabled);

        await using (var other = await SecondStoreOnTheSameFileAsync())
        {
            await other.Clients.SaveAsync(before with { DisplayName = "Renamed", SecretHash = Hash() }, None);
            Assert.Equal(UserSaveOutcome.Saved, await other.Users.SaveAsync(user with { Disabled = true }, None));
        }

        // Users are never remembered: the change is read at once, poll or no poll.
        var changed = (await Store.Users.FindByIdAsync("u1", None))!;
        Assert.True(changed.Disabled);
        Assert.Equal(user.Version + 1, changed.Version);
        Assert.True((await Store.Users.FindByUsernameAsync("alice", None))!.Disabled);
        // A client once this store has read the change counter.
        sqlite.PollClientChanges();
        var after = (await Store.Clients.FindAsync("web", None))!;
        Assert.Equal("Renamed", after.DisplayName);
        Assert.NotEqual(before.SecretHash, after.SecretHash);
        // The copies read earlier are untouched: remembered documents are shared, never changed in place.
        Assert.False(user.Disabled);
        Assert.Equal("The web app", before.DisplayName);
    }

    [Fact]
    public async Task A_client_deleted_by_another_store_is_not_found_once_this_store_has_polled()
    {
        var sqlite = (SqliteStore)Store;
        await Store.Clients.SaveAsync(NewClient("web"), None);
        await Store.Clients.SaveAsync(NewClient("cli"), None);
        sqlite.PollClientChanges();
        Assert.NotNull(await Store.Clients.FindAsync("web", None));
        Assert.NotNull(await Store.Clients.FindAsync("cli", None));

        await using (var other = await SecondStoreOnTheSameFileAsync())
            Assert.True(await other.Clients.DeleteAsync("web", None));
        sqlite.PollClientChanges();

        Assert.Null(await Store.Clients.FindAsync("web", None));
        Assert.Equal("cli", (await Store.Clients.FindAsync("cli", None))!.Id);
        Assert.Equal("cli", Assert.Single(await Store.Clients.ListAsync(None)).Id);
    }

    [Fact]
    public async Task Admin_reads_see_another_stores_change_at_once_while_token_requests_may_use_the_remembered_client()
    {
        await using var mine = await StoreThatPollsOnlyWhenToldAsync();
        await mine.Store.Clients.SaveAsync(NewClient("web"), None);
        mine.Store.PollClientChanges();
        var before = (await mine.Store.Clients.FindAsync("web", None))!;

        await using (var other = await SecondStoreOnTheSameFileAsync())
            await other.Clients.SaveAsync(before with { DisplayName = "Renamed", SecretHash = Hash() }, None);

        // Read-modify-write (the admin API, the CLI) must never start from a remembered copy.
        var current = (await ((IClientStore)mine.Store).FindCurrentAsync("web", None))!;
        Assert.Equal("Renamed", current.DisplayName);
        Assert.NotEqual(before.SecretHash, current.SecretHash);
        Assert.Equal(SqliteClientCache.MaxStaleness, ((IClientStore)mine.Store).ChangeVisibilityDelay);
    }

    [Fact]
    public async Task A_client_changed_or_deleted_through_this_store_is_read_at_once_without_a_poll()
    {
        await using var mine = await StoreThatPollsOnlyWhenToldAsync();
        await mine.Store.Clients.SaveAsync(NewClient("web"), None);
        // The only poll of this test: from here on remembered clients are fresh, as the clock never moves.
        mine.Store.PollClientChanges();
        var first = (await mine.Store.Clients.FindAsync("web", None))!;

        await mine.Store.Clients.SaveAsync(first with { DisplayName = "Renamed", SecretHash = Hash() }, None);
        var renamed = (await mine.Store.Clients.FindAsync("web", None))!;
        Assert.Equal("Renamed", renamed.DisplayName);
        Assert.NotEqual(first.SecretHash, renamed.SecretHash);

        Assert.True(await mine.Store.Clients.DeleteAsync("web", None));
        Assert.Null(await mine.Store.Clients.FindAsync("web", None));

        await mine.Store.Clients.SaveAsync(NewClient("web") with { DisplayName = "Back again" }, None);
        Assert.Equal("Back again", (await mine.Store.Clients.FindAsync("web", None))!.DisplayName);
        Assert.Equal("The web app", first.DisplayName);
    }

    [Fact]
    public async Task A_client_changed_by_another_store_is_read_fresh_once_the_last_poll_is_as_old_as_the_staleness_bound()
    {
        await using var mine = await StoreThatPollsOnlyWhenToldAsync();
        await mine.Store.Clients.SaveAsync(NewClient("web"), None);
        mine.Store.PollClientChanges();
        var before = (await mine.Store.Clients.FindAsync("web", None))!;

        // The test's own store is the other store on the same file. Until the poll is MaxStaleness old the old
        // client may still be served; that is allowed, not promised, so it is not asserted.
        await Store.Clients.SaveAsync(before with { DisplayName = "Renamed" }, None);
        mine.Clock.Advance(SqliteClientCache.MaxStaleness);

        // No poll ran since (this store polls only when told), so the remembered client is no longer used.
        Assert.Equal("Renamed", (await mine.Store.Clients.FindAsync("web", None))!.DisplayName);

        // Again after a new poll, for a deletion.
        mine.Store.PollClientChanges();
        Assert.Equal("Renamed", (await mine.Store.Clients.FindAsync("web", None))!.DisplayName);
        Assert.True(await Store.Clients.DeleteAsync("web", None));
        mine.Clock.Advance(SqliteClientCache.MaxStaleness);
        Assert.Null(await mine.Store.Clients.FindAsync("web", None));
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
                // The store's reads complete synchronously; without a yield eight readers hold every pool thread
                // and the writes' continuations wait for the pool to grow.
                await Task.Yield();
            }
            return last;
        })));
        await writes;
        Assert.All(seen, v => Assert.InRange(v, 0, 50));
        Assert.Equal("v50", (await Store.Clients.FindAsync("web", ct))!.DisplayName);
    }

    // ---- WAL checkpoints on their own connection (SqliteCheckpointer) -----------------------------------------------

    /// <summary>Polls <paramref name="probe"/> until it holds, failing with <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    private static async Task<T> EventuallyAsync<T>(Func<T> probe, Func<T, bool> holds, string what, double seconds = 10)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (true)
        {
            var value = probe();
            if (holds(value)) return value;
            if (DateTime.UtcNow > deadline) Assert.Fail($"{what} within {seconds} s; last seen: {value}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task The_database_file_grows_while_the_store_is_open_as_the_log_is_copied_back_in_the_background()
    {
        var before = new FileInfo(DatabasePath).Length;

        // About 2 MB of rows and index entries, committed in a few group commits; all of it lands in the WAL first.
        await Task.WhenAll(Enumerable.Range(0, 3000).Select(_ => Store.Sessions.CreateAsync(NewSession(), None)));
        Assert.True(File.Exists(DatabasePath + "-wal"));

        // Nothing else copies the log back while the store is open: the writer's own automatic checkpoint is set far
        // above this, and no connection closes.
        var grown = await EventuallyAsync(() => new FileInfo(DatabasePath).Length, length => length >= before + 1024 * 1024,
            $"the database file did not grow by 1 MiB from {before} bytes with the store open (the WAL was not checkpointed)");
        Assert.True(grown > before);
        Assert.Equal(3000, await Store.Sessions.CountAsync(None));
    }

    [Fact]
    public async Task A_checkpoint_round_copies_every_frame_of_the_log_into_the_database()
    {
        await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Store.Sessions.CreateAsync(NewSession(), None)));
        var connectionString = new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString();
        await using var checkpointer = new SqliteCheckpointer(connectionString, TimeSpan.FromHours(1));

        // (-1, -1) means the store's own checkpointer was in the middle of a round: try again.
        var (log, checkpointed) = await EventuallyAsync(() => checkpointer.RunOnce(), round => round.Log >= 0,
            "a checkpoint round was busy every time");

        Assert.True(log > 0, $"the WAL holds {log} frames after 200 writes");
        Assert.Equal(log, checkpointed);
        Assert.Equal(200, await Store.Sessions.CountAsync(None));
    }
}
