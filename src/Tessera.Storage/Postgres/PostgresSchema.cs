namespace Tessera.Storage.Postgres;

/// <summary>
/// Versioned migrations; each runs once, in order, inside the transaction that records it. The column names and the
/// number of migrations match <see cref="Sqlite.SqliteSchema"/>, so both stores report the same schema version.
/// Hashes are bytea, times are bigint Unix milliseconds, clients/users/codes are JSON documents in text columns.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>Key of the transaction-scoped advisory lock that serialises migrations across nodes ("tessera\0" as ASCII).</summary>
    public const long MigrationLock = 0x7465737365726100;

    /// <summary>Key of the advisory lock that makes revocation-feed ids commit in order ("tessera" then 0x01).</summary>
    public const long FeedAppendLock = 0x7465737365726101;

    /// <summary>Key of the advisory lock under which a node creates the first data-protection key ("tessera" then 0x02).</summary>
    public const long DataProtectionKeyLock = 0x7465737365726102;

    public static readonly string[] Migrations =
    [
        // 1: the initial schema.
        """
        CREATE TABLE clients (id text PRIMARY KEY, doc text NOT NULL);
        CREATE TABLE users (id text PRIMARY KEY, username text NOT NULL, doc text NOT NULL);
        CREATE UNIQUE INDEX users_username ON users (lower(username));
        CREATE TABLE auth_codes (
            hash bytea PRIMARY KEY, doc text NOT NULL, expires_at bigint NOT NULL,
            redeemed_at bigint, session_id text);
        CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);
        CREATE TABLE sessions (
            id text PRIMARY KEY, user_id text NOT NULL, client_id text NOT NULL, scopes text NOT NULL, resource text,
            created_at bigint NOT NULL, auth_time bigint NOT NULL, last_used_at bigint NOT NULL,
            idle_expires_at bigint NOT NULL, absolute_expires_at bigint NOT NULL,
            revoked_at bigint, revoked_reason text, user_agent text, ip text,
            family_hash bytea UNIQUE, current_hash bytea, previous_hash bytea, previous_consumed_at bigint,
            protected_current bytea, refresh_count integer NOT NULL DEFAULT 0, refresh_window_start bigint);
        CREATE INDEX sessions_user ON sessions (user_id);
        CREATE INDEX sessions_client ON sessions (client_id);
        CREATE INDEX sessions_idle ON sessions (idle_expires_at);
        CREATE INDEX sessions_absolute ON sessions (absolute_expires_at);
        CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
        CREATE INDEX sessions_retry_copy ON sessions (previous_consumed_at) WHERE protected_current IS NOT NULL;
        CREATE TABLE audit_events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at bigint NOT NULL, type text NOT NULL,
            user_id text, client_id text, session_id text, ip text, reason text);
        CREATE INDEX audit_user ON audit_events (user_id, id);
        CREATE INDEX audit_client ON audit_events (client_id, id);
        CREATE INDEX audit_session ON audit_events (session_id, id);
        CREATE TABLE signing_keys (
            kid text PRIMARY KEY, alg text NOT NULL, protected_private bytea NOT NULL,
            created_at bigint NOT NULL, activates_at bigint NOT NULL, retires_at bigint);
        """,
        // 2: the revocation feed (RFC 8936 poll delivery) and each receiver's acknowledged position.
        """
        CREATE TABLE revocation_events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at bigint NOT NULL, user_id text NOT NULL, session_id text,
            client_id text, revoked_before bigint, reason text NOT NULL);
        CREATE INDEX revocation_events_at ON revocation_events (at);
        CREATE TABLE feed_cursors (receiver_id text PRIMARY KEY, acked_id bigint NOT NULL);
        """,
        // 3: DPoP: a session's key binding, and the proof replay cache.
        """
        ALTER TABLE sessions ADD COLUMN dpop_jkt text;
        CREATE TABLE replay_cache (key bytea PRIMARY KEY, expires_at bigint NOT NULL);
        CREATE INDEX replay_cache_expiry ON replay_cache (expires_at);
        """,
        // 4: optimistic concurrency on users: SaveAsync writes only if the row still has the version it read. And the
        // ASP.NET Core data-protection key ring (login cookie, antiforgery), shared by every node (PostgresXmlRepository;
        // a single SQLite node keeps it in its data directory, so SQLite has no such table). Each key's XML is
        // encrypted with the master key before it gets here.
        """
        ALTER TABLE users ADD COLUMN version bigint NOT NULL DEFAULT 0;
        CREATE TABLE dataprotection_keys (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, friendly_name text, xml text NOT NULL, created_at bigint NOT NULL);
        """,
        // 5: nothing to change. The SQLite store gained a change counter for its client cache here; PostgreSQL nodes
        // read the client on every request, so they need none. Kept so both stores stay at the same schema version.
        """
        SELECT 1;
        """,
        // 6: a version per session, so a rotation can require the row to be the one it decided on (Session.Version).
        """
        ALTER TABLE sessions ADD COLUMN version bigint NOT NULL DEFAULT 0;
        """,
    ];
}
