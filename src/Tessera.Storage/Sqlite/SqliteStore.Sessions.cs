using Microsoft.Data.Sqlite;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Sqlite;

public sealed partial class SqliteStore
{
    private const string SessionColumns =
        "id, user_id, client_id, scopes, resource, created_at, auth_time, last_used_at, idle_expires_at, absolute_expires_at, " +
        "revoked_at, revoked_reason, user_agent, ip, family_hash, current_hash, previous_hash, previous_consumed_at, protected_current, " +
        "refresh_count, refresh_window_start, dpop_jkt, version";

    private static Session MapSession(SqliteDataReader r) => new()
    {
        Id = r.GetString(0), UserId = r.GetString(1), ClientId = r.GetString(2), Scopes = Scopes(r.GetString(3)), Resource = Str(r, 4),
        CreatedAt = At(r.GetInt64(5)), AuthTime = At(r.GetInt64(6)), LastUsedAt = At(r.GetInt64(7)),
        IdleExpiresAt = At(r.GetInt64(8)), AbsoluteExpiresAt = At(r.GetInt64(9)), RevokedAt = Time(r, 10), RevokedReason = Str(r, 11),
        UserAgent = Str(r, 12), IpAddress = Str(r, 13), FamilyHash = Blob(r, 14), CurrentTokenHash = Blob(r, 15),
        PreviousTokenHash = Blob(r, 16), PreviousConsumedAt = Time(r, 17), ProtectedCurrentToken = Blob(r, 18),
        RefreshCount = r.GetInt32(19), RefreshWindowStart = Time(r, 20), DpopJkt = Str(r, 21), Version = r.GetInt64(22),
    };

    Task ISessionStore.CreateAsync(Session s, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        var cmd = w.Command($"INSERT INTO sessions ({SessionColumns}) VALUES ($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)");
        var p = cmd.Parameters;
        p.AddWithValue("$0", s.Id); p.AddWithValue("$1", s.UserId); p.AddWithValue("$2", s.ClientId); p.AddWithValue("$3", Scopes(s.Scopes));
        p.AddWithValue("$4", Db(s.Resource)); p.AddWithValue("$5", Ms(s.CreatedAt)); p.AddWithValue("$6", Ms(s.AuthTime));
        p.AddWithValue("$7", Ms(s.LastUsedAt)); p.AddWithValue("$8", Ms(s.IdleExpiresAt)); p.AddWithValue("$9", Ms(s.AbsoluteExpiresAt));
        p.AddWithValue("$10", Db(s.RevokedAt is { } ra ? Ms(ra) : null)); p.AddWithValue("$11", Db(s.RevokedReason));
        p.AddWithValue("$12", Db(s.UserAgent)); p.AddWithValue("$13", Db(s.IpAddress)); p.AddWithValue("$14", Db(s.FamilyHash));
        p.AddWithValue("$15", Db(s.CurrentTokenHash)); p.AddWithValue("$16", Db(s.PreviousTokenHash));
        p.AddWithValue("$17", Db(s.PreviousConsumedAt is { } pc ? Ms(pc) : null)); p.AddWithValue("$18", Db(s.ProtectedCurrentToken));
        p.AddWithValue("$19", s.RefreshCount); p.AddWithValue("$20", Db(s.RefreshWindowStart is { } rw ? Ms(rw) : null));
        p.AddWithValue("$21", Db(s.DpopJkt)); p.AddWithValue("$22", s.Version);
        return cmd.ExecuteNonQuery();
    });

    Task<Session?> ISessionStore.FindAsync(string sessionId, CancellationToken ct) =>
        QuerySingleAsync($"SELECT {SessionColumns} FROM sessions WHERE id = $id", p => p.AddWithValue("$id", sessionId), MapSession, ct);

    Task<Session?> ISessionStore.FindByFamilyAsync(byte[] familyHash, CancellationToken ct) =>
        QuerySingleAsync($"SELECT {SessionColumns} FROM sessions WHERE family_hash = $f", p => p.AddWithValue("$f", familyHash), MapSession, ct);

    private static readonly string JoinedSessionColumns = string.Join(", ", SessionColumns.Split(", ").Select(c => "s." + c));

    async Task<SessionWithUser?> ISessionStore.FindByFamilyWithUserAsync(byte[] familyHash, CancellationToken ct)
    {
        var found = await QuerySingleAsync($"SELECT {JoinedSessionColumns}, u.doc, u.version FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.family_hash = $f",
            p => p.AddWithValue("$f", familyHash), r => new SessionWithUser(MapSession(r), r.IsDBNull(23) ? null : MapUser(r, 23)), ct);
        if (found is not null) _sessionCopies.Remember(found);
        return found;
    }

    /// <summary>See <see cref="SqliteSessionCopies"/>: a copy is only ever acted on through the checks of <c>TryRotateAsync</c>.</summary>
    SessionWithUser? ISessionStore.FindCopyByCurrentToken(byte[] currentTokenHash) => _sessionCopies.Find(currentTokenHash);

    async Task<IReadOnlyList<Session>> ISessionStore.ListByUserAsync(string userId, CancellationToken ct) =>
        await QueryAsync($"SELECT {SessionColumns} FROM sessions WHERE user_id = $u ORDER BY created_at DESC, id", p => p.AddWithValue("$u", userId), MapSession, ct);

    async Task<IReadOnlyList<Session>> ISessionStore.ListByClientAsync(string clientId, CancellationToken ct) =>
        await QueryAsync($"SELECT {SessionColumns} FROM sessions WHERE client_id = $c ORDER BY created_at DESC, id", p => p.AddWithValue("$c", clientId), MapSession, ct);

    async Task<RotationOutcome> ISessionStore.TryRotateAsync(Rotation r, CancellationToken ct)
    {
        var outcome = await Writer.WriteAsync(w =>
        {
            // Hydra-style compare-and-swap: the row changes only if the presented token is still the current one of a
            // live session (and, when asked, the user is still at the version the caller checked).
            var cmd = w.Command(
                """
                UPDATE sessions SET previous_hash = current_hash, previous_consumed_at = $now, current_hash = $new,
                    protected_current = $copy, last_used_at = $now, idle_expires_at = $idle, ip = COALESCE($ip, ip), user_agent = COALESCE($ua, user_agent),
                    version = version + 1
                WHERE id = $id AND current_hash = $expected AND revoked_at IS NULL AND idle_expires_at > $now AND absolute_expires_at > $now
                    AND ($sv IS NULL OR version = $sv)
                    AND ($uv IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND u.version = $uv))
                """);
            var p = cmd.Parameters;
            p.AddWithValue("$now", Ms(r.Now)); p.AddWithValue("$new", r.NewCurrentHash); p.AddWithValue("$copy", Db(r.ProtectedNewToken));
            p.AddWithValue("$idle", Ms(r.NewIdleExpiresAt)); p.AddWithValue("$ip", Db(r.IpAddress)); p.AddWithValue("$ua", Db(r.UserAgent));
            p.AddWithValue("$id", r.SessionId); p.AddWithValue("$expected", r.ExpectedCurrentHash); p.AddWithValue("$uv", Db(r.ExpectedUserVersion)); p.AddWithValue("$sv", Db(r.ExpectedSessionVersion));
            if (cmd.ExecuteNonQuery() != 1) return RotationOutcome.Lost;
            InsertAudit(w, r.Audit);
            return RotationOutcome.Rotated;
        });
        // After the commit, before the caller hears of it (so before the new token can be presented).
        if (outcome == RotationOutcome.Rotated) _sessionCopies.Rotated(r);
        else _sessionCopies.Forget(r.ExpectedCurrentHash);
        return outcome;
    }

    async Task<bool> ISessionStore.TouchAsync(string sessionId, DateTimeOffset now, DateTimeOffset newIdle, string? ip, string? userAgent, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command("UPDATE sessions SET last_used_at = $now, idle_expires_at = $idle, ip = COALESCE($ip, ip), user_agent = COALESCE($ua, user_agent), version = version + 1 WHERE id = $id AND revoked_at IS NULL");
        cmd.Parameters.AddWithValue("$now", Ms(now)); cmd.Parameters.AddWithValue("$idle", Ms(newIdle));
        cmd.Parameters.AddWithValue("$ip", Db(ip)); cmd.Parameters.AddWithValue("$ua", Db(userAgent)); cmd.Parameters.AddWithValue("$id", sessionId);
        return cmd.ExecuteNonQuery() == 1;
    });

    async Task<bool> ISessionStore.TryCountRefreshAsync(string sessionId, DateTimeOffset now, int perMinute, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command(
            """
            UPDATE sessions SET
                refresh_count = CASE WHEN refresh_window_start IS NULL OR refresh_window_start <= $now - 60000 THEN 1 ELSE refresh_count + 1 END,
                refresh_window_start = CASE WHEN refresh_window_start IS NULL OR refresh_window_start <= $now - 60000 THEN $now ELSE refresh_window_start END
            WHERE id = $id AND (refresh_window_start IS NULL OR refresh_window_start <= $now - 60000 OR refresh_count < $max)
            """);
        cmd.Parameters.AddWithValue("$now", Ms(now)); cmd.Parameters.AddWithValue("$id", sessionId); cmd.Parameters.AddWithValue("$max", perMinute);
        return cmd.ExecuteNonQuery() == 1;
    });

    private const string RevokeSet = "revoked_at = $now, revoked_reason = $reason, current_hash = NULL, previous_hash = NULL, protected_current = NULL, version = version + 1";

    async Task<bool> ISessionStore.RevokeAsync(string sessionId, DateTimeOffset now, string reason, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command($"UPDATE sessions SET {RevokeSet} WHERE id = $id AND revoked_at IS NULL");
        cmd.Parameters.AddWithValue("$now", Ms(now)); cmd.Parameters.AddWithValue("$reason", reason); cmd.Parameters.AddWithValue("$id", sessionId);
        return cmd.ExecuteNonQuery() == 1;
    });

    async Task<int> ISessionStore.RevokeByUserAsync(string userId, DateTimeOffset now, string reason, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command($"UPDATE sessions SET {RevokeSet} WHERE user_id = $u AND revoked_at IS NULL");
        cmd.Parameters.AddWithValue("$now", Ms(now)); cmd.Parameters.AddWithValue("$reason", reason); cmd.Parameters.AddWithValue("$u", userId);
        return cmd.ExecuteNonQuery();
    });

    async Task<int> ISessionStore.RevokeByClientAsync(string clientId, DateTimeOffset now, string reason, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command($"UPDATE sessions SET {RevokeSet} WHERE client_id = $c AND revoked_at IS NULL");
        cmd.Parameters.AddWithValue("$now", Ms(now)); cmd.Parameters.AddWithValue("$reason", reason); cmd.Parameters.AddWithValue("$c", clientId);
        return cmd.ExecuteNonQuery();
    });

    async Task<int> ISessionStore.PruneAsync(DateTimeOffset now, TimeSpan retryWindowMax, DateTimeOffset endedBefore, int batchSize, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var erase = w.Command(
            """
            UPDATE sessions SET protected_current = NULL WHERE id IN (
                SELECT id FROM sessions WHERE protected_current IS NOT NULL AND previous_consumed_at < $closed LIMIT $n)
            """);
        erase.Parameters.AddWithValue("$closed", Ms(now - retryWindowMax)); erase.Parameters.AddWithValue("$n", batchSize);
        var changed = erase.ExecuteNonQuery();

        var delete = w.Command(
            """
            DELETE FROM sessions WHERE id IN (
                SELECT id FROM sessions WHERE revoked_at < $ended
                UNION SELECT id FROM sessions WHERE idle_expires_at < $ended
                UNION SELECT id FROM sessions WHERE absolute_expires_at < $ended
                LIMIT $n)
            """);
        delete.Parameters.AddWithValue("$ended", Ms(endedBefore)); delete.Parameters.AddWithValue("$n", batchSize);
        changed += delete.ExecuteNonQuery();

        var replays = w.Command("DELETE FROM replay_cache WHERE key IN (SELECT key FROM replay_cache WHERE expires_at < $now LIMIT $n)");
        replays.Parameters.AddWithValue("$now", Ms(now)); replays.Parameters.AddWithValue("$n", batchSize);
        changed += replays.ExecuteNonQuery();

        var codes = w.Command("DELETE FROM auth_codes WHERE hash IN (SELECT hash FROM auth_codes WHERE expires_at < $old LIMIT $n)");
        codes.Parameters.AddWithValue("$old", Ms(now - TimeSpan.FromMinutes(10))); codes.Parameters.AddWithValue("$n", batchSize);
        changed += codes.ExecuteNonQuery();
        return changed;
    });

    async Task<int> ISessionStore.CountAsync(CancellationToken ct) =>
        (await QueryAsync("SELECT COUNT(*) FROM sessions", _ => { }, r => r.GetInt32(0), ct))[0];
}
