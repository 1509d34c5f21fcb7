using Tessera.Core.Sessions;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Sqlite;

public sealed partial class SqliteStore : IRevocationFeedStore
{
    public IRevocationFeedStore Feed => this;

    // A client's watermark has no user. The column is NOT NULL (it predates client watermarks), so "no user" is stored
    // as the empty string, which no user id can be.
    private const string NoUser = "";

    private static string? UserOf(string stored) => stored.Length == 0 ? null : stored;

    Task<long> IRevocationFeedStore.AppendAsync(RevocationEvent e, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        var cmd = w.Command("INSERT INTO revocation_events (at, user_id, session_id, client_id, revoked_before, reason) VALUES ($at, $u, $s, $c, $rb, $r) RETURNING id");
        cmd.Parameters.AddWithValue("$at", Ms(e.At)); cmd.Parameters.AddWithValue("$u", e.UserId ?? NoUser); cmd.Parameters.AddWithValue("$s", Db(e.SessionId));
        cmd.Parameters.AddWithValue("$c", Db(e.ClientId)); cmd.Parameters.AddWithValue("$rb", Db(e.RevokedBefore is { } rb ? Ms(rb) : null));
        cmd.Parameters.AddWithValue("$r", e.Reason);
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    });

    async Task<IReadOnlyList<RevocationEvent>> IRevocationFeedStore.ReadAfterAsync(long afterId, int limit, CancellationToken ct) => await QueryAsync(
        "SELECT id, at, user_id, session_id, client_id, revoked_before, reason FROM revocation_events WHERE id > $after ORDER BY id LIMIT $n",
        p => { p.AddWithValue("$after", afterId); p.AddWithValue("$n", limit); },
        r => new RevocationEvent
        {
            Id = r.GetInt64(0), At = At(r.GetInt64(1)), UserId = UserOf(r.GetString(2)), SessionId = Str(r, 3), ClientId = Str(r, 4),
            RevokedBefore = Time(r, 5), Reason = r.GetString(6),
        }, ct);

    async Task<long> IRevocationFeedStore.GetCursorAsync(string receiverId, CancellationToken ct) =>
        (await QueryAsync("SELECT acked_id FROM feed_cursors WHERE receiver_id = $r", p => p.AddWithValue("$r", receiverId), r => r.GetInt64(0), ct)).FirstOrDefault();

    Task IRevocationFeedStore.AckAsync(string receiverId, long upToId, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        var cmd = w.Command("INSERT INTO feed_cursors (receiver_id, acked_id) VALUES ($r, $id) ON CONFLICT (receiver_id) DO UPDATE SET acked_id = MAX(acked_id, excluded.acked_id)");
        cmd.Parameters.AddWithValue("$r", receiverId); cmd.Parameters.AddWithValue("$id", upToId);
        return cmd.ExecuteNonQuery();
    });

    async Task<int> IRevocationFeedStore.PruneAsync(DateTimeOffset olderThan, int batchSize, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command("DELETE FROM revocation_events WHERE id IN (SELECT id FROM revocation_events WHERE at < $old ORDER BY id LIMIT $n)");
        cmd.Parameters.AddWithValue("$old", Ms(olderThan)); cmd.Parameters.AddWithValue("$n", batchSize);
        return cmd.ExecuteNonQuery();
    });
}
