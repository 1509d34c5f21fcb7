using Npgsql;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Postgres;

public sealed partial class PostgresStore
{
    private const string SessionColumns =
        "id, user_id, client_id, scopes, resource, created_at, auth_time, last_used_at, idle_expires_at, absolute_expires_at, " +
        "revoked_at, revoked_reason, user_agent, ip, family_hash, current_hash, previous_hash, previous_consumed_at, protected_current, " +
        "refresh_count, refresh_window_start, dpop_jkt, version";

    private static Session MapSession(NpgsqlDataReader r) => new()
    {
        Id = r.GetString(0), UserId = r.GetString(1), ClientId = r.GetString(2), Scopes = Scopes(r.GetString(3)), Resource = Str(r, 4),
        CreatedAt = At(r.GetInt64(5)), AuthTime = At(r.GetInt64(6)), LastUsedAt = At(r.GetInt64(7)),
        IdleExpiresAt = At(r.GetInt64(8)), AbsoluteExpiresAt = At(r.GetInt64(9)), RevokedAt = Time(r, 10), RevokedReason = Str(r, 11),
        UserAgent = Str(r, 12), IpAddress = Str(r, 13), FamilyHash = Blob(r, 14), CurrentTokenHash = Blob(r, 15),
        PreviousTokenHash = Blob(r, 16), PreviousConsumedAt = Time(r, 17), ProtectedCurrentToken = Blob(r, 18),
        RefreshCount = r.GetInt32(19), RefreshWindowStart = Time(r, 20), DpopJkt = Str(r, 21), Version = r.GetInt64(22),
    };

    Task ISessionStore.CreateAsync(Session s, CancellationToken ct) => ExecuteAsync(
        $"""
        INSERT INTO sessions ({SessionColumns}) VALUES (
            @id, @user, @client, @scopes, @resource, @created, @auth_time, @last_used, @idle, @absolute,
            @revoked_at, @revoked_reason, @ua, @ip, @family, @current, @previous, @previous_consumed, @copy,
            @count, @window, @jkt, @version)
        """,
        p =>
        {
            p.Text("id", s.Id); p.Text("user", s.UserId); p.Text("client", s.ClientId); p.Text("scopes", Scopes(s.Scopes));
            p.Text("resource", s.Resource); p.Time("created", s.CreatedAt); p.Time("auth_time", s.AuthTime);
            p.Time("last_used", s.LastUsedAt); p.Time("idle", s.IdleExpiresAt); p.Time("absolute", s.AbsoluteExpiresAt);
            p.Time("revoked_at", s.RevokedAt); p.Text("revoked_reason", s.RevokedReason);
            p.Text("ua", s.UserAgent); p.Text("ip", s.IpAddress); p.Bytes("family", s.FamilyHash);
            p.Bytes("current", s.CurrentTokenHash); p.Bytes("previous", s.PreviousTokenHash);
            p.Time("previous_consumed", s.PreviousConsumedAt); p.Bytes("copy", s.ProtectedCurrentToken);
            p.Int("count", s.RefreshCount); p.Time("window", s.RefreshWindowStart); p.Text("jkt", s.DpopJkt); p.Bigint("version", s.Version);
        }, ct);

    Task<Session?> ISessionStore.FindAsync(string sessionId, CancellationToken ct) =>
        QuerySingleAsync($"SELECT {SessionColumns} FROM sessions WHERE id = @id", p => p.Text("id", sessionId), MapSession, ct);

    Task<Session?> ISessionStore.FindByFamilyAsync(byte[] familyHash, CancellationToken ct) =>
        QuerySingleAsync($"SELECT {SessionColumns} FROM sessions WHERE family_hash = @f", p => p.Bytes("f", familyHash), MapSession, ct);

    private static readonly string JoinedSessionColumns = string.Join(", ", SessionColumns.Split(", ").Select(c => "s." + c));

    Task<SessionWithUser?> ISessionStore.FindByFamilyWithUserAsync(byte[] familyHash, CancellationToken ct) =>
        QuerySingleAsync($"SELECT {JoinedSessionColumns}, u.doc, u.version FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.family_hash = @f",
            p => p.Bytes("f", familyHash), r => new SessionWithUser(MapSession(r), r.IsDBNull(23) ? null : MapUser(r, 23)), ct);

    async Task<IReadOnlyList<Session>> ISessionStore.ListByUserAsync(string userId, CancellationToken ct) =>
        await QueryAsync($"SELECT {SessionColumns} FROM sessions WHERE user_id = @u ORDER BY created_at DESC, id COLLATE \"C\"", p => p.Text("u", userId), MapSession, ct);

    async Task<IReadOnlyList<Session>> ISessionStore.ListByClientAsync(string clientId, CancellationToken ct) =>
        await QueryAsync($"SELECT {SessionColumns} FROM sessions WHERE client_id = @c ORDER BY created_at DESC, id COLLATE \"C\"", p => p.Text("c", clientId), MapSession, ct);

    async Task<RotationOutcome> ISessionStore.TryRotateAsync(Rotation r, CancellationToken ct)
    {
        // One statement, so one transaction: the compare-and-swap UPDATE and the audit INSERT that feeds on its
        // RETURNING. The INSERT gets a row only when the UPDATE changed one, so the log never shows a rotation that did
        // not happen, and a rotation never commits without its audit event. Concurrent callers queue on the row lock;
        // READ COMMITTED re-checks the WHERE clause against the winner's row, so every loser changes nothing. The user
        // check reads the statement's snapshot: a user change that commits while this statement runs is not seen (it
        // is seen by the next refresh's read); one committed before it makes the swap fail.
        var inserted = await ExecuteAsync(
            $"""
            WITH rotated AS (
                UPDATE sessions SET previous_hash = current_hash, previous_consumed_at = @now, current_hash = @new,
                    protected_current = @copy, last_used_at = @now, idle_expires_at = @idle, ip = COALESCE(@ip, ip),
                    user_agent = COALESCE(@ua, user_agent), version = version + 1
                WHERE id = @id AND current_hash = @expected AND revoked_at IS NULL AND idle_expires_at > @now AND absolute_expires_at > @now
                    AND (@sv IS NULL OR version = @sv)
                    AND (@uv IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = sessions.user_id AND u.version = @uv))
                RETURNING id)
            {InsertAuditColumns}
            SELECT @a_at, @a_type, @a_user, @a_client, @a_session, @a_ip, @a_reason FROM rotated
            """,
            p =>
            {
                p.Time("now", r.Now); p.Bytes("new", r.NewCurrentHash); p.Bytes("copy", r.ProtectedNewToken);
                p.Time("idle", r.NewIdleExpiresAt); p.Text("ip", r.IpAddress); p.Text("ua", r.UserAgent);
                p.Text("id", r.SessionId); p.Bytes("expected", r.ExpectedCurrentHash);
                p.Bigint("uv", r.ExpectedUserVersion); p.Bigint("sv", r.ExpectedSessionVersion);
                BindAudit(p, r.Audit);
            }, ct);
        return inserted == 1 ? RotationOutcome.Rotated : RotationOutcome.Lost;
    }

    // Like a rotation, Touch records the IP address and the user agent of the use; a null keeps the known one.
    async Task<bool> ISessionStore.TouchAsync(string sessionId, DateTimeOffset now, DateTimeOffset newIdle, string? ip, string? userAgent, CancellationToken ct) =>
        await ExecuteAsync(
            "UPDATE sessions SET last_used_at = @now, idle_expires_at = @idle, ip = COALESCE(@ip, ip), user_agent = COALESCE(@ua, user_agent), version = version + 1 WHERE id = @id AND revoked_at IS NULL",
            p => { p.Time("now", now); p.Time("idle", newIdle); p.Text("ip", ip); p.Text("ua", userAgent); p.Text("id", sessionId); }, ct) == 1;

    async Task<bool> ISessionStore.TryCountRefreshAsync(string sessionId, DateTimeOffset now, int perMinute, CancellationToken ct) =>
        await ExecuteAsync(
            """
            UPDATE sessions SET
                refresh_count = CASE WHEN refresh_window_start IS NULL OR refresh_window_start <= @now - 60000 THEN 1 ELSE refresh_count + 1 END,
                refresh_window_start = CASE WHEN refresh_window_start IS NULL OR refresh_window_start <= @now - 60000 THEN @now ELSE refresh_window_start END
            WHERE id = @id AND (refresh_window_start IS NULL OR refresh_window_start <= @now - 60000 OR refresh_count < @max)
            """,
            p => { p.Time("now", now); p.Text("id", sessionId); p.Int("max", perMinute); }, ct) == 1;

    private const string RevokeSet = "revoked_at = @now, revoked_reason = @reason, current_hash = NULL, previous_hash = NULL, protected_current = NULL, version = version + 1";

    async Task<bool> ISessionStore.RevokeAsync(string sessionId, DateTimeOffset now, string reason, CancellationToken ct) =>
        await ExecuteAsync($"UPDATE sessions SET {RevokeSet} WHERE id = @id AND revoked_at IS NULL",
            p => { p.Time("now", now); p.Text("reason", reason); p.Text("id", sessionId); }, ct) == 1;

    Task<int> ISessionStore.RevokeByUserAsync(string userId, DateTimeOffset now, string reason, CancellationToken ct) =>
        ExecuteAsync($"UPDATE sessions SET {RevokeSet} WHERE user_id = @u AND revoked_at IS NULL",
            p => { p.Time("now", now); p.Text("reason", reason); p.Text("u", userId); }, ct);

    Task<int> ISessionStore.RevokeByClientAsync(string clientId, DateTimeOffset now, string reason, CancellationToken ct) =>
        ExecuteAsync($"UPDATE sessions SET {RevokeSet} WHERE client_id = @c AND revoked_at IS NULL",
            p => { p.Time("now", now); p.Text("reason", reason); p.Text("c", clientId); }, ct);

    async Task<int> ISessionStore.PruneAsync(DateTimeOffset now, TimeSpan retryWindowMax, DateTimeOffset endedBefore, int batchSize, CancellationToken ct)
    {
        // Each statement picks its batch with FOR UPDATE SKIP LOCKED: rows another pruner (or a refresh) holds are
        // skipped, never waited for, so any number of nodes can prune at once without blocking or deadlocking each
        // other. The outer WHERE repeats the condition, so a row that changed before we locked it is left alone.
        // The statements go in one round trip (one implicit transaction).
        await using var c = await _db.OpenConnectionAsync(ct);
        await using var batch = new NpgsqlBatch(c);

        var erase = new NpgsqlBatchCommand(
            """
            UPDATE sessions SET protected_current = NULL
            WHERE id IN (
                SELECT id FROM sessions WHERE protected_current IS NOT NULL AND previous_consumed_at < @closed
                LIMIT @n FOR UPDATE SKIP LOCKED)
              AND protected_current IS NOT NULL AND previous_consumed_at < @closed
            """);
        erase.Parameters.Time("closed", now - retryWindowMax); erase.Parameters.Int("n", batchSize);
        batch.BatchCommands.Add(erase);

        var delete = new NpgsqlBatchCommand(
            """
            DELETE FROM sessions
            WHERE id IN (
                SELECT id FROM sessions WHERE revoked_at < @ended OR idle_expires_at < @ended OR absolute_expires_at < @ended
                LIMIT @n FOR UPDATE SKIP LOCKED)
              AND (revoked_at < @ended OR idle_expires_at < @ended OR absolute_expires_at < @ended)
            """);
        delete.Parameters.Time("ended", endedBefore); delete.Parameters.Int("n", batchSize);
        batch.BatchCommands.Add(delete);

        var replays = new NpgsqlBatchCommand(
            """
            DELETE FROM replay_cache
            WHERE key IN (SELECT key FROM replay_cache WHERE expires_at < @now LIMIT @n FOR UPDATE SKIP LOCKED)
              AND expires_at < @now
            """);
        replays.Parameters.Time("now", now); replays.Parameters.Int("n", batchSize);
        batch.BatchCommands.Add(replays);

        var codes = new NpgsqlBatchCommand(
            """
            DELETE FROM auth_codes
            WHERE hash IN (SELECT hash FROM auth_codes WHERE expires_at < @old LIMIT @n FOR UPDATE SKIP LOCKED)
              AND expires_at < @old
            """);
        codes.Parameters.Time("old", now - TimeSpan.FromMinutes(10)); codes.Parameters.Int("n", batchSize);
        batch.BatchCommands.Add(codes);

        await batch.ExecuteNonQueryAsync(ct);
        return checked(erase.RecordsAffected + delete.RecordsAffected + replays.RecordsAffected + codes.RecordsAffected);
    }

    async Task<int> ISessionStore.CountAsync(CancellationToken ct) =>
        (await QueryAsync("SELECT COUNT(*)::integer FROM sessions", _ => { }, r => r.GetInt32(0), ct))[0];
}
