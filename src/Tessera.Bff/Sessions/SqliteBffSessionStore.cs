using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Tessera.Bff.Sessions;

/// <summary>
/// Sessions in one SQLite table. The row holds the key (SHA-256 of the cookie value), the subject and Tessera
/// session id in clear for back-channel logout, the expiry for pruning, and everything else (tokens included)
/// as one DataProtection-encrypted blob. Replicas share it when they share the file and the DataProtection keys.
/// </summary>
public sealed class SqliteBffSessionStore : IBffSessionStore
{
    private const string Purpose = "Tessera.Bff.Session.v1";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly string _connectionString;
    private readonly IDataProtector _protector;
    private readonly SemaphoreSlim _init = new(1, 1);
    private volatile bool _initialized;

    public SqliteBffSessionStore(IOptions<TesseraBffOptions> options, IDataProtectionProvider dataProtection)
    {
        var path = Path.GetFullPath(options.Value.SessionDatabasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        _protector = dataProtection.CreateProtector(Purpose);
    }

    public async Task<BffSession?> GetAsync(string key, CancellationToken ct)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT data FROM bff_sessions WHERE key = $key";
        cmd.Parameters.AddWithValue("$key", key);
        if (await cmd.ExecuteScalarAsync(ct) is not byte[] blob) return null;
        byte[] plain;
        try
        {
            // The key is also the additional purpose: a row copied under another key does not decrypt.
            plain = _protector.CreateProtector(key).Unprotect(blob);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null; // keys rotated away or tampered row: the session is unusable, the user signs in again
        }
        return JsonSerializer.Deserialize<BffSession>(plain, Json);
    }

    public async Task SaveAsync(BffSession session, CancellationToken ct)
    {
        var blob = _protector.CreateProtector(session.Key).Protect(JsonSerializer.SerializeToUtf8Bytes(session, Json));
        await using var c = await OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = """
            INSERT INTO bff_sessions (key, subject, sid, expires_at, data) VALUES ($key, $sub, $sid, $exp, $data)
            ON CONFLICT(key) DO UPDATE SET subject = excluded.subject, sid = excluded.sid, expires_at = excluded.expires_at, data = excluded.data
            """;
        cmd.Parameters.AddWithValue("$key", session.Key);
        cmd.Parameters.AddWithValue("$sub", session.Subject);
        cmd.Parameters.AddWithValue("$sid", (object?)session.TesseraSessionId ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$exp", session.ExpiresAt.ToUnixTimeSeconds());
        cmd.Parameters.AddWithValue("$data", blob);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<bool> DeleteAsync(string key, CancellationToken ct)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "DELETE FROM bff_sessions WHERE key = $key";
        cmd.Parameters.AddWithValue("$key", key);
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    public async Task<int> DeleteByTesseraSessionAsync(string? subject, string? tesseraSessionId, CancellationToken ct)
    {
        if (subject is null && tesseraSessionId is null) return 0;
        await using var c = await OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = (subject, tesseraSessionId) switch
        {
            (not null, not null) => "DELETE FROM bff_sessions WHERE sid = $sid AND subject = $sub",
            (null, _) => "DELETE FROM bff_sessions WHERE sid = $sid",
            _ => "DELETE FROM bff_sessions WHERE subject = $sub",
        };
        cmd.Parameters.AddWithValue("$sub", (object?)subject ?? DBNull.Value);
        cmd.Parameters.AddWithValue("$sid", (object?)tesseraSessionId ?? DBNull.Value);
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<int> PruneAsync(DateTimeOffset now, CancellationToken ct)
    {
        await using var c = await OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "DELETE FROM bff_sessions WHERE expires_at <= $now";
        cmd.Parameters.AddWithValue("$now", now.ToUnixTimeSeconds());
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct);
        if (!_initialized) await InitializeAsync(c, ct);
        return c;
    }

    private async Task InitializeAsync(SqliteConnection c, CancellationToken ct)
    {
        await _init.WaitAsync(ct);
        try
        {
            if (_initialized) return;
            await using var cmd = c.CreateCommand();
            cmd.CommandText = """
                PRAGMA journal_mode = WAL;
                CREATE TABLE IF NOT EXISTS bff_sessions (
                    key TEXT PRIMARY KEY NOT NULL,
                    subject TEXT NOT NULL,
                    sid TEXT NULL,
                    expires_at INTEGER NOT NULL,
                    data BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS bff_sessions_sid ON bff_sessions (sid);
                CREATE INDEX IF NOT EXISTS bff_sessions_subject ON bff_sessions (subject);
                CREATE INDEX IF NOT EXISTS bff_sessions_expires ON bff_sessions (expires_at);
                """;
            await cmd.ExecuteNonQueryAsync(ct);
            _initialized = true;
        }
        finally
        {
            _init.Release();
        }
    }
}
