namespace Tessera.Storage.Sqlite;

/// <summary>Versioned migrations; each runs once, in order, inside the transaction that records it.</summary>
internal static class SqliteSchema
{
    public static readonly string[] Migrations =
    [
        // 1: the initial schema. Times are Unix milliseconds.
        """
        CREATE TABLE clients (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
        CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL COLLATE NOCASE UNIQUE, doc TEXT NOT NULL);
        CREATE TABLE auth_codes (
            hash BLOB PRIMARY KEY, doc TEXT NOT NULL, expires_at INTEGER NOT NULL,
            redeemed_at INTEGER, session_id TEXT);
        CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, user_id TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL, resource TEXT,
            created_at INTEGER NOT NULL, auth_time INTEGER NOT NULL, last_used_at INTEGER NOT NULL,
            idle_expires_at INTEGER NOT NULL, absolute_expires_at INTEGER NOT NULL,
            revoked_at INTEGER, revoked_reason TEXT, user_agent TEXT, ip TEXT,
            family_hash BLOB UNIQUE, current_hash BLOB, previous_hash BLOB, previous_consumed_at INTEGER,
            protected_current BLOB, refresh_count INTEGER NOT NULL DEFAULT 0, refresh_window_start INTEGER);
        CREATE INDEX sessions_user ON sessions (user_id);
        CREATE INDEX sessions_client ON sessions (client_id);
        CREATE INDEX sessions_idle ON sessions (idle_expires_at);
        CREATE INDEX sessions_absolute ON sessions (absolute_expires_at);
        CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
        CREATE INDEX sessions_retry_copy ON sessions (previous_consumed_at) WHERE protected_current IS NOT NULL;
        CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
            user_id TEXT, client_id TEXT, session_id TEXT, ip TEXT, reason TEXT);
        CREATE INDEX audit_user ON audit_events (user_id, id);
        CREATE INDEX audit_client ON audit_events (client_id, id);
        CREATE INDEX audit_session ON audit_events (session_id, id);
        CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY, alg TEXT NOT NULL, protected_private BLOB NOT NULL,
            created_at INTEGER NOT NULL, activates_at INTEGER NOT NULL, retires_at INTEGER);
        """,
        // 2: the revocation feed (RFC 8936 poll delivery) and each receiver's acknowledged position.
        """
        CREATE TABLE revocation_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, user_id TEXT NOT NULL, session_id TEXT,
            client_id TEXT, revoked_before INTEGER, reason TEXT NOT NULL);
        CREATE INDEX revocation_events_at ON revocation_events (at);
        CREATE TABLE feed_cursors (receiver_id TEXT PRIMARY KEY, acked_id INTEGER NOT NULL);
        """,
        // 3: DPoP: a session's key binding, and the proof replay cache.
        """
        ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
        CREATE TABLE replay_cache (key BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
        CREATE INDEX replay_cache_expiry ON replay_cache (expires_at);
        """,
        // 4: optimistic concurrency on users: SaveAsync writes only if the row still has the version it read.
        """
        ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
        """,
        // 5: a counter of changes to clients, kept by triggers, so a client cache sees changes made by another process
        // on the same file (SqliteClientCache).
        """
        CREATE TABLE change_counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
        INSERT INTO change_counters (name, n) VALUES ('clients', 0);
        CREATE TRIGGER clients_inserted AFTER INSERT ON clients BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'clients'; END;
        CREATE TRIGGER clients_updated AFTER UPDATE ON clients BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'clients'; END;
        CREATE TRIGGER clients_deleted AFTER DELETE ON clients BEGIN UPDATE change_counters SET n = n + 1 WHERE name = 'clients'; END;
        """,
        // 6: a version per session, so a rotation can require the row to be the one it decided on (Session.Version).
        // Tessera's own statements bump the versions; the triggers bump them for any other writer (an edit with the
        // sqlite3 shell, say) that changes what a refresh decides on, so the in-memory session copies
        // (SqliteSessionCopies) can never hide such an edit. They do nothing when the statement bumped the version.
        """
        ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
        CREATE TRIGGER sessions_versioned AFTER UPDATE OF
            user_id, client_id, scopes, resource, created_at, auth_time, last_used_at, idle_expires_at, absolute_expires_at,
            revoked_at, revoked_reason, user_agent, ip, family_hash, current_hash, previous_hash, previous_consumed_at, dpop_jkt
            ON sessions WHEN NEW.version = OLD.version
            BEGIN UPDATE sessions SET version = version + 1 WHERE id = NEW.id; END;
        CREATE TRIGGER users_versioned AFTER UPDATE OF id, username, doc ON users WHEN NEW.version = OLD.version
            BEGIN UPDATE users SET version = version + 1 WHERE id = NEW.id; END;
        """,
    ];
}
