using System.Collections.Concurrent;

namespace Tessera.ResourceServer;

/// <summary>
/// What the revocation feed said, for as long as it matters: revoked session ids, and per user a "revoked before"
/// watermark (unix seconds). Each entry is dropped once every token it could void has expired (the longest access-token
/// lifetime plus the clock skew after it arrived), so memory is bounded by the revocations of that window, not by tokens.
/// Lookups are lock-free; only the feed poller writes.
/// </summary>
internal sealed class RevocationState(TimeProvider time)
{
    internal readonly record struct Watermark(long RevokedBefore, long DropAfterMs);

    /// <summary>Pruning walks the whole set, so it runs at most this often (the poller asks after every poll).</summary>
    private const long PruneEveryMs = 1000;

    // Value: when the entry may go (unix ms). No side index: one entry per revocation is all the memory there is.
    private readonly ConcurrentDictionary<string, long> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Watermark> _users = new(StringComparer.Ordinal);
    private readonly Lock _writer = new();
    private long _nextPruneMs;
    private long _lastSyncMs;

    public int SessionCount => _sessions.Count;

    public int UserCount => _users.Count;

    /// <summary>When the feed last answered (null before the first poll succeeded).</summary>
    public DateTimeOffset? LastSync => Volatile.Read(ref _lastSyncMs) is var ms and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    /// <summary>
    /// True when the token's session was revoked, or its user's watermark is at or after its <c>iat</c>. Both are whole
    /// seconds, so a token issued in the same second as a "revoke everything before now" is refused: of the two possible
    /// mistakes (a stolen token accepted, a fresh token refused for under a second) this one is the safe one.
    /// </summary>
    public bool IsRevoked(string? sessionId, string? subject, long issuedAt) =>
        (sessionId is not null && _sessions.ContainsKey(sessionId))
        || (subject is not null && _users.TryGetValue(subject, out var w) && issuedAt <= w.RevokedBefore);

    public void RevokeSession(string sessionId, TimeSpan window)
    {
        var dropAfter = time.GetUtcNow().Add(window).ToUnixTimeMilliseconds();
        lock (_writer)
        {
            // A session revoked again stays until the later window ends.
            _sessions[sessionId] = _sessions.TryGetValue(sessionId, out var old) ? Math.Max(old, dropAfter) : dropAfter;
        }
    }

    public void RevokeBefore(string subject, long revokedBefore, TimeSpan window)
    {
        var dropAfter = time.GetUtcNow().Add(window).ToUnixTimeMilliseconds();
        lock (_writer)
        {
            _users[subject] = _users.TryGetValue(subject, out var old)
                ? new Watermark(Math.Max(old.RevokedBefore, revokedBefore), Math.Max(old.DropAfterMs, dropAfter))
                : new Watermark(revokedBefore, dropAfter);
        }
    }

    /// <summary>Drops what can no longer matter (at most once a second unless <paramref name="force"/>); returns how many entries went.</summary>
    public int Prune(bool force = false)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var dropped = 0;
        lock (_writer)
        {
            if (!force && now < _nextPruneMs) return 0;
            _nextPruneMs = now + PruneEveryMs;
            foreach (var (sid, dropAfter) in _sessions)
            {
                if (dropAfter <= now && _sessions.TryRemove(KeyValuePair.Create(sid, dropAfter))) dropped++;
            }
            foreach (var (sub, mark) in _users)
            {
                if (mark.DropAfterMs <= now && _users.TryRemove(KeyValuePair.Create(sub, mark))) dropped++;
            }
        }
        return dropped;
    }

    public void MarkSynced() => Volatile.Write(ref _lastSyncMs, time.GetUtcNow().ToUnixTimeMilliseconds());
}
