using System.Text;
using Npgsql;
using NpgsqlTypes;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Keys;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Storage.Common;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Postgres;

/// <summary>
/// The production store: PostgreSQL shared by any number of server nodes. Every operation is one short statement
/// (or one short transaction) on a pooled connection; the compare-and-swaps rely on row locks, so concurrent nodes
/// need no other coordination.
/// </summary>
public sealed partial class PostgresStore : ITesseraStore, IClientStore, IUserStore, IAuthorizationCodeStore, ISessionStore, IAuditLog, ISigningKeyStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _db;

    public PostgresStore(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        // Npgsql's automatic preparation: the statements every token request runs (the session and user reads, the
        // rotation) are parsed and planned once per connection instead of on every call. An operator's own
        // "Max Auto Prepare" in the connection string wins (0 turns it off, e.g. behind a transaction-mode pooler).
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        if (!given.ContainsKey("Max Auto Prepare") && !given.ContainsKey("MaxAutoPrepare")) builder.MaxAutoPrepare = 64;
        _db = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    public IClientStore Clients => this;
    public IUserStore Users => this;
    public IAuthorizationCodeStore Codes => this;
    public ISessionStore Sessions => this;
    public IAuditLog Audit => this;
    public ISigningKeyStore Keys => this;
    public int SchemaVersion => PostgresSchema.Migrations.Length;

    public async Task MigrateAsync(CancellationToken ct)
    {
        await using var c = await _db.OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;

        // Nodes that start together queue here; the lock is released by the commit or rollback below.
        cmd.CommandText = $"SELECT pg_advisory_xact_lock({PostgresSchema.MigrationLock})";
        await cmd.ExecuteNonQueryAsync(ct);

        cmd.CommandText = "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)";
        await cmd.ExecuteNonQueryAsync(ct);
        cmd.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        var current = Convert.ToInt32(await cmd.ExecuteScalarAsync(ct));
        if (current > PostgresSchema.Migrations.Length)
            throw new InvalidOperationException($"The database is at schema version {current}, newer than this Tessera ({PostgresSchema.Migrations.Length}). Upgrade Tessera.");
        for (var v = current; v < PostgresSchema.Migrations.Length; v++)
        {
            cmd.CommandText = PostgresSchema.Migrations[v];
            await cmd.ExecuteNonQueryAsync(ct);
            cmd.CommandText = $"INSERT INTO schema_version (version) VALUES ({v + 1})";
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    public ValueTask DisposeAsync() => _db.DisposeAsync();

    /// <summary>The pool, shared with <see cref="PostgresXmlRepository"/>.</summary>
    internal NpgsqlDataSource DataSource => _db;

    // ---- command helpers -------------------------------------------------------------------------------------

    private async Task<List<T>> QueryAsync<T>(string sql, Action<NpgsqlParameterCollection> bind, Func<NpgsqlDataReader, T> map, CancellationToken ct)
    {
        await using var cmd = _db.CreateCommand(sql);
        bind(cmd.Parameters);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<T>();
        while (await r.ReadAsync(ct)) list.Add(map(r));
        return list;
    }

    private async Task<T?> QuerySingleAsync<T>(string sql, Action<NpgsqlParameterCollection> bind, Func<NpgsqlDataReader, T> map, CancellationToken ct) where T : class =>
        (await QueryAsync(sql, bind, map, ct)).FirstOrDefault();

    private async Task<int> ExecuteAsync(string sql, Action<NpgsqlParameterCollection> bind, CancellationToken ct)
    {
        await using var cmd = _db.CreateCommand(sql);
        bind(cmd.Parameters);
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    private static string? Str(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static byte[]? Blob(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetFieldValue<byte[]>(i);

    private static DateTimeOffset? Time(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : At(r.GetInt64(i));

    // ---- clients ---------------------------------------------------------------------------------------------

    Task<Client?> IClientStore.FindAsync(string clientId, CancellationToken ct) =>
        QuerySingleAsync("SELECT doc FROM clients WHERE id = @id", p => p.Text("id", clientId), r => _clientDocs.Read(clientId, r.GetString(0)), ct);

    // COLLATE "C": the same binary order as SQLite, whatever the database's locale.
    async Task<IReadOnlyList<Client>> IClientStore.ListAsync(CancellationToken ct) =>
        await QueryAsync("SELECT doc FROM clients ORDER BY id COLLATE \"C\"", _ => { }, r => Read<Client>(r.GetString(0)), ct);

    Task IClientStore.SaveAsync(Client client, CancellationToken ct) => ExecuteAsync(
        "INSERT INTO clients (id, doc) VALUES (@id, @doc) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
        p => { p.Text("id", client.Id); p.Text("doc", Write(client)); }, ct);

    async Task<bool> IClientStore.DeleteAsync(string clientId, CancellationToken ct) =>
        await ExecuteAsync("DELETE FROM clients WHERE id = @id", p => p.Text("id", clientId), ct) == 1;

    // ---- users -----------------------------------------------------------------------------------------------

    // The version lives in its own column (the document never holds it), so the compare-and-swap is on the row.
    private User MapUser(NpgsqlDataReader r) => MapUser(r, 0);

    /// <summary>The user whose doc and version are the columns at <paramref name="at"/> and after it.</summary>
    private User MapUser(NpgsqlDataReader r, int at)
    {
        var doc = r.GetString(at);
        // Keyed by the document itself (every user document holds its id), so lookups by id and by name share it.
        return _userDocs.Read(doc, doc) with { Version = r.GetInt64(at + 1) };
    }

    private readonly DocCache<Client> _clientDocs = new();
    private readonly DocCache<User> _userDocs = new();

    Task<User?> IUserStore.FindByIdAsync(string id, CancellationToken ct) =>
        QuerySingleAsync("SELECT doc, version FROM users WHERE id = @id", p => p.Text("id", id), MapUser, ct);

    // lower(username) matches the unique index users_username, so lookups are case-insensitive and indexed.
    Task<User?> IUserStore.FindByUsernameAsync(string username, CancellationToken ct) =>
        QuerySingleAsync("SELECT doc, version FROM users WHERE lower(username) = lower(@u)", p => p.Text("u", username), MapUser, ct);

    async Task<IReadOnlyList<User>> IUserStore.ListAsync(CancellationToken ct) =>
        await QueryAsync("SELECT doc, version FROM users ORDER BY lower(username) COLLATE \"C\", id COLLATE \"C\"", _ => { }, MapUser, ct);

    async Task<bool> IUserStore.CreateAsync(User user, CancellationToken ct) => await ExecuteAsync(
        // No conflict target: a clash on the id or on lower(username) both mean "not created".
        "INSERT INTO users (id, username, doc, version) VALUES (@id, @u, @doc, @v) ON CONFLICT DO NOTHING",
        p => { p.Text("id", user.Id); p.Text("u", user.Username); p.Text("doc", Write(user)); p.Bigint("v", user.Version); }, ct) == 1;

    async Task<UserSaveOutcome> IUserStore.SaveAsync(User user, CancellationToken ct)
    {
        // The compare-and-swap: concurrent savers queue on the row lock, and READ COMMITTED re-checks the WHERE clause
        // against the winner's row, whose version moved on, so every loser changes nothing. The EXISTS runs on the
        // statement's snapshot (before this UPDATE), so it only tells a stale version from a missing row.
        try
        {
            var outcome = await QuerySingleAsync(
                """
                WITH saved AS (
                    UPDATE users SET username = @u, doc = @doc, version = version + 1
                    WHERE id = @id AND version = @v
                    RETURNING version)
                SELECT CASE WHEN EXISTS (SELECT 1 FROM saved) THEN 'saved'
                            WHEN EXISTS (SELECT 1 FROM users WHERE id = @id) THEN 'conflict'
                            ELSE 'missing' END
                """,
                p => { p.Text("id", user.Id); p.Text("u", user.Username); p.Text("doc", Write(user)); p.Bigint("v", user.Version); },
                r => r.GetString(0), ct);
            return outcome switch
            {
                "saved" => UserSaveOutcome.Saved,
                "conflict" => UserSaveOutcome.Conflict,
                _ => UserSaveOutcome.NotFound,
            };
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "users_username")
        {
            return UserSaveOutcome.UsernameTaken;
        }
    }

    async Task<bool> IUserStore.DeleteAsync(string id, CancellationToken ct) =>
        await ExecuteAsync("DELETE FROM users WHERE id = @id", p => p.Text("id", id), ct) == 1;

    // ---- authorization codes ---------------------------------------------------------------------------------

    Task IAuthorizationCodeStore.StoreAsync(AuthorizationCode code, CancellationToken ct) => ExecuteAsync(
        "INSERT INTO auth_codes (hash, doc, expires_at) VALUES (@h, @doc, @exp)",
        p => { p.Bytes("h", code.Hash); p.Text("doc", Write(code)); p.Time("exp", code.ExpiresAt); }, ct);

    Task<AuthorizationCode?> IAuthorizationCodeStore.FindAsync(byte[] hash, CancellationToken ct) => QuerySingleAsync(
        "SELECT doc, redeemed_at, session_id FROM auth_codes WHERE hash = @h",
        p => p.Bytes("h", hash),
        r => Read<AuthorizationCode>(r.GetString(0)) with { RedeemedAt = Time(r, 1), SessionId = Str(r, 2) }, ct);

    async Task<AuthorizationCode?> IAuthorizationCodeStore.TryRedeemAsync(byte[] hash, DateTimeOffset now, CancellationToken ct)
    {
        // The compare-and-swap: of any number of concurrent callers exactly one changes the row. The winner gets the
        // code as it was (RedeemedAt still null); RETURNING gives the untouched doc and session_id.
        var won = await QuerySingleAsync(
            "UPDATE auth_codes SET redeemed_at = @now WHERE hash = @h AND redeemed_at IS NULL RETURNING doc, session_id",
            p => { p.Time("now", now); p.Bytes("h", hash); },
            r => Read<AuthorizationCode>(r.GetString(0)) with { RedeemedAt = null, SessionId = Str(r, 1) }, ct);
        if (won is not null) return won;

        // A loser (or a replay, or an unknown code). This is a separate statement on purpose: it takes a fresh
        // snapshot, so it sees the winner's committed redeemed_at even if the UPDATE above waited for it.
        return await QuerySingleAsync(
            "SELECT doc, redeemed_at, session_id FROM auth_codes WHERE hash = @h",
            p => p.Bytes("h", hash),
            r => Read<AuthorizationCode>(r.GetString(0)) with { RedeemedAt = Time(r, 1), SessionId = Str(r, 2) }, ct);
    }

    Task IAuthorizationCodeStore.LinkSessionAsync(byte[] hash, string sessionId, CancellationToken ct) => ExecuteAsync(
        "UPDATE auth_codes SET session_id = @s WHERE hash = @h",
        p => { p.Text("s", sessionId); p.Bytes("h", hash); }, ct);

    // ---- audit -----------------------------------------------------------------------------------------------

    private const string InsertAuditColumns = "INSERT INTO audit_events (at, type, user_id, client_id, session_id, ip, reason)";

    private static void BindAudit(NpgsqlParameterCollection p, AuditEvent e)
    {
        p.Time("a_at", e.At);
        p.Text("a_type", e.Type);
        p.Text("a_user", e.UserId);
        p.Text("a_client", e.ClientId);
        p.Text("a_session", e.SessionId);
        p.Text("a_ip", e.IpAddress);
        p.Text("a_reason", e.Reason);
    }

    Task IAuditLog.AppendAsync(AuditEvent e, CancellationToken ct) => ExecuteAsync(
        $"{InsertAuditColumns} VALUES (@a_at, @a_type, @a_user, @a_client, @a_session, @a_ip, @a_reason)", p => BindAudit(p, e), ct);

    async Task<IReadOnlyList<AuditEvent>> IAuditLog.QueryAsync(AuditQuery q, CancellationToken ct)
    {
        // Only the filters that are set go into the statement, so the planner can use the matching index.
        var sql = new StringBuilder("SELECT id, at, type, user_id, client_id, session_id, ip, reason FROM audit_events WHERE TRUE");
        if (q.UserId is not null) sql.Append(" AND user_id = @u");
        if (q.ClientId is not null) sql.Append(" AND client_id = @c");
        if (q.SessionId is not null) sql.Append(" AND session_id = @s");
        if (q.Type is not null) sql.Append(" AND type = @t");
        if (q.From is not null) sql.Append(" AND at >= @from");
        if (q.To is not null) sql.Append(" AND at < @to");
        if (q.BeforeId is not null) sql.Append(" AND id < @before");
        sql.Append(" ORDER BY id DESC LIMIT @limit");
        return await QueryAsync(sql.ToString(), p =>
            {
                if (q.UserId is not null) p.Text("u", q.UserId);
                if (q.ClientId is not null) p.Text("c", q.ClientId);
                if (q.SessionId is not null) p.Text("s", q.SessionId);
                if (q.Type is not null) p.Text("t", q.Type);
                if (q.From is { } f) p.Time("from", f);
                if (q.To is { } t) p.Time("to", t);
                if (q.BeforeId is { } b) p.Bigint("before", b);
                p.Int("limit", Math.Clamp(q.Limit, 1, 1000));
            },
            r => new AuditEvent
            {
                Id = r.GetInt64(0), At = At(r.GetInt64(1)), Type = r.GetString(2), UserId = Str(r, 3), ClientId = Str(r, 4),
                SessionId = Str(r, 5), IpAddress = Str(r, 6), Reason = Str(r, 7),
            }, ct);
    }

    // ---- signing keys ----------------------------------------------------------------------------------------

    async Task<IReadOnlyList<SigningKeyRecord>> ISigningKeyStore.ListAsync(CancellationToken ct) => await QueryAsync(
        "SELECT kid, alg, protected_private, created_at, activates_at, retires_at FROM signing_keys ORDER BY activates_at", _ => { },
        r => new SigningKeyRecord
        {
            Kid = r.GetString(0), Algorithm = r.GetString(1), ProtectedPrivateKey = r.GetFieldValue<byte[]>(2), CreatedAt = At(r.GetInt64(3)),
            ActivatesAt = At(r.GetInt64(4)), RetiresAt = Time(r, 5),
        }, ct);

    Task ISigningKeyStore.AddAsync(SigningKeyRecord k, CancellationToken ct) => ExecuteAsync(
        "INSERT INTO signing_keys (kid, alg, protected_private, created_at, activates_at, retires_at) VALUES (@k, @a, @p, @c, @act, @ret)",
        p =>
        {
            p.Text("k", k.Kid); p.Text("a", k.Algorithm); p.Bytes("p", k.ProtectedPrivateKey);
            p.Time("c", k.CreatedAt); p.Time("act", k.ActivatesAt); p.Time("ret", k.RetiresAt);
        }, ct);
}

/// <summary>Typed parameters: every value (and every null) goes to the server with its column's type.</summary>
internal static class PostgresParameters
{
    private static void Add(NpgsqlParameterCollection p, string name, NpgsqlDbType type, object? value) =>
        p.Add(new NpgsqlParameter(name, type) { Value = value ?? DBNull.Value });

    public static void Text(this NpgsqlParameterCollection p, string name, string? value) => Add(p, name, NpgsqlDbType.Text, value);

    public static void Bytes(this NpgsqlParameterCollection p, string name, byte[]? value) => Add(p, name, NpgsqlDbType.Bytea, value);

    public static void Bigint(this NpgsqlParameterCollection p, string name, long? value) => Add(p, name, NpgsqlDbType.Bigint, value);

    public static void Int(this NpgsqlParameterCollection p, string name, int value) => Add(p, name, NpgsqlDbType.Integer, value);

    /// <summary>A time as bigint Unix milliseconds.</summary>
    public static void Time(this NpgsqlParameterCollection p, string name, DateTimeOffset? value) =>
        Add(p, name, NpgsqlDbType.Bigint, value is { } t ? Ms(t) : null);
}
