using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Crypto;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;

namespace Tessera.Core.Refresh;

public sealed record RefreshRequest(
    Client Client,
    string RefreshToken,
    IReadOnlyList<string>? RequestedScopes,
    string? IpAddress,
    string? UserAgent,
    string? DpopJkt = null);

public sealed record RefreshSuccess(Session Session, User User, string RefreshToken, IReadOnlyList<string> Scopes, TimeSpan RefreshExpiresIn, bool Replayed);

/// <summary>
/// The refresh-token state machine of DESIGN.md, read top to bottom. The client was authenticated before this runs.
/// Every refusal is audited with its reason; the caller learns only the RFC 6749 §5.2 error code.
/// </summary>
public sealed class RefreshTokenService(
    ITesseraStore store,
    SecretProtector protector,
    TesseraOptions options,
    RefreshEvents events,
    IRevocationPublisher revocations,
    TimeProvider time)
{
    public const string SuccessorPurpose = "tessera.refresh-successor.v1";

    public async Task<(RefreshSuccess? Success, OAuthFailure? Failure)> RefreshAsync(RefreshRequest request, CancellationToken ct)
    {
        var client = request.Client;

        // 1. Find the session by the token's family part; anything else is unknown.
        if (!Handles.TryGetFamily(request.RefreshToken, out var family))
            return Fail(null, client, request, "malformed or unknown refresh token");
        var tokenHash = Handles.Hash(request.RefreshToken);
        var familyHash = Handles.Hash(family);
        // The embedded store may hold a copy of the session whose current token this is (with its user), which saves the
        // read. A copy can be out of date, so it is only ever acted on through the compare-and-swap of step 7, which
        // fails unless the token is still current, the session live and unchanged and the user at the version the copy
        // shows; any other outcome is decided again on a read (below), so a copy never refuses, replays or detects
        // reuse. Clients whose refresh ends in another write (no rotation, a per-session rate limit) never use one.
        var rotates = client.Refresh.Rotate || client.IsPublic;
        var found = rotates && client.Refresh.MaxRefreshesPerMinute is null ? store.Sessions.FindCopyByCurrentToken(tokenHash) : null;
        var isCopy = found is not null;
        // Otherwise the session and its user in one read.
        found ??= await store.Sessions.FindByFamilyWithUserAsync(familyHash, ct);
        if (found is null)
            return Fail(null, client, request, "unknown refresh token");

        for (var attempt = 0; ; attempt++)
        {
            var (session, user) = found;
            var now = time.GetUtcNow();
            var verdict = await DecideAsync(session, user, request, tokenHash, now);
            if (isCopy && (verdict.Outcome != Outcome.Proceed || verdict.ReplayedToken is not null))
            {
                // Only a rotation is checked against the store at commit; everything else is decided on a read.
                found = await store.Sessions.FindByFamilyWithUserAsync(familyHash, ct);
                if (found is null)
                    return Fail(null, client, request, "unknown refresh token");
                isCopy = false;
                attempt--;
                continue;
            }

            switch (verdict.Outcome)
            {
                case Outcome.Refuse:
                    return await FailAudited(session, client, request, verdict.Reason!, ct);
                case Outcome.Reuse:
                    return await ReuseAsync(session, client, request, verdict.Reason!, ct);
                case Outcome.ScopeExceeded:
                    await store.Audit.AppendAsync(Event(AuditTypes.RefreshRefused, session, request, verdict.Reason), ct);
                    return (null, new OAuthFailure(OAuthErrors.InvalidScope, "The requested scope exceeds the scope granted by the resource owner."));
            }

            var effective = verdict.Scopes!;
            if (verdict.ReplayedToken is { } replayedToken)
            {
                await AuditNarrowedAsync(verdict, session, request, ct);
                await store.Audit.AppendAsync(Event(AuditTypes.RefreshRetried, session, request, "same successor returned inside the retry window"), ct);
                return (new RefreshSuccess(session, user!, replayedToken, effective, Remaining(session, now), Replayed: true), null);
            }

            // Optional per-session rate limit; a refused burst does not consume the token.
            if (client.Refresh.MaxRefreshesPerMinute is { } perMinute && !await store.Sessions.TryCountRefreshAsync(session.Id, now, perMinute, ct))
            {
                await store.Audit.AppendAsync(Event(AuditTypes.RefreshRefused, session, request, "refresh rate limit"), ct);
                return (null, new OAuthFailure(OAuthErrors.InvalidRequest, "Too many refresh requests for this session; retry later.", Status: 429));
            }

            var idle = client.Refresh.IdleLifetime ?? options.RefreshIdleLifetime;
            var newIdle = Min(now + idle, session.AbsoluteExpiresAt);

            if (!rotates)
            {
                if (!await store.Sessions.TouchAsync(session.Id, now, newIdle, request.IpAddress, request.UserAgent, ct))
                    return await FailAudited(session, client, request, "session revoked during refresh", ct);
                await AuditNarrowedAsync(verdict, session, request, ct);
                await store.Audit.AppendAsync(Event(AuditTypes.Refreshed, session, request, "refresh without rotation"), ct);
                var touched = session with { IdleExpiresAt = newIdle, LastUsedAt = now };
                return (new RefreshSuccess(touched, user!, request.RefreshToken, effective, Remaining(touched, now), false), null);
            }

            // 7. Compare-and-swap: exactly one concurrent caller rotates; the others re-read and take the retry path.
            //    The session row and the user must still be at the versions every check above saw (a session touched
            //    or a user disabled, locked or changed since the read makes the swap fail, and the re-read sees why).
            var successor = Handles.NewRefreshToken(family);
            var rotation = new Rotation(session.Id, tokenHash, Handles.Hash(successor),
                protector.Protect(System.Text.Encoding.UTF8.GetBytes(successor), SuccessorPurpose + session.Id),
                now, newIdle, request.IpAddress, request.UserAgent,
                Event(AuditTypes.Refreshed, session, request, null), ExpectedUserVersion: user!.Version, ExpectedSessionVersion: session.Version);
            if (await store.Sessions.TryRotateAsync(rotation, ct) == RotationOutcome.Rotated)
            {
                // Audited once the outcome is final, so a lost swap and its second pass do not log it twice.
                await AuditNarrowedAsync(verdict, session, request, ct);
                var rotated = session with { IdleExpiresAt = newIdle, LastUsedAt = now };
                return (new RefreshSuccess(rotated, user, successor, effective, Remaining(rotated, now), false), null);
            }

            // An out-of-date copy is not a lost race: read, and decide again.
            if (isCopy)
                attempt--;
            else if (attempt >= 2)
                return await FailAudited(session, client, request, "lost the rotation race repeatedly", ct);
            isCopy = false;
            found = await store.Sessions.FindByFamilyWithUserAsync(familyHash, ct);
            if (found is null)
                return Fail(null, client, request, "session disappeared during refresh");
        }
    }

    private enum Outcome { Proceed, Refuse, Reuse, ScopeExceeded }

    /// <summary>What the checks concluded; <see cref="ReplayedToken"/> set on a proceed means the retry-window replay.</summary>
    private readonly record struct Verdict(Outcome Outcome, string? Reason = null, List<string>? Scopes = null, string? Narrowed = null, string? ReplayedToken = null);

    private static Verdict Refuse(string reason) => new(Outcome.Refuse, reason);

    /// <summary>
    /// Steps 2 to 6 of the state machine on one snapshot of the session and its user. No side effects here except the
    /// policy hook, so a verdict taken on an out-of-date copy can be dropped and taken again on a read.
    /// </summary>
    private async Task<Verdict> DecideAsync(Session session, User? user, RefreshRequest request, byte[] tokenHash, DateTimeOffset now)
    {
        var client = request.Client;

        // 2. RFC 6749 §6: the authorization server MUST "authenticate the client if client authentication is included and
        //    ensure that the refresh token was issued to the authenticated client".
        if (session.ClientId != client.Id)
            return Refuse("refresh token belongs to another client");

        // 4 (first half). A revoked session stays dead whatever token is shown.
        if (session.RevokedAt is not null)
            return Refuse($"session revoked ({session.RevokedReason})");

        // 3. Which token of the family is this?
        var isCurrent = Handles.HashEquals(tokenHash, session.CurrentTokenHash);
        var isPrevious = !isCurrent && Handles.HashEquals(tokenHash, session.PreviousTokenHash);
        var window = client.Refresh.RetryWindow ?? options.RefreshRetryWindow;
        string? replayedToken = null;
        if (isPrevious)
        {
            // The same successor again, while the window is open and the successor was not used yet
            // (using it would have moved it to "previous" and dropped the encrypted copy).
            if (session.PreviousConsumedAt is { } consumedAt && now - consumedAt <= window && session.ProtectedCurrentToken is { } copy)
                replayedToken = protector.UnprotectString(copy, SuccessorPurpose + session.Id);
            if (replayedToken is null)
                return new Verdict(Outcome.Reuse, "rotated refresh token presented again after its retry window or after its successor was used");
        }
        else if (!isCurrent)
        {
            // RFC 9700 §4.14.2: a refresh token of this family that is neither current nor just-rotated is reuse.
            return new Verdict(Outcome.Reuse, "refresh token of this session presented after it was rotated");
        }

        // 4. Lifetimes, account state, the user's "revoked before" watermark.
        if (now >= session.AbsoluteExpiresAt)
            return Refuse("session past its absolute lifetime");
        if (now >= session.IdleExpiresAt)
            return Refuse("session idle-expired");
        if (user is null)
            return Refuse("user no longer exists");
        if (user.Disabled)
            return Refuse("user disabled");
        if (user.IsLocked(now))
            return Refuse("user locked");
        if (user.RevokedBefore is { } watermark && session.CreatedAt < watermark)
            return Refuse("session started before the user's revoked-before watermark");

        // 5. Sender binding, RFC 9449 §5: a bound session's refresh needs a proof with the same key.
        if (session.DpopJkt is not null && !string.Equals(session.DpopJkt, request.DpopJkt, StringComparison.Ordinal))
            return Refuse(request.DpopJkt is null ? "DPoP-bound session refreshed without a proof" : "DPoP proof made with another key");

        // 6. Scopes: RFC 6749 §6 "MUST NOT include any scope not originally granted"; then what the
        //    client and the user may have today.
        var requested = request.RequestedScopes ?? session.Scopes;
        if (requested.Any(s => !session.Scopes.Contains(s)))
            return new Verdict(Outcome.ScopeExceeded, "requested scope exceeds the grant");
        if (!client.Scopes.Contains(Scopes.OfflineAccess) && !client.Refresh.IssueWithoutOfflineAccess && session.Scopes.Contains(Scopes.OfflineAccess))
            return Refuse("client may no longer have offline_access");
        var effective = requested
            .Where(s => client.Scopes.Contains(s))
            .Where(s => Scopes.Identity.Contains(s) || user.AllowedScopes is null || user.AllowedScopes.Contains(s))
            .ToList();
        if (effective.Count == 0 || (requested.Any(s => s != Scopes.OfflineAccess) && effective.All(s => s == Scopes.OfflineAccess)))
            return Refuse("no requested scope is still permitted");

        var context = new RefreshValidationContext
        {
            Client = client, User = user, Session = session, IpAddress = request.IpAddress, UserAgent = request.UserAgent, Scopes = effective,
        };
        await events.ValidateRefresh(context);
        if (context.RejectReason is { } policyReason)
            return Refuse("policy: " + policyReason);
        effective = context.Scopes.Where(effective.Contains).ToList();
        if (effective.Count == 0)
            return Refuse("policy removed every scope");
        return new Verdict(Outcome.Proceed, Scopes: effective, Narrowed: context.NarrowReason, ReplayedToken: replayedToken);
    }

    private async Task AuditNarrowedAsync(Verdict verdict, Session session, RefreshRequest request, CancellationToken ct)
    {
        if (verdict.Narrowed is { } narrowed)
            await store.Audit.AppendAsync(Event(AuditTypes.RefreshNarrowed, session, request, "policy: " + narrowed), ct);
    }

    private static TimeSpan Remaining(Session s, DateTimeOffset now) => Min(s.IdleExpiresAt, s.AbsoluteExpiresAt) - now;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private async Task<(RefreshSuccess?, OAuthFailure?)> ReuseAsync(Session session, Client client, RefreshRequest request, string reason, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (await store.Sessions.RevokeAsync(session.Id, now, RevocationReasons.Reuse, ct))
        {
            await store.Audit.AppendAsync(Event(AuditTypes.ReuseDetected, session, request, reason), ct);
            await revocations.SessionRevokedAsync(session, RevocationReasons.Reuse, now, ct);
        }
        return (null, InvalidGrant);
    }

    private async Task<(RefreshSuccess?, OAuthFailure?)> FailAudited(Session session, Client client, RefreshRequest request, string reason, CancellationToken ct)
    {
        await store.Audit.AppendAsync(Event(AuditTypes.RefreshRefused, session, request, reason), ct);
        return (null, InvalidGrant);
    }

    private (RefreshSuccess?, OAuthFailure?) Fail(Session? session, Client client, RefreshRequest request, string reason) =>
        (null, InvalidGrant with { AuditReason = reason });

    private AuditEvent Event(string type, Session session, RefreshRequest request, string? reason) => new()
    {
        At = time.GetUtcNow(),
        Type = type,
        UserId = session.UserId,
        ClientId = request.Client.Id,
        SessionId = session.Id,
        IpAddress = request.IpAddress,
        Reason = reason,
    };

    private static readonly OAuthFailure InvalidGrant = new(OAuthErrors.InvalidGrant, "The refresh token is invalid, expired or revoked.");
}
