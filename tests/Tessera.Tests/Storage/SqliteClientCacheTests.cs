using Microsoft.Extensions.Time.Testing;
using Tessera.Core.Clients;
using Tessera.Storage.Sqlite;
using static Tessera.Tests.Storage.StoreSamples;

namespace Tessera.Tests.Storage;

/// <summary>
/// The SQLite store's client cache on its own, on a fake clock: when a remembered client may be served. Polls are
/// simulated by <see cref="SqliteClientCache.PollBegins"/> and <see cref="SqliteClientCache.Observed"/> with a
/// counter value chosen by the test.
/// </summary>
public sealed class SqliteClientCacheTests
{
    private readonly FakeTimeProvider _time = new(T0);
    private readonly SqliteClientCache _cache;
    private readonly Client _web = NewClient("web");
    private readonly Client _cli = NewClient("cli");

    public SqliteClientCacheTests() => _cache = new SqliteClientCache(_time);

    /// <summary>A poll that begins now and reads <paramref name="counter"/>.</summary>
    private void Poll(long counter) => _cache.Observed(_cache.PollBegins(), counter);

    /// <summary>A read that begins and ends now.</summary>
    private void Read(Client client) => _cache.Remember(client.Id, client, _cache.BeginRead());

    [Fact]
    public void Nothing_read_while_a_change_of_this_store_is_in_flight_is_remembered_and_a_read_after_it_is()
    {
        Poll(3);
        Read(_web);
        var before = _web with { DisplayName = "before" };
        var after = _web with { DisplayName = "after" };

        var beganBefore = _cache.BeginRead();
        _cache.BeginChange();
        Assert.Null(_cache.Find("web"));
        // Reads during the change may see the row before or after its commit: neither is kept, in either order.
        var duringA = _cache.BeginRead();
        var duringB = _cache.BeginRead();
        _cache.Remember("web", after, duringB);
        _cache.Remember("web", before, duringA);
        _cache.Remember("web", before, beganBefore);
        Assert.Null(_cache.Find("web"));
        _cache.EndChange();
        _cache.Remember("web", before, duringA);
        Assert.Null(_cache.Find("web"));

        Read(after);
        Assert.Same(after, _cache.Find("web"));
    }

    [Fact]
    public void Nothing_is_served_before_the_first_poll()
    {
        Read(_web);

        Assert.Null(_cache.Find("web"));
    }

    [Fact]
    public void A_client_read_after_a_poll_is_served_and_an_unknown_one_is_not()
    {
        Poll(3);
        Read(_web);

        Assert.Same(_web, _cache.Find("web"));
        Assert.Null(_cache.Find("cli"));
    }

    [Fact]
    public void Nothing_is_served_once_the_last_poll_began_the_staleness_bound_ago_until_the_next_poll()
    {
        Poll(3);
        Read(_web);
        _time.Advance(SqliteClientCache.PollInterval);
        Assert.Same(_web, _cache.Find("web"));

        _time.Advance(SqliteClientCache.MaxStaleness - SqliteClientCache.PollInterval);

        Assert.Null(_cache.Find("web"));
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(_cache.Find("web"));
        // A poll that sees the counter unchanged makes the remembered client usable again.
        Poll(3);
        Assert.Same(_web, _cache.Find("web"));
    }

    [Fact]
    public void A_poll_that_completes_late_does_not_move_the_freshness_back()
    {
        var early = _cache.PollBegins();
        _time.Advance(TimeSpan.FromMilliseconds(100));
        Poll(3);
        Read(_web);

        // The poll that began earlier completes only now, with the same counter.
        _cache.Observed(early, 3);
        _time.Advance(SqliteClientCache.MaxStaleness - TimeSpan.FromMilliseconds(50));

        // 200 ms after the earlier poll, 150 ms after the later one: the later one counts.
        Assert.Same(_web, _cache.Find("web"));
    }

    [Fact]
    public void A_read_that_began_before_an_invalidation_is_not_remembered()
    {
        Poll(3);
        var began = _cache.BeginRead();

        _cache.Invalidate();
        _cache.Remember("web", _web, began);

        Assert.Null(_cache.Find("web"));
        Poll(3);
        Assert.Null(_cache.Find("web"));
        // A read that begins after the invalidation is remembered.
        Read(_web);
        Assert.Same(_web, _cache.Find("web"));
    }

    [Fact]
    public void An_invalidation_makes_every_remembered_client_unusable()
    {
        Poll(3);
        Read(_web);
        Read(_cli);

        _cache.Invalidate();

        Assert.Null(_cache.Find("web"));
        Assert.Null(_cache.Find("cli"));
    }

    [Fact]
    public void A_poll_that_sees_the_counter_changed_invalidates_and_one_that_sees_it_unchanged_does_not()
    {
        Poll(3);
        Read(_web);
        Poll(3);
        Assert.Same(_web, _cache.Find("web"));

        Poll(4);

        Assert.Null(_cache.Find("web"));
        var renamed = _web with { DisplayName = "Renamed" };
        Read(renamed);
        Poll(4);
        Assert.Same(renamed, _cache.Find("web"));
    }

    [Fact]
    public void A_poll_that_sees_the_counter_changed_drops_a_read_that_began_before_it()
    {
        Poll(3);
        var began = _cache.BeginRead();

        Poll(4);
        _cache.Remember("web", _web, began);

        Assert.Null(_cache.Find("web"));
    }

    [Fact]
    public void The_first_poll_invalidates_what_was_remembered_before_it()
    {
        var beganBeforeThePoll = _cache.BeginRead();
        Read(_cli);

        Poll(0);
        _cache.Remember("web", _web, beganBeforeThePoll);

        Assert.Null(_cache.Find("cli"));
        Assert.Null(_cache.Find("web"));
    }

    [Fact]
    public void A_full_cache_starts_over_rather_than_growing()
    {
        var cache = new SqliteClientCache(_time, capacity: 2);
        cache.Observed(cache.PollBegins(), 3);
        var third = NewClient("third");

        foreach (var c in new[] { _web, _cli, third }) cache.Remember(c.Id, c, cache.BeginRead());

        Assert.Null(cache.Find("web"));
        Assert.Null(cache.Find("cli"));
        Assert.Same(third, cache.Find("third"));
    }
}
