using System.Collections.Concurrent;
using Tessera.Core.Clients;

namespace Tessera.Storage.Sqlite;

/// <summary>
/// Clients as last read, so a token request does not open a read transaction just to find its client (on the
/// 2-core benchmark machine that read was the most expensive statement of a client_credentials request).
/// <para>
/// When it is fresh:
/// <list type="bullet">
/// <item>A change made through this store empties it before the change is acknowledged to the caller, so this
/// process never reads its own change stale.</item>
/// <item>A change made by another process on the same file (the <c>tessera clients</c> CLI, a second store) bumps a
/// counter kept by triggers in the database (migration 5). A poll reads that counter every
/// <see cref="PollInterval"/>, and a remembered client is used only while the poll that last completed began less
/// than <see cref="MaxStaleness"/> ago. Such a change is therefore seen within <see cref="MaxStaleness"/>; if the
/// poll stalls, every lookup goes to the database.</item>
/// </list>
/// </para>
/// Entries carry the generation at which their read began, and any invalidation after that makes them unusable.
/// This store's own changes are bracketed by <see cref="BeginChange"/> and <see cref="EndChange"/>: a read that
/// begins while one is in flight is not remembered at all (it may see the row before or after the commit), and one
/// that began before it is outdated by it. So every usable entry comes from a read made while no change of this
/// store was under way, and two reads can never leave an older client in the cache after a newer one. Unknown ids are
/// not remembered.
/// </summary>
internal sealed class SqliteClientCache(TimeProvider time, int capacity = 4096)
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);
    public static readonly TimeSpan MaxStaleness = TimeSpan.FromMilliseconds(250);

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _generation;
    private long _lastCounter = long.MinValue;
    private long _lastPollBegan = long.MinValue;
    private long _changesInFlight;

    private sealed record Entry(long Generation, Client Client);

    private long Generation => Interlocked.Read(ref _generation);

    /// <summary>What to pass to <see cref="Remember"/> for a read that begins now; -1 while a change is in flight.</summary>
    public long BeginRead()
    {
        var generation = Generation;
        return Interlocked.Read(ref _changesInFlight) > 0 ? -1 : generation;
    }

    /// <summary>Before a change through this store is written: nothing read from now until <see cref="EndChange"/> is remembered.</summary>
    public void BeginChange()
    {
        Interlocked.Increment(ref _changesInFlight);
        Invalidate();
    }

    /// <summary>After the change was committed (or failed), before its caller hears back.</summary>
    public void EndChange()
    {
        Invalidate();
        Interlocked.Decrement(ref _changesInFlight);
    }

    public Client? Find(string clientId)
    {
        var began = Interlocked.Read(ref _lastPollBegan);
        if (began == long.MinValue || time.GetElapsedTime(began) >= MaxStaleness) return null;
        return _entries.TryGetValue(clientId, out var e) && e.Generation == Generation ? e.Client : null;
    }

    public void Remember(string clientId, Client client, long readTicket)
    {
        if (readTicket < 0 || readTicket != Generation) return;
        // Bounded: a full table starts over rather than growing with every id ever read.
        if (_entries.Count >= capacity) _entries.Clear();
        _entries[clientId] = new Entry(readTicket, client);
    }

    /// <summary>Every remembered client becomes unusable.</summary>
    public void Invalidate() => Interlocked.Increment(ref _generation);

    /// <summary>Marks the start of a poll; pass the result to <see cref="Observed"/> with the counter it read.</summary>
    public long PollBegins() => time.GetTimestamp();

    public void Observed(long pollBegan, long counter)
    {
        lock (_entries)
        {
            // The first poll invalidates too: what was remembered before it may predate a change it now sees.
            if (counter != _lastCounter)
            {
                Invalidate();
                _lastCounter = counter;
            }
            if (pollBegan > Interlocked.Read(ref _lastPollBegan)) Interlocked.Exchange(ref _lastPollBegan, pollBegan);
        }
    }
}
