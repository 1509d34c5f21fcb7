using Tessera.Core.Sessions;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Postgres;

public sealed partial class PostgresStore : IRevocationFeedStore
{
    public IRevocationFeedStore Feed => this;

    // A client's watermark has no user. The column is NOT NULL (it predates client watermarks), so "no user" is stored
    // as the empty string, which no user id can be.
    private const string NoUser = "";

    private static string? UserOf(string stored) => stored.Length == 0 ? null : stored;

    async Task<long> IRevocationFeedStore.AppendAsync(RevocationEvent e, CancellationToken ct)
    {
        // Receivers read "everything after the id I acknowledged", so ids must become visible in order. Identity
        // values from concurrent transactions can commit out of order (id 7 visible before id 6, and a reader that
        // moved past 7 would never see 6); taking a transaction-scoped lock before the id is drawn serialises the
        // appends, and the lock is released only after the commit is visible. Revocations are rare, so this is cheap.
        await using var c = await _db.OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"SELECT pg_advisory_xact_lock({PostgresSchema.FeedAppendLock})";
        await cmd.ExecuteNonQueryAsync(ct);
        cmd.CommandText =
            "INSERT INTO revocation_events (at, user_id, session_id, client_id, revoked_before, reason) VALUES (@at, @u, @s, @c, @rb, @r) RETURNING id";
        var p = cmd.Parameters;
        p.Time("at", e.At); p.Text("u", e.UserId ?? NoUser); p.Text("s", e.SessionId); p.Text("c", e.ClientId);
        p.Time("rb", e.RevokedBefore); p.Text("r", e.Reason);
        var id = (long)(await cmd.ExecuteScalarAsync(ct))!;
        await tx.CommitAsync(ct);
        return id;
    }

    async Task<IReadOnlyList<RevocationEvent>> IRevocationFeedStore.ReadAfterAsync(long afterId, int limit, CancellationToken ct) => await QueryAsync(
        "SELECT id, at, user_id, session_id, client_id, revoked_before, reason FROM revocation_events WHERE id > @after ORDER BY id LIMIT @n",
        p => { p.Bigint("after", afterId); p.Int("n", limit); },
        r => new RevocationEvent
        {
            Id = r.GetInt64(0), At = At(r.GetInt64(1)), UserId = UserOf(r.GetString(2)), SessionId = Str(r, 3), ClientId = Str(r, 4),
            RevokedBefore = Time(r, 5), Reason = r.GetString(6),
        }, ct);

    async Task<long> IRevocationFeedStore.GetCursorAsync(string receiverId, CancellationToken ct) =>
        (await QueryAsync("SELECT acked_id FROM feed_cursors WHERE receiver_id = @r", p => p.Text("r", receiverId), r => r.GetInt64(0), ct)).FirstOrDefault();

    Task IRevocationFeedStore.AckAsync(string receiverId, long upToId, CancellationToken ct) => ExecuteAsync(
        """
        INSERT INTO feed_cursors (receiver_id, acked_id) VALUES (@r, @id)
        ON CONFLICT (receiver_id) DO UPDATE SET acked_id = GREATEST(feed_cursors.acked_id, excluded.acked_id)
        """,
        p => { p.Text("r", receiverId); p.Bigint("id", upToId); }, ct);

    Task<int> IRevocationFeedStore.PruneAsync(DateTimeOffset olderThan, int batchSize, CancellationToken ct) => ExecuteAsync(
        """
        DELETE FROM revocation_events
        WHERE id IN (SELECT id FROM revocation_events WHERE at < @old ORDER BY id LIMIT @n FOR UPDATE SKIP LOCKED)
          AND at < @old
        """,
        p => { p.Time("old", olderThan); p.Int("n", batchSize); }, ct);
}
