using Microsoft.Data.Sqlite;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Keys;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Storage.Common;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Sqlite;

public sealed record SqliteStoreOptions
{
    /// <summary>Path of the database file.</summary>
    public required string Path { get; init; }

    /// <summary>
    /// PRAGMA synchronous. NORMAL (default) in WAL mode never corrupts the database; a power loss may drop the
    /// last commits. FULL fsyncs every commit, so nothing acknowledged is lost even on power loss.
    /// </summary>
    public bool FullSync { get; init; }

    /// <summary>The clock of the client cache's freshness rule (<see cref="SqliteClientCache"/>); tests replace it.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>The embedded store: one SQLite file in WAL mode. Reads use pooled connections; writes go through <see cref="SqliteWriter"/>.</summary>
public sealed partial class SqliteStore : ITesseraStore, IClientStore, IUserStore, IAuthorizationCodeStore, ISessionStore, IAuditLog, ISigningKeyStore, IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly SqliteStoreOptions _options;
    private SqliteWriter? _writer;
    private SqliteCheckpointer? _checkpointer;
    private readonly SqliteReaders _readers;
    private readonly DocCache<Client> _clientDocs = new();
    private readonly SqliteClientCache _clients;
    private readonly CancellationTokenSource _stopPolling = new();
    private Task? _polling;
    private readonly DocCache<User> _userDocs = new();
    private readonly SqliteSessionCopies _sessionCopies = new();

    public SqliteStore(SqliteStoreOptions options)
    {
        _options = options;
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(options.Path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = options.Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        _readers = new SqliteReaders(_connectionString);
        _clients = new SqliteClientCache(options.TimeProvider);
    }

    public IClientStore Clients => this;
    public IUserStore Users => this;
    public IAuthorizationCodeStore Codes => this;
    public ISessionStore Sessions => this;
    public IAuditLog Audit => this;
    public ISigningKeyStore Keys => this;
    public int SchemaVersion => SqliteSchema.Migrations.Length;

    private SqliteWriter Writer => _writer ?? throw new InvalidOperationException("Call MigrateAsync before using the store.");

    private void Configure(SqliteConnection c)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"PRAGMA journal_mode=WAL; PRAGMA synchronous={(_options.FullSync ? "FULL" : "NORMAL")}; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;";
        cmd.ExecuteNonQuery();
    }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await using (var c = new SqliteConnection(_connectionString))
        {
            await c.OpenAsync(ct);
            Configure(c);
            using var tx = c.BeginTransaction(deferred: false);
            using (var create = c.CreateCommand())
            {
                create.Transaction = tx;
                create.CommandText = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
                create.ExecuteNonQuery();
                create.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
                var current = Convert.ToInt32(create.ExecuteScalar());
                if (current > SqliteSchema.Migrations.Length)
                    throw new InvalidOperationException($"The database is at schema version {current}, newer than this Tessera ({SqliteSchema.Migrations.Length}). Upgrade Tessera.");
                for (var v = current; v < SqliteSchema.Migrations.Length; v++)
                {
                    create.CommandText = SqliteSchema.Migrations[v];
                    create.ExecuteNonQuery();
                    create.CommandText = $"INSERT INTO schema_version (version) VALUES ({v + 1})";
                    create.ExecuteNonQuery();
                }
            }
            tx.Commit();
        }
        _writer ??= new SqliteWriter(_connectionString, c =>
        {
            Configure(c);
            using var cmd = c.CreateCommand();
            // After the WAL starts over, a file grown past 64 MB (the safety net was needed) is cut back.
            cmd.CommandText = $"PRAGMA wal_autocheckpoint={SqliteCheckpointer.WriterSafetyNetPages}; PRAGMA journal_size_limit=67108864;";
            cmd.ExecuteNonQuery();
        });
        _checkpointer ??= new SqliteCheckpointer(_connectionString, TimeSpan.FromMilliseconds(100), _options.FullSync);
        // A poll that fails is skipped: the cache stops being used once the last good poll is too old.
        _polling ??= Task.Run(() => BackgroundRounds.RunAsync(SqliteClientCache.PollInterval, _options.TimeProvider, runAtStart: true, PollClientChanges, _stopPolling.Token));
    }

    /// <summary>One poll of the clients change counter (see <see cref="SqliteClientCache"/>).</summary>
    internal void PollClientChanges()
    {
        var began = _clients.PollBegins();
        var counter = QueryAsync("SELECT n FROM change_counters WHERE name = 'clients'", _ => { }, r => r.GetInt64(0), CancellationToken.None).Result;
        // No counter row means no way to see other processes' changes: a failed poll, so the cache goes unused.
        if (counter.Count == 0) throw new InvalidOperationException("The clients change counter is missing (schema migration 5).");
        _clients.Observed(began, counter[0]);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopPolling.IsCancellationRequested) _stopPolling.Cancel();
        if (_polling is not null) await _polling;
        _stopPolling.Dispose();
        if (_checkpointer is not null) await _checkpointer.DisposeAsync();
        if (_writer is not null) await _writer.DisposeAsync();
        _readers.Dispose();
        // Only this store's pool (pools are keyed by connection string): other stores in the process keep theirs.
        using var pooled = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(pooled);
    }

    // ---- reading helpers -------------------------------------------------------------------------------------

    private Task<List<T>> QueryAsync<T>(string sql, Action<SqliteParameterCollection> bind, Func<SqliteDataReader, T> map, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        // SQLite runs in-process and its "async" calls complete synchronously anyway; a kept connection with the
        // statement already prepared is what makes a read cheap.
        var reader = _readers.Rent();
        var healthy = false;
        try
        {
            var cmd = reader.Command(sql);
            bind(cmd.Parameters);
            var list = new List<T>();
            using (var r = cmd.ExecuteReader())
            {
                while (r.Read()) list.Add(map(r));
            }
            healthy = true;
            return Task.FromResult(list);
        }
        finally
        {
            _readers.Return(reader, healthy);
        }
    }

    private Task<T?> QuerySingleAsync<T>(string sql, Action<SqliteParameterCollection> bind, Func<SqliteDataReader, T> map, CancellationToken ct) where T : class
    {
        var list = QueryAsync(sql, bind, map, ct).Result;
        return Task.FromResult(list.Count > 0 ? list[0] : null);
    }

    private static object Db(object? value) => value ?? DBNull.Value;

    private static string? Str(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static long? Long(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    private static byte[]? Blob(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : (byte[])r.GetValue(i);

    private static DateTimeOffset? Time(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : At(r.GetInt64(i));

    // ---- clients ---------------------------------------------------------------------------------------------

    Task<Client?> IClientStore.FindAsync(string clientId, CancellationToken ct)
    {
        if (_clients.Find(clientId) is { } remembered) return Task.FromResult<Client?>(remembered);
        var ticket = _clients.BeginRead();
        var found = ReadClient(clientId, ct);
        if (found is not null) _clients.Remember(clientId, found, ticket);
        return Task.FromResult(found);
    }

    Task<Client?> IClientStore.FindCurrentAsync(string clientId, CancellationToken ct) => Task.FromResult(ReadClient(clientId, ct));

    private Client? ReadClient(string clientId, CancellationToken ct) =>
        QuerySingleAsync("SELECT doc FROM clients WHERE id = $id", p => p.AddWithValue("$id", clientId), r => _clientDocs.Read(clientId, r.GetString(0)), ct).Result;

    TimeSpan IClientStore.ChangeVisibilityDelay => SqliteClientCache.MaxStaleness;

    async Task<IReadOnlyList<Client>> IClientStore.ListAsync(CancellationToken ct) =>
        await QueryAsync("SELECT doc FROM clients ORDER BY id", _ => { }, r => Read<Client>(r.GetString(0)), ct);

    Task IClientStore.SaveAsync(Client client, CancellationToken ct) => ChangeClientAsync(w =>
    {
        var cmd = w.Command("INSERT INTO clients (id, doc) VALUES ($id, $doc) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc");
        cmd.Parameters.AddWithValue("$id", client.Id);
        cmd.Parameters.AddWithValue("$doc", Write(client));
        return cmd.ExecuteNonQuery();
    });

    Task<bool> IClientStore.DeleteAsync(string clientId, CancellationToken ct) => ChangeClientAsync(w =>
    {
        var cmd = w.Command("DELETE FROM clients WHERE id = $id");
        cmd.Parameters.AddWithValue("$id", clientId);
        return cmd.ExecuteNonQuery() == 1;
    });

    /// <summary>
    /// A write to the clients table, bracketed for the client cache: nothing read while it is in flight is remembered,
    /// and it empties the cache before it is written and again once it is done (committed or failed), before the
    /// caller hears of it.
    /// </summary>
    private async Task<T> ChangeClientAsync<T>(Func<SqliteWriter, T> body)
    {
        _clients.BeginChange();
        try
        {
            return await Writer.WriteAsync(body);
        }
        finally
        {
            _clients.EndChange();
        }
    }

    // ---- users -----------------------------------------------------------------------------------------------

    // The version lives in its own column (the document never holds it), so the compare-and-swap is on the row.
    private User MapUser(SqliteDataReader r) => MapUser(r, 0);

    /// <summary>The user whose doc and version are the columns at <paramref name="at"/> and after it.</summary>
    private User MapUser(SqliteDataReader r, int at)
    {
        var doc = r.GetString(at);
        // Keyed by the document itself (every user document holds its id), so lookups by id and by name share it.
        return _userDocs.Read(doc, doc) with { Version = r.GetInt64(at + 1) };
    }

    Task<User?> IUserStore.FindByIdAsync(string id, CancellationToken ct) =>
        QuerySingleAsync("SELECT doc, version FROM users WHERE id = $id", p => p.AddWithValue("$id", id), MapUser, ct);

    Task<User?> IUserStore.FindByUsernameAsync(string username, CancellationToken ct) =>
        QuerySingleAsync("SELECT doc, version FROM users WHERE username = $u", p => p.AddWithValue("$u", username), MapUser, ct);

    async Task<IReadOnlyList<User>> IUserStore.ListAsync(CancellationToken ct) =>
        await QueryAsync("SELECT doc, version FROM users ORDER BY username", _ => { }, MapUser, ct);

    async Task<bool> IUserStore.CreateAsync(User user, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command("INSERT INTO users (id, username, doc, version) VALUES ($id, $u, $doc, $v) ON CONFLICT DO NOTHING");
        cmd.Parameters.AddWithValue("$id", user.Id);
        cmd.Parameters.AddWithValue("$u", user.Username);
        cmd.Parameters.AddWithValue("$doc", Write(user));
        cmd.Parameters.AddWithValue("$v", user.Version);
        return cmd.ExecuteNonQuery() == 1;
    });

    Task<UserSaveOutcome> IUserStore.SaveAsync(User user, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        // Writes are serialised by the writer, so the compare-and-swap and the follow-up read see the same state.
        var cmd = w.Command("UPDATE users SET username = $u, doc = $doc, version = version + 1 WHERE id = $id AND version = $v");
        cmd.Parameters.AddWithValue("$id", user.Id);
        cmd.Parameters.AddWithValue("$u", user.Username);
        cmd.Parameters.AddWithValue("$doc", Write(user));
        cmd.Parameters.AddWithValue("$v", user.Version);
        try
        {
            if (cmd.ExecuteNonQuery() == 1) return UserSaveOutcome.Saved;
        }
        catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteUniqueViolation)
        {
            // The only unique key an UPDATE of an existing id can break is the (NOCASE) username. The failed
            // statement changed nothing and the surrounding savepoint stays usable.
            return UserSaveOutcome.UsernameTaken;
        }
        var exists = w.Command("SELECT EXISTS (SELECT 1 FROM users WHERE id = $id)");
        exists.Parameters.AddWithValue("$id", user.Id);
        return Convert.ToInt64(exists.ExecuteScalar()) == 1 ? UserSaveOutcome.Conflict : UserSaveOutcome.NotFound;
    });

    /// <summary>SQLITE_CONSTRAINT_UNIQUE.</summary>
    private const int SqliteUniqueViolation = 2067;

    async Task<bool> IUserStore.DeleteAsync(string id, CancellationToken ct) => await Writer.WriteAsync(w =>
    {
        var cmd = w.Command("DELETE FROM users WHERE id = $id");
        cmd.Parameters.AddWithValue("$id", id);
        return cmd.ExecuteNonQuery() == 1;
    });

    // ---- authorization codes ---------------------------------------------------------------------------------

    Task IAuthorizationCodeStore.StoreAsync(AuthorizationCode code, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        var cmd = w.Command("INSERT INTO auth_codes (hash, doc, expires_at) VALUES ($h, $doc, $exp)");
        cmd.Parameters.AddWithValue("$h", code.Hash);
        cmd.Parameters.AddWithValue("$doc", Write(code));
        cmd.Parameters.AddWithValue("$exp", Ms(code.ExpiresAt));
        return cmd.ExecuteNonQuery();
    });

    Task<AuthorizationCode?> IAuthorizationCodeStore.FindAsync(byte[] hash, CancellationToken ct) => QuerySingleAsync(
        "SELECT doc, redeemed_at, session_id FROM auth_codes WHERE hash = $h",
        p => p.AddWithValue("$h", hash),
        r => Read<AuthorizationCode>(r.GetString(0)) with { RedeemedAt = Time(r, 1), SessionId = Str(r, 2) }, ct);

    Task<AuthorizationCode?> IAuthorizationCodeStore.TryRedeemAsync(byte[] hash, DateTimeOffset now, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        var read = w.Command("SELECT doc, redeemed_at, session_id FROM auth_codes WHERE hash = $h");
        read.Parameters.AddWithValue("$h", hash);
        AuthorizationCode? code = null;
        using (var r = read.ExecuteReader())
        {
            if (r.Read())
                code = Read<AuthorizationCode>(r.GetString(0)) with { RedeemedAt = Time(r, 1), SessionId = Str(r, 2) };
        }
        if (code is null || code.RedeemedAt is not null) return code;
        var mark = w.Command("UPDATE auth_codes SET redeemed_at = $now WHERE hash = $h AND redeemed_at IS NULL");
        mark.Parameters.AddWithValue("$now", Ms(now));
        mark.Parameters.AddWithValue("$h", hash);
        mark.ExecuteNonQuery();
        return code;
    });

    Task IAuthorizationCodeStore.LinkSessionAsync(byte[] hash, string sessionId, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        var cmd = w.Command("UPDATE auth_codes SET session_id = $s WHERE hash = $h");
        cmd.Parameters.AddWithValue("$s", sessionId);
        cmd.Parameters.AddWithValue("$h", hash);
        return cmd.ExecuteNonQuery();
    });

    // ---- audit -----------------------------------------------------------------------------------------------

    Task IAuditLog.AppendAsync(AuditEvent e, CancellationToken ct) => Writer.WriteAsync(w => InsertAudit(w, e));

    private static int InsertAudit(SqliteWriter w, AuditEvent e)
    {
        var cmd = w.Command("INSERT INTO audit_events (at, type, user_id, client_id, session_id, ip, reason) VALUES ($at, $t, $u, $c, $s, $ip, $r)");
        cmd.Parameters.AddWithValue("$at", Ms(e.At));
        cmd.Parameters.AddWithValue("$t", e.Type);
        cmd.Parameters.AddWithValue("$u", Db(e.UserId));
        cmd.Parameters.AddWithValue("$c", Db(e.ClientId));
        cmd.Parameters.AddWithValue("$s", Db(e.SessionId));
        cmd.Parameters.AddWithValue("$ip", Db(e.IpAddress));
        cmd.Parameters.AddWithValue("$r", Db(e.Reason));
        return cmd.ExecuteNonQuery();
    }

    async Task<IReadOnlyList<AuditEvent>> IAuditLog.QueryAsync(AuditQuery q, CancellationToken ct) => await QueryAsync(
        """
        SELECT id, at, type, user_id, client_id, session_id, ip, reason FROM audit_events
        WHERE ($u IS NULL OR user_id = $u) AND ($c IS NULL OR client_id = $c) AND ($s IS NULL OR session_id = $s)
          AND ($t IS NULL OR type = $t) AND ($from IS NULL OR at >= $from) AND ($to IS NULL OR at < $to)
          AND ($before IS NULL OR id < $before)
        ORDER BY id DESC LIMIT $limit
        """,
        p =>
        {
            p.AddWithValue("$u", Db(q.UserId));
            p.AddWithValue("$c", Db(q.ClientId));
            p.AddWithValue("$s", Db(q.SessionId));
            p.AddWithValue("$t", Db(q.Type));
            p.AddWithValue("$from", Db(q.From is { } f ? Ms(f) : null));
            p.AddWithValue("$to", Db(q.To is { } t ? Ms(t) : null));
            p.AddWithValue("$before", Db(q.BeforeId));
            p.AddWithValue("$limit", Math.Clamp(q.Limit, 1, 1000));
        },
        r => new AuditEvent
        {
            Id = r.GetInt64(0), At = At(r.GetInt64(1)), Type = r.GetString(2), UserId = Str(r, 3), ClientId = Str(r, 4),
            SessionId = Str(r, 5), IpAddress = Str(r, 6), Reason = Str(r, 7),
        }, ct);

    // ---- signing keys ----------------------------------------------------------------------------------------

    async Task<IReadOnlyList<SigningKeyRecord>> ISigningKeyStore.ListAsync(CancellationToken ct) => await QueryAsync(
        "SELECT kid, alg, protected_private, created_at, activates_at, retires_at FROM signing_keys ORDER BY activates_at", _ => { },
        r => new SigningKeyRecord
        {
            Kid = r.GetString(0), Algorithm = r.GetString(1), ProtectedPrivateKey = Blob(r, 2)!, CreatedAt = At(r.GetInt64(3)),
            ActivatesAt = At(r.GetInt64(4)), RetiresAt = Time(r, 5),
        }, ct);

    Task ISigningKeyStore.AddAsync(SigningKeyRecord k, CancellationToken ct) => Writer.WriteAsync(w =>
    {
        var cmd = w.Command("INSERT INTO signing_keys (kid, alg, protected_private, created_at, activates_at, retires_at) VALUES ($k, $a, $p, $c, $act, $ret)");
        cmd.Parameters.AddWithValue("$k", k.Kid);
        cmd.Parameters.AddWithValue("$a", k.Algorithm);
        cmd.Parameters.AddWithValue("$p", k.ProtectedPrivateKey);
        cmd.Parameters.AddWithValue("$c", Ms(k.CreatedAt));
        cmd.Parameters.AddWithValue("$act", Ms(k.ActivatesAt));
        cmd.Parameters.AddWithValue("$ret", Db(k.RetiresAt is { } r ? Ms(r) : null));
        return cmd.ExecuteNonQuery();
    });
}
