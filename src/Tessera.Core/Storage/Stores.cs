using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Keys;
using Tessera.Core.Sessions;
using Tessera.Core.Tokens;
using Tessera.Core.Users;

namespace Tessera.Core.Storage;

public interface IClientStore
{
    Task<Client?> FindAsync(string clientId, CancellationToken ct);

    /// <summary>The client as stored at this moment, never from a cache: for read-modify-write (admin changes).</summary>
    Task<Client?> FindCurrentAsync(string clientId, CancellationToken ct) => FindAsync(clientId, ct);

    /// <summary>
    /// How long after another process commits a change to a client a running server on this store may still use the
    /// client as it was (the SQLite store's client cache; none where clients are read on every request). Revocation
    /// watermarks for a changed or deleted client reach this far ahead, so tokens obtained in that window are void too.
    /// </summary>
    TimeSpan ChangeVisibilityDelay => TimeSpan.Zero;
    Task<IReadOnlyList<Client>> ListAsync(CancellationToken ct);
    /// <summary>Inserts or replaces the client.</summary>
    Task SaveAsync(Client client, CancellationToken ct);
    Task<bool> DeleteAsync(string clientId, CancellationToken ct);
}

/// <summary>What <see cref="IUserStore.SaveAsync"/> did.</summary>
public enum UserSaveOutcome
{
    /// <summary>Written; the stored version is now <see cref="User.Version"/> + 1.</summary>
    Saved,
    /// <summary>Someone saved the user since it was read (its version moved on): nothing was written. Re-read and re-apply.</summary>
    Conflict,
    /// <summary>The new username belongs to another user (in any case): nothing was written.</summary>
    UsernameTaken,
    /// <summary>No user has this id (any more).</summary>
    NotFound,
}

public interface IUserStore
{
    /// <summary>Find and List return each user with its current <see cref="User.Version"/>.</summary>
    Task<User?> FindByIdAsync(string id, CancellationToken ct);
    Task<User?> FindByUsernameAsync(string username, CancellationToken ct);
    Task<IReadOnlyList<User>> ListAsync(CancellationToken ct);
    /// <summary>False when the username (or the id) is taken. The row starts at <see cref="User.Version"/>.</summary>
    Task<bool> CreateAsync(User user, CancellationToken ct);

    /// <summary>
    /// Optimistic concurrency: replaces the whole user only if the stored row still has <see cref="User.Version"/>
    /// (compare-and-swap), and increments the version. Of concurrent saves made from the same version exactly one
    /// gets <see cref="UserSaveOutcome.Saved"/>; the others get <see cref="UserSaveOutcome.Conflict"/>.
    /// </summary>
    Task<UserSaveOutcome> SaveAsync(User user, CancellationToken ct);
    Task<bool> DeleteAsync(string id, CancellationToken ct);
}

/// <summary>The read-change-save loop every caller of <see cref="IUserStore.SaveAsync"/> needs.</summary>
public static class UserStoreExtensions
{
    /// <summary>
    /// Saves <paramref name="change"/> applied to <paramref name="user"/>; on <see cref="UserSaveOutcome.Conflict"/>
    /// re-reads the user and applies <paramref name="change"/> again to the fresh copy, at most <paramref name="attempts"/>
    /// times in all. Returns the outcome of the last save, the user the change was last applied to (null when it
    /// disappeared) and, when saved, the user as stored (with its new version).
    /// </summary>
    public static async Task<UserUpdate> UpdateAsync(this IUserStore users, User user, Func<User, User> change, CancellationToken ct, int attempts = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempts, 1);
        var current = user;
        for (var attempt = 1; ; attempt++)
        {
            var changed = change(current);
            var outcome = await users.SaveAsync(changed, ct);
            if (outcome == UserSaveOutcome.Saved) return new UserUpdate(outcome, current, changed with { Version = changed.Version + 1 });
            if (outcome != UserSaveOutcome.Conflict || attempt >= attempts) return new UserUpdate(outcome, current, null);
            var fresh = await users.FindByIdAsync(user.Id, ct);
            if (fresh is null) return new UserUpdate(UserSaveOutcome.NotFound, null, null);
            current = fresh;
        }
    }
}

/// <summary>The result of <see cref="UserStoreExtensions.UpdateAsync"/>: <paramref name="Before"/> is the copy the change was applied to.</summary>
public sealed record UserUpdate(UserSaveOutcome Outcome, User? Before, User? Saved);

public interface IAuthorizationCodeStore
{
    Task StoreAsync(AuthorizationCode code, CancellationToken ct);

    /// <summary>The code as stored (with <see cref="AuthorizationCode.RedeemedAt"/> and its session), without changing it. Null when unknown.</summary>
    Task<AuthorizationCode?> FindAsync(byte[] hash, CancellationToken ct);

    /// <summary>
    /// Marks the code redeemed if nobody did before (compare-and-swap) and returns it as it was before this call;
    /// <see cref="AuthorizationCode.RedeemedAt"/> already set means this is a replay. Null for an unknown code.
    /// </summary>
    Task<AuthorizationCode?> TryRedeemAsync(byte[] hash, DateTimeOffset now, CancellationToken ct);

    /// <summary>Remembers which session a redemption created.</summary>
    Task LinkSessionAsync(byte[] hash, string sessionId, CancellationToken ct);
}

/// <summary>The outcome of a compare-and-swap on a session's current refresh token.</summary>
public enum RotationOutcome
{
    Rotated,
    /// <summary>Another caller consumed the token first (or the session changed under us).</summary>
    Lost,
}

public sealed record Rotation(
    string SessionId,
    byte[] ExpectedCurrentHash,
    byte[] NewCurrentHash,
    byte[]? ProtectedNewToken,
    DateTimeOffset Now,
    DateTimeOffset NewIdleExpiresAt,
    string? IpAddress,
    string? UserAgent,
    AuditEvent Audit,
    long? ExpectedUserVersion = null,
    long? ExpectedSessionVersion = null);

/// <summary>A session and its user as they were in one snapshot.</summary>
public sealed record SessionWithUser(Session Session, User? User);

public interface ISessionStore
{
    Task CreateAsync(Session session, CancellationToken ct);
    Task<Session?> FindAsync(string sessionId, CancellationToken ct);
    Task<Session?> FindByFamilyAsync(byte[] familyHash, CancellationToken ct);

    /// <summary>
    /// The session of a refresh-token family together with its user (null when the user no longer exists), read in
    /// one statement: one snapshot, and one round trip instead of two on the refresh path.
    /// </summary>
    Task<SessionWithUser?> FindByFamilyWithUserAsync(byte[] familyHash, CancellationToken ct);

    /// <summary>
    /// A copy, possibly out of date, of the session whose current refresh token hashes to <paramref name="currentTokenHash"/>
    /// and of its user, for a store that can keep one in memory (the embedded store); null when it has none. A caller
    /// may act on the copy only through <see cref="TryRotateAsync"/> with <see cref="Rotation.ExpectedSessionVersion"/> and
    /// <see cref="Rotation.ExpectedUserVersion"/> taken from the copy, whose compare-and-swap fails unless the token is
    /// still current, the session live and unchanged and the user unchanged; every other decision (a refusal, reuse, a
    /// retry-window replay, a touch) must be taken on a read.
    /// </summary>
    SessionWithUser? FindCopyByCurrentToken(byte[] currentTokenHash) => null;
    Task<IReadOnlyList<Session>> ListByUserAsync(string userId, CancellationToken ct);
    Task<IReadOnlyList<Session>> ListByClientAsync(string clientId, CancellationToken ct);

    /// <summary>
    /// Atomically replaces the session's current refresh token if it still is <see cref="Rotation.ExpectedCurrentHash"/>
    /// and the session is neither revoked nor expired (idle or absolute, at <see cref="Rotation.Now"/>): of any number of
    /// concurrent callers exactly one gets <see cref="RotationOutcome.Rotated"/>.
    /// The audit event is written in the same transaction, so the log never shows a rotation that did not happen.
    /// With <see cref="Rotation.ExpectedUserVersion"/> set, the session's user must also still exist at that version, so
    /// a user disabled, locked or changed after the caller's read makes the swap fail instead of issuing tokens; with
    /// <see cref="Rotation.ExpectedSessionVersion"/> set, the session row must still be at that <see cref="Session.Version"/>.
    /// </summary>
    Task<RotationOutcome> TryRotateAsync(Rotation rotation, CancellationToken ct);

    /// <summary>For clients without rotation: slide the idle expiry and record the use, if the session is not revoked.</summary>
    Task<bool> TouchAsync(string sessionId, DateTimeOffset now, DateTimeOffset newIdleExpiresAt, string? ip, string? userAgent, CancellationToken ct);

    /// <summary>Counts one refresh against the per-minute limit; false when the limit is reached (nothing else changes).</summary>
    Task<bool> TryCountRefreshAsync(string sessionId, DateTimeOffset now, int perMinute, CancellationToken ct);

    /// <summary>Revokes the session and erases its token material. False when it was already revoked or does not exist.</summary>
    Task<bool> RevokeAsync(string sessionId, DateTimeOffset now, string reason, CancellationToken ct);
    Task<int> RevokeByUserAsync(string userId, DateTimeOffset now, string reason, CancellationToken ct);
    Task<int> RevokeByClientAsync(string clientId, DateTimeOffset now, string reason, CancellationToken ct);

    /// <summary>
    /// One bounded batch of housekeeping: erases retry-window copies whose window closed, and deletes sessions that
    /// ended (expired or revoked) before <paramref name="endedBefore"/>. Safe to run from several processes at once.
    /// Returns how many rows it changed; call again while it returns a full batch.
    /// </summary>
    Task<int> PruneAsync(DateTimeOffset now, TimeSpan retryWindowMax, DateTimeOffset endedBefore, int batchSize, CancellationToken ct);

    Task<int> CountAsync(CancellationToken ct);
}

public interface IAuditLog
{
    Task AppendAsync(AuditEvent e, CancellationToken ct);
    Task<IReadOnlyList<AuditEvent>> QueryAsync(AuditQuery query, CancellationToken ct);
}

public interface ISigningKeyStore
{
    Task<IReadOnlyList<SigningKeyRecord>> ListAsync(CancellationToken ct);
    Task AddAsync(SigningKeyRecord key, CancellationToken ct);
}

/// <summary>A store implementation: every contract plus the schema it needs.</summary>
public interface ITesseraStore
{
    IClientStore Clients { get; }
    IUserStore Users { get; }
    IAuthorizationCodeStore Codes { get; }
    ISessionStore Sessions { get; }
    IAuditLog Audit { get; }
    ISigningKeyStore Keys { get; }

    /// <summary>Creates or upgrades the schema to the version this code expects.</summary>
    Task MigrateAsync(CancellationToken ct);
    int SchemaVersion { get; }
}
