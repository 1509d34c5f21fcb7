using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Passwords;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;

namespace Tessera.Server.Admin;

/// <summary>An operator's request that cannot be carried out, with the field at fault (becomes RFC 9457 problem details).</summary>
public sealed class AdminException(string message, string? field = null, int status = 400) : Exception(message)
{
    public string? Field { get; } = field;
    public int Status { get; } = status;
}

/// <summary>
/// What operators may do, shared by the admin API and the command line: each operation changes the store,
/// writes its audit event and publishes what it revoked to the feed, in that order.
/// </summary>
public sealed class AdminService(ITesseraStore store, PasswordHasher hasher, IRevocationPublisher publisher, TimeProvider time)
{
    public async Task<User> CreateUserAsync(string username, string password, string? name, string? email, IReadOnlyList<string>? scopes, string actor, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(username) || username.Length > 256 || username.Any(char.IsControl))
            throw new AdminException("A username of 1 to 256 printable characters is required.", "username");
        CheckPassword(password);
        var user = new User
        {
            Id = Handles.NewId(), Username = username.Trim(), Name = name, Email = email, PasswordHash = hasher.Hash(password),
            AllowedScopes = scopes, CreatedAt = time.GetUtcNow(),
        };
        if (!await store.Users.CreateAsync(user, ct)) throw new AdminException($"The username '{username}' is taken.", "username", 409);
        await AuditAsync(AuditTypes.UserChanged, user.Id, null, null, "user created by " + actor, ct);
        return user;
    }

    public async Task<User> UpdateUserAsync(User user, bool? disabled, DateTimeOffset? lockedUntil, bool unlock, string? password, IReadOnlyList<string>? scopes, bool allScopes, string actor, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        // Millisecond precision, like the sessions' start times: a sign-in right after this is not taken for an older one.
        var watermark = RevocationTimes.Watermark(now);
        var what = new List<string>();
        string? passwordHash = null;
        if (password is not null)
        {
            CheckPassword(password);
            passwordHash = hasher.Hash(password);
            what.Add("password reset");
        }
        if (disabled is { } d) what.Add(d ? "disabled" : "enabled");
        if (lockedUntil is not null) what.Add("locked");
        if (unlock) what.Add("unlocked");
        if (allScopes) what.Add("permissions: all");
        else if (scopes is not null) what.Add("permissions changed");

        // The change as a function of the stored user, so it can be applied again to a fresh copy when a sign-in
        // (failed-login count) or another operator saved the user since it was read.
        User Apply(User u)
        {
            var changed = u;
            // A password reset voids every session that started before it.
            if (passwordHash is not null) changed = changed with { PasswordHash = passwordHash, RevokedBefore = watermark };
            if (disabled is { } off)
            {
                changed = changed with { Disabled = off };
                if (off) changed = changed with { RevokedBefore = watermark };
            }
            if (lockedUntil is { } until) changed = changed with { LockedUntil = until };
            if (unlock) changed = changed with { LockedUntil = null };
            if (allScopes) changed = changed with { AllowedScopes = null };
            else if (scopes is not null) changed = changed with { AllowedScopes = scopes };
            return changed;
        }

        var (before, saved) = await SaveUserAsync(user, Apply, ct);
        await AuditAsync(AuditTypes.UserChanged, user.Id, null, null, string.Join(", ", what) + " by " + actor, ct);
        if (saved.RevokedBefore != before.RevokedBefore)
        {
            // Sessions end: at the next refresh (the watermark, and each session revoked) and at the resource servers.
            var reason = disabled == true ? RevocationReasons.UserDisabled : passwordHash is not null ? RevocationReasons.PasswordReset : RevocationReasons.AdminRevoked;
            await UserSessionsRevocation.RevokeAllAsync(store, publisher, user.Id, watermark, reason, ct);
        }
        else if (lockedUntil is { } lockEnd && lockEnd > now)
        {
            // A lock keeps the sessions (they refresh again once unlocked) but the refresh token endpoint refuses them
            // while it lasts; the access tokens already out are voided at the resource servers.
            await publisher.UserRevokedBeforeAsync(user.Id, RevocationTimes.AfterSecondOf(now), RevocationReasons.UserLocked, now, ct);
        }
        else if (Narrowed(before.AllowedScopes, saved.AllowedScopes))
        {
            // The next refresh drops what was taken away; until then the access tokens already out carry it, so they are
            // voided at the resource servers and the clients refresh to a narrower token.
            await publisher.UserRevokedBeforeAsync(user.Id, RevocationTimes.AfterSecondOf(now), RevocationReasons.PermissionsChanged, now, ct);
        }
        return saved;
    }

    /// <summary>True when <paramref name="after"/> allows less than <paramref name="before"/> (null allows everything the client may have).</summary>
    private static bool Narrowed(IReadOnlyList<string>? before, IReadOnlyList<string>? after) =>
        after is not null && (before is null || before.Any(s => !after.Contains(s, StringComparer.Ordinal)));

    public async Task<int> RevokeUserSessionsAsync(User user, string actor, CancellationToken ct)
    {
        var watermark = RevocationTimes.Watermark(time.GetUtcNow());
        await SaveUserAsync(user, u => u with { RevokedBefore = watermark }, ct);
        var n = await UserSessionsRevocation.RevokeAllAsync(store, publisher, user.Id, watermark, RevocationReasons.AdminRevoked, ct);
        await AuditAsync(AuditTypes.SessionRevoked, user.Id, null, null, $"all {n} sessions revoked by {actor}", ct);
        return n;
    }

    /// <summary>How often an operator's change is re-applied to a fresh copy after losing a race with another save.</summary>
    private const int SaveAttempts = 5;

    /// <summary>
    /// Saves <paramref name="change"/> applied to the user with optimistic concurrency; when someone saved the user since
    /// it was read, re-reads it and applies the change again. Returns the copy the change was applied to and the saved user.
    /// </summary>
    private async Task<(User Before, User Saved)> SaveUserAsync(User user, Func<User, User> change, CancellationToken ct)
    {
        var result = await store.Users.UpdateAsync(user, change, ct, SaveAttempts);
        return result.Outcome switch
        {
            UserSaveOutcome.Saved => (result.Before!, result.Saved!),
            UserSaveOutcome.UsernameTaken => throw new AdminException($"The username '{change(result.Before!).Username}' is taken.", "username", 409),
            UserSaveOutcome.NotFound => throw new AdminException($"No user '{user.Username}' (it was deleted).", "id", 404),
            _ => throw new AdminException($"User '{user.Username}' kept changing while this change was being saved; try again.", "id", 409),
        };
    }

    public async Task DeleteUserAsync(User user, string actor, CancellationToken ct)
    {
        // The sessions are listed (for their feed events) while the user still exists; none can start after the delete.
        await UserSessionsRevocation.RevokeAllAsync(store, publisher, user.Id, RevocationTimes.Watermark(time.GetUtcNow()), RevocationReasons.AdminRevoked, ct);
        await store.Users.DeleteAsync(user.Id, ct);
        await AuditAsync(AuditTypes.UserChanged, user.Id, null, null, "user deleted by " + actor, ct);
    }

    /// <summary>Creates or replaces a client; a new confidential client gets a generated secret, returned once.</summary>
    public async Task<(Client Client, string? Secret)> SaveClientAsync(Client client, bool confidential, bool isNew, string actor, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(client.Id) || client.Id.Length > 200 || client.Id.Any(c => c <= ' ' || c == ':'))
            throw new AdminException("A client id of 1 to 200 characters without spaces or ':' is required.", "id");
        if (client.GrantTypes.Count == 0 || client.GrantTypes.Any(g => !GrantTypes.Supported.Contains(g)))
            throw new AdminException($"grantTypes must be among {string.Join(", ", GrantTypes.Supported)}.", "grantTypes");
        if (!confidential && client.GrantTypes.Contains(GrantTypes.ClientCredentials))
            throw new AdminException("A public client cannot use client_credentials.", "grantTypes");
        if (client.GrantTypes.Contains(GrantTypes.AuthorizationCode) && client.RedirectUris.Count == 0)
            throw new AdminException("authorization_code needs at least one redirect URI.", "redirectUris");
        foreach (var u in client.RedirectUris.Concat(client.PostLogoutRedirectUris))
            if (!Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Fragment.Length > 0)
                throw new AdminException($"'{u}' must be an absolute URI without a fragment.", "redirectUris");
        if (client.BackchannelLogoutUri is { } bcl && (!Uri.TryCreate(bcl, UriKind.Absolute, out var b) || b.Scheme is not ("https" or "http") || b.Fragment.Length > 0))
            throw new AdminException("backchannelLogoutUri must be an absolute http(s) URI without a fragment.", "backchannelLogoutUri");
        if (client.SigningAlgorithm is { } alg && !Core.Keys.KeyRing.Algorithms.Contains(alg))
            throw new AdminException($"signingAlgorithm must be one of {string.Join(", ", Core.Keys.KeyRing.Algorithms)}.", "signingAlgorithm");
        foreach (var s in client.Scopes)
            if (!Scopes.TryParse(s, out var one) || one.Count != 1) throw new AdminException($"'{s}' is not a valid scope.", "scopes");
        var existing = await store.Clients.FindCurrentAsync(client.Id, ct);
        if (isNew && existing is not null) throw new AdminException($"Client '{client.Id}' exists.", "id", 409);
        if (!isNew && existing is null) throw new AdminException($"No client '{client.Id}'.", "id", 404);
        string? secret = null;
        // private_key_jwt clients (a registered JWK Set) are confidential without a secret.
        if (confidential && client.Jwks is null && existing?.SecretHash is null)
            secret = Handles.NewClientSecret();
        var saved = client with
        {
            SecretHash = !confidential || client.Jwks is not null ? null : secret is not null ? Handles.Hash(secret) : existing!.SecretHash,
            // An update keeps the last rotation: tokens obtained before it stay inactive.
            SecretRotatedAt = existing?.SecretRotatedAt,
        };
        if (saved.IsPublic && !saved.Refresh.Rotate) saved = saved with { Refresh = saved.Refresh with { Rotate = true } };
        await store.Clients.SaveAsync(saved, ct);
        await AuditAsync(AuditTypes.ClientChanged, null, client.Id, null, (isNew ? "client created by " : "client updated by ") + actor, ct);
        return (saved, secret);
    }

    public async Task<string> RotateSecretAsync(Client client, string actor, CancellationToken ct)
    {
        if (client.IsPublic) throw new AdminException("Public clients have no secret.", "id");
        // A private_key_jwt client has no secret; making one would add a second, weaker way to authenticate as it.
        if (client.SecretHash is null) throw new AdminException("This client authenticates with private_key_jwt and has no secret to rotate.", "id");
        var now = time.GetUtcNow();
        var secret = Handles.NewClientSecret();
        // From now on the old secret authenticates nothing, so no refresh token of this client can be used with it.
        // The client's sessions are NOT revoked: a refresh token is useless without the client's credentials, so the
        // legitimate client carries on with the new secret and its users stay signed in (rotation stays routine, not
        // something operators put off because it logs everyone out). What the old secret may already have obtained
        // are access tokens: every token of this client issued up to now (client_credentials, or a refresh made with a
        // stolen refresh token and the old secret) is voided at the token service (introspection, userinfo, admin API)
        // and, through the feed, at the resource servers. The legitimate client refreshes or asks again.
        // A running server on the same SQLite file may accept the old secret for up to the store's change-visibility
        // delay after this commit (when the CLI rotates it from another process); the rotation instant is moved that
        // far ahead, so tokens obtained in that window are void as well.
        var voidBefore = now + store.Clients.ChangeVisibilityDelay;
        await store.Clients.SaveAsync(client with { SecretHash = Handles.Hash(secret), SecretRotatedAt = voidBefore }, ct);
        await AuditAsync(AuditTypes.ClientChanged, null, client.Id, null, "secret rotated by " + actor, ct);
        await publisher.ClientRevokedBeforeAsync(client.Id, RevocationTimes.AfterSecondOf(voidBefore), RevocationReasons.ClientSecretRotated, now, ct);
        return secret;
    }

    public async Task<int> RevokeClientSessionsAsync(string clientId, string actor, CancellationToken ct)
    {
        // Milliseconds, as the store keeps them, so the sessions this call ends are exactly those revoked at or after it.
        var now = DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());
        var n = await store.Sessions.RevokeByClientAsync(clientId, now, RevocationReasons.AdminRevoked, ct);
        await AuditAsync(AuditTypes.SessionRevoked, null, clientId, null, $"all {n} sessions of the client revoked by {actor}", ct);
        // Listed after the revocation (as UserSessionsRevocation does): a session that was being created while the
        // revocation ran is either revoked by it, and gets its event here, or started after it.
        var ended = (await store.Sessions.ListByClientAsync(clientId, ct)).Where(s => s.RevokedAt >= now).ToList();
        foreach (var s in ended) await publisher.SessionRevokedAsync(s, RevocationReasons.AdminRevoked, now, ct);
        return n;
    }

    public async Task DeleteClientAsync(string clientId, string actor, CancellationToken ct)
    {
        await RevokeClientSessionsAsync(clientId, actor, ct);
        if (!await store.Clients.DeleteAsync(clientId, ct)) throw new AdminException($"No client '{clientId}'.", "id", 404);
        await AuditAsync(AuditTypes.ClientChanged, null, clientId, null, "client deleted by " + actor, ct);
        // Its client_credentials tokens belong to no session: a client watermark voids them, and every other token
        // the client obtained, at the resource servers (the token service's own endpoints refuse a missing client).
        // As with a rotation: a server that has not yet seen the deletion (SQLite, CLI in another process) may still
        // issue tokens to it for the store's change-visibility delay, so the watermark reaches past that.
        var now = time.GetUtcNow();
        await publisher.ClientRevokedBeforeAsync(clientId, RevocationTimes.AfterSecondOf(now + store.Clients.ChangeVisibilityDelay), RevocationReasons.ClientDeleted, now, ct);
    }

    public async Task<bool> RevokeSessionAsync(Session session, string actor, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (!await store.Sessions.RevokeAsync(session.Id, now, RevocationReasons.AdminRevoked, ct)) return false;
        await AuditAsync(AuditTypes.SessionRevoked, session.UserId, session.ClientId, session.Id, "revoked by " + actor, ct);
        await publisher.SessionRevokedAsync(session, RevocationReasons.AdminRevoked, now, ct);
        return true;
    }

    private static void CheckPassword(string password)
    {
        // Never truncated; long passphrases welcome; common ones refused.
        if (PasswordPolicy.Check(password) is { } problem) throw new AdminException(problem, "password");
    }

    private Task AuditAsync(string type, string? userId, string? clientId, string? sessionId, string reason, CancellationToken ct) =>
        store.Audit.AppendAsync(new AuditEvent { At = time.GetUtcNow(), Type = type, UserId = userId, ClientId = clientId, SessionId = sessionId, Reason = reason }, ct);
}
