using Tessera.Core.Dpop;

namespace Tessera.Storage.Postgres;

public sealed partial class PostgresStore : IReplayCache
{
    async Task<bool> IReplayCache.TryRememberAsync(byte[] key, DateTimeOffset now, DateTimeOffset expiresAt, CancellationToken ct) => await ExecuteAsync(
        // New key: inserted. Known key whose entry expired: taken over. Known live key: no row changes, a replay.
        // Two nodes inserting the same new key at once: the second waits on the first's unique-index entry, then
        // takes the conflict path and sees a live entry, so exactly one of them gets true.
        """
        INSERT INTO replay_cache (key, expires_at) VALUES (@k, @exp)
        ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay_cache.expires_at < @now
        """,
        p => { p.Bytes("k", key); p.Time("exp", expiresAt); p.Time("now", now); }, ct) == 1;
}
