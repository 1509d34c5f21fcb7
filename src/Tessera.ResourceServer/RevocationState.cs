using System.Collections.Concurrent;

namespace Tessera.ResourceServer;

/// <summary>
/// What the revocation feed said, for as long as it matters: revoked session ids, and per user and per client a
/// "revoked before" watermark (unix seconds). Each entry is dropped once every token it could void has expired (the
/// longest access-token lifetime plus the clock skew after it arrived), so memory is bounded by the revocations of that
/// window, not by tokens. Lookups are lock-free; only the feed poller writes.
/// </summary>
internal sealed class RevocationState(TimeProvider time)
{
    internal readonly record struct Watermark(long RevokedBefore, long DropAfterMs);

    /// <summary>Pruning walks the whole set, so it runs at most this often (the poller asks after every poll).</summary>
    private const long PruneEveryMs = 1000;

    // Value: when the entry may go (unix ms). No side index: one entry per revocation is all the memory there is.
    private readonly ConcurrentDictionary<string, long> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Watermark> _users = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Watermark> _clients = new(StringComparer.Ordinal);
    private readonly Lock _writer = new();
    private long _nextPruneMs;
    private long _lastSyncMs;

    public int SessionCount => _sessions.Count;

    public int UserCount => _users.Count;

    public int ClientCount => _clients.Count;

    /// <summary>When the feed last answered (null before the first poll succeeded).</summary>
    public DateTimeOffset? LastSync => Volatile.Read(ref _lastSyncMs) is var ms and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    /// <summary>
    /// True when the token's session was revoked, or its <c>iat</c> is before the watermark of its user (<c>sub</c>) or
    /// of its client (<c>client_id</c>). Both are whole seconds and "before" is strict, as the feed defines
    /// <c>revoked_before</c>: Tessera picks the second. After "sign out everywhere" it is the sign-out's own second, so a
    /// sign-in right after it is not refused, and the old sessions' tokens of that second are revoked by their own
    /// <c>sid</c> events; after a change that ends no session (a lock, narrower permissions, a new client secret) it is
    /// the second after, so nothing issued before the change gets through.
    /// </summary>
    public bool IsRevoked(string? sessionId, string? subject, string? clientId, long issuedAt) =>
        (sessionId is not null && _sessions.ContainsKey(sessionId))
        || (subject is not null && _users.TryGetValue(subject, out var w) && issuedAt < w.RevokedBefore)
        || (clientId is not null && _clients.TryGetValue(clientId, out var c) && issuedAt < c.RevokedBefore);

    public void RevokeSession(string sessionId, TimeSpan window)
    {
        var dropAfter = time.GetUtcNow().Add(window).ToUnixTimeMilliseconds();
        lock (_writer)
        {
            // A session revoked again stays until the later window ends.
            _sessions[sessionId] = _sessions.TryGetValue(sessionId, out var old) ? Math.Max(old, dropAfter) : dropAfter;
        }
    }

    public void RevokeBefore(string subject, long revokedBefore, TimeSpan window) => Raise(_users, subject, revokedBefore, window);

    public void RevokeClientBefore(string clientId, long revokedBefore, TimeSpan window) => Raise(_clients, clientId, revokedBefore, window);

    /// <summary>A watermark only goes up; it stays until the later window ends.</summary>
    private void Raise(ConcurrentDictionary<string, Watermark> marks, string key, long revokedBefore, TimeSpan window)
    {
        var dropAfter = time.GetUtcNow().Add(window).ToUnixTimeMilliseconds();
        lock (_writer)
        {
            marks[key] = marks.TryGetValue(key, out var old)
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
            foreach (var marks in (ReadOnlySpan<ConcurrentDictionary<string, Watermark>>)[_users, _clients])
            {
                foreach (var (key, mark) in marks)
                {
                    if (mark.DropAfterMs <= now && marks.TryRemove(KeyValuePair.Create(key, mark))) dropped++;
                }
            }
        }
        return dropped;
    }

    public void MarkSynced() => Volatile.Write(ref _lastSyncMs, time.GetUtcNow().ToUnixTimeMilliseconds());
}
