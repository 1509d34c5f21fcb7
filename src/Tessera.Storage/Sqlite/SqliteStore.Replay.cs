using Tessera.Core.Dpop;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Sqlite;

public sealed partial class SqliteStore : IReplayCache
{
    async Task<bool> IReplayCache.TryRememberAsync(byte[] key, DateTimeOffset now, DateTimeOffset expiresAt, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        // New key: inserted. Known key whose entry expired: taken over. Known live key: no row changes, a replay.
        var cmd = w.Command(
            """
            INSERT INTO replay_cache (key, expires_at) VALUES ($k, $exp)
            ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay_cache.expires_at < $now
            """);
        cmd.Parameters.AddWithValue("$k", key); cmd.Parameters.AddWithValue("$exp", Ms(expiresAt));
        cmd.Parameters.AddWithValue("$now", Ms(now));
        return cmd.ExecuteNonQuery() == 1;
    });
}
