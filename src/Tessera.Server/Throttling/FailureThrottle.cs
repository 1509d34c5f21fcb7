using System.Collections.Concurrent;
using Tessera.Server.Hosting;

namespace Tessera.Server.Throttling;

/// <summary>What a throttle says before a request's credentials are checked.</summary>
/// <param name="FirstRefusal">True for the first refused attempt of this pause only (the one worth an audit event).</param>
public readonly record struct ThrottleVerdict(bool Refused, DateTimeOffset Until, bool Lockout, bool FirstRefusal);

/// <summary>What counting one failure did: the count so far, and the pause it started (null: none).</summary>
public readonly record struct FailureOutcome(int Failures, DateTimeOffset? PausedUntil, bool Lockout);

/// <summary>
/// Failure counts per key in this process, with the growing pauses of a <see cref="ThrottlePolicy"/>. Thread-safe
/// (compare-and-swap on immutable states) and bounded: at most <c>capacity</c> keys; counts are forgotten after the
/// policy's quiet time, and when the table is full the oldest keys not in a pause are dropped first.
/// <para>
/// The success path costs one volatile read while nothing is tracked, and one dictionary lookup otherwise: no
/// database, no lock, no allocation.
/// </para>
/// </summary>
public sealed class FailureThrottle<TKey> where TKey : notnull
{
    private sealed record State(int Failures, DateTimeOffset LastFailure, DateTimeOffset PausedUntil, bool Lockout, bool RefusalSeen);

    private static readonly TimeSpan SweepEvery = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<TKey, State> _entries = new();
    private readonly ThrottlePolicy _policy;
    private readonly int _capacity;
    private readonly TimeProvider _time;
    private readonly Action<int>? _onEvicted;
    private readonly Lock _maintenance = new();
    private int _count;
    private long _nextSweepTicks;

    /// <param name="onEvicted">Told how many keys were dropped to make room while they still counted (the table was full).</param>
    public FailureThrottle(ThrottlePolicy policy, int capacity, TimeProvider time, Action<int>? onEvicted = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 10);
        _policy = policy;
        _capacity = capacity;
        _time = time;
        _onEvicted = onEvicted;
    }

    /// <summary>Keys tracked now (expired ones included until the next sweep).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Nothing tracked: every check would allow. Lets callers skip even building a key.</summary>
    public bool IsEmpty => Volatile.Read(ref _count) == 0;

    public ThrottleVerdict Check(TKey key)
    {
        if (IsEmpty || !_entries.TryGetValue(key, out var state)) return default;
        var now = _time.GetUtcNow();
        if (state.PausedUntil <= now) return default;
        var first = !state.RefusalSeen && _entries.TryUpdate(key, state with { RefusalSeen = true }, state);
        return new ThrottleVerdict(true, state.PausedUntil, state.Lockout, first);
    }

    public FailureOutcome RecordFailure(TKey key)
    {
        if (!_policy.Enabled) return default;
        var now = _time.GetUtcNow();
        SweepIfDue(now);
        while (true)
        {
            if (_entries.TryGetValue(key, out var current))
            {
                var (next, started) = Counted(IsExpired(current, now) ? null : current, now);
                if (_entries.TryUpdate(key, next, current)) return Outcome(next, started);
                continue;
            }
            MakeRoom(now);
            var (first, firstStarted) = Counted(null, now);
            if (_entries.TryAdd(key, first))
            {
                Interlocked.Increment(ref _count);
                return Outcome(first, firstStarted);
            }
        }
    }

    /// <summary>Clears a key's count (a success that proves the caller holds the credential).</summary>
    public void Forget(TKey key)
    {
        if (!IsEmpty && _entries.TryRemove(key, out _)) Interlocked.Decrement(ref _count);
    }

    private static FailureOutcome Outcome(State state, bool started) =>
        new(state.Failures, started ? state.PausedUntil : null, started && state.Lockout);

    private (State Next, bool StartedPause) Counted(State? previous, DateTimeOffset now)
    {
        var failures = previous is null ? 1 : Math.Min(previous.Failures, int.MaxValue - 1) + 1;
        var (pause, lockout) = _policy.PauseFor(failures);
        // A failure that raced past a check while another one started a longer pause never shortens that pause.
        if (pause is null || (previous is not null && previous.PausedUntil >= now + pause.Value))
            return (new State(failures, now, previous?.PausedUntil ?? DateTimeOffset.MinValue, previous?.Lockout ?? false, previous?.RefusalSeen ?? false), false);
        return (new State(failures, now, now + pause.Value, lockout, RefusalSeen: false), true);
    }

    private bool IsExpired(State state, DateTimeOffset now) =>
        now - (state.PausedUntil > state.LastFailure ? state.PausedUntil : state.LastFailure) >= _policy.ForgetAfter;

    private void SweepIfDue(DateTimeOffset now)
    {
        var due = Interlocked.Read(ref _nextSweepTicks);
        if (now.UtcTicks < due || Interlocked.CompareExchange(ref _nextSweepTicks, now.UtcTicks + SweepEvery.Ticks, due) != due) return;
        if (IsEmpty) return;
        lock (_maintenance) Sweep(now);
    }

    private void Sweep(DateTimeOffset now)
    {
        foreach (var entry in _entries)
            if (IsExpired(entry.Value, now) && _entries.TryRemove(entry))
                Interlocked.Decrement(ref _count);
    }

    /// <summary>
    /// Full: drop expired keys, and if that is not enough, down to 90 % of the capacity the keys that are not in a
    /// pause, oldest failure first (then the paused ones, soonest free first). An attacker who fills the table with
    /// fresh addresses or client ids can make this node forget counts, never grow its memory.
    /// </summary>
    private void MakeRoom(DateTimeOffset now)
    {
        if (Volatile.Read(ref _count) < _capacity) return;
        lock (_maintenance)
        {
            if (Volatile.Read(ref _count) < _capacity) return;
            Sweep(now);
            var excess = Volatile.Read(ref _count) - (_capacity - _capacity / 10);
            if (excess <= 0) return;
            var evicted = 0;
            foreach (var entry in _entries.ToArray()
                .OrderBy(e => e.Value.PausedUntil > now)
                .ThenBy(e => e.Value.PausedUntil > now ? e.Value.PausedUntil : e.Value.LastFailure)
                .Take(excess))
            {
                if (!_entries.TryRemove(entry)) continue;
                Interlocked.Decrement(ref _count);
                evicted++;
            }
            if (evicted > 0) _onEvicted?.Invoke(evicted);
        }
    }
}
