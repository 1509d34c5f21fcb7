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
        // The session and its user in one read; the user is checked in step 4.
        var found = await store.Sessions.FindByFamilyWithUserAsync(familyHash, ct);
        if (found is null)
            return Fail(null, client, request, "unknown refresh token");
        var (session, user) = found;

        // 2. RFC 6749 §6: the authorization server MUST "authenticate the client if client authentication is included and
        //    ensure that the refresh token was issued to the authenticated client".
        if (session.ClientId != client.Id)
            return await FailAudited(session, client, request, "refresh token belongs to another client", ct);

        for (var attempt = 0; ; attempt++)
        {
            var now = time.GetUtcNow();

            // 4 (first half). A revoked session stays dead whatever token is shown.
            if (session.RevokedAt is not null)
                return await FailAudited(session, client, request, $"session revoked ({session.RevokedReason})", ct);

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
                    return await ReuseAsync(session, client, request, "rotated refresh token presented again after its retry window or after its successor was used", ct);
            }
            else if (!isCurrent)
            {
                // RFC 9700 §4.14.2: a refresh token of this family that is neither current nor just-rotated is reuse.
                return await ReuseAsync(session, client, request, "refresh token of this session presented after it was rotated", ct);
            }

            // 4. Lifetimes, account state, the user's "revoked before" watermark.
            if (now >= session.AbsoluteExpiresAt)
                return await FailAudited(session, client, request, "session past its absolute lifetime", ct);
            if (now >= session.IdleExpiresAt)
                return await FailAudited(session, client, request, "session idle-expired", ct);
            if (user is null)
                return await FailAudited(session, client, request, "user no longer exists", ct);
            if (user.Disabled)
                return await FailAudited(session, client, request, "user disabled", ct);
            if (user.IsLocked(now))
                return await FailAudited(session, client, request, "user locked", ct);
            if (user.RevokedBefore is { } watermark && session.CreatedAt < watermark)
                return await FailAudited(session, client, request, "session started before the user's revoked-before watermark", ct);

            // 5. Sender binding, RFC 9449 §5: a bound session's refresh needs a proof with the same key.
            if (session.DpopJkt is not null && !string.Equals(session.DpopJkt, request.DpopJkt, StringComparison.Ordinal))
                return await FailAudited(session, client, request, request.DpopJkt is null ? "DPoP-bound session refreshed without a proof" : "DPoP proof made with another key", ct);

            // 6. Scopes: RFC 6749 §6 "MUST NOT include any scope not originally granted"; then what the
            //    client and the user may have today.
            var requested = request.RequestedScopes ?? session.Scopes;
            if (requested.Any(s => !session.Scopes.Contains(s)))
            {
                await store.Audit.AppendAsync(Event(AuditTypes.RefreshRefused, session, request, "requested scope exceeds the grant"), ct);
                return (null, new OAuthFailure(OAuthErrors.InvalidScope, "The requested scope exceeds the scope granted by the resource owner."));
            }
            if (!client.Scopes.Contains(Scopes.OfflineAccess) && !client.Refresh.IssueWithoutOfflineAccess && session.Scopes.Contains(Scopes.OfflineAccess))
                return await FailAudited(session, client, request, "client may no longer have offline_access", ct);
            var effective = requested
                .Where(s => client.Scopes.Contains(s))
                .Where(s => Scopes.Identity.Contains(s) || user.AllowedScopes is null || user.AllowedScopes.Contains(s))
                .ToList();
            if (effective.Count == 0 || (requested.Any(s => s != Scopes.OfflineAccess) && effective.All(s => s == Scopes.OfflineAccess)))
                return await FailAudited(session, client, request, "no requested scope is still permitted", ct);

            var context = new RefreshValidationContext
            {
                Client = client, User = user, Session = session, IpAddress = request.IpAddress, UserAgent = request.UserAgent, Scopes = effective,
            };
            await events.ValidateRefresh(context);
            if (context.RejectReason is { } policyReason)
                return await FailAudited(session, client, request, "policy: " + policyReason, ct);
            effective = context.Scopes.Where(effective.Contains).ToList();
            if (effective.Count == 0)
                return await FailAudited(session, client, request, "policy removed every scope", ct);
            if (context.NarrowReason is { } narrowed)
                await store.Audit.AppendAsync(Event(AuditTypes.RefreshNarrowed, session, request, "policy: " + narrowed), ct);

            if (replayedToken is not null)
            {
                await store.Audit.AppendAsync(Event(AuditTypes.RefreshRetried, session, request, "same successor returned inside the retry window"), ct);
                return (new RefreshSuccess(session, user, replayedToken, effective, Remaining(session, now), Replayed: true), null);
            }

            // Optional per-session rate limit; a refused burst does not consume the token.
            if (client.Refresh.MaxRefreshesPerMinute is { } perMinute && !await store.Sessions.TryCountRefreshAsync(session.Id, now, perMinute, ct))
            {
                await store.Audit.AppendAsync(Event(AuditTypes.RefreshRefused, session, request, "refresh rate limit"), ct);
                return (null, new OAuthFailure(OAuthErrors.InvalidRequest, "Too many refresh requests for this session; retry later.", Status: 429));
            }

            var idle = client.Refresh.IdleLifetime ?? options.RefreshIdleLifetime;
            var newIdle = Min(now + idle, session.AbsoluteExpiresAt);

            if (!client.Refresh.Rotate && !client.IsPublic)
            {
                if (!await store.Sessions.TouchAsync(session.Id, now, newIdle, request.IpAddress, request.UserAgent, ct))
                    return await FailAudited(session, client, request, "session revoked during refresh", ct);
                await store.Audit.AppendAsync(Event(AuditTypes.Refreshed, session, request, "refresh without rotation"), ct);
                var touched = session with { IdleExpiresAt = newIdle, LastUsedAt = now };
                return (new RefreshSuccess(touched, user, request.RefreshToken, effective, Remaining(touched, now), false), null);
            }

            // 7. Compare-and-swap: exactly one concurrent caller rotates; the others re-read and take the retry path.
            var successor = Handles.NewRefreshToken(family);
            var rotation = new Rotation(session.Id, tokenHash, Handles.Hash(successor),
                protector.Protect(System.Text.Encoding.UTF8.GetBytes(successor), SuccessorPurpose + session.Id),
                now, newIdle, request.IpAddress, request.UserAgent,
                Event(AuditTypes.Refreshed, session, request, null));
            if (await store.Sessions.TryRotateAsync(rotation, ct) == RotationOutcome.Rotated)
            {
                var rotated = session with { IdleExpiresAt = newIdle, LastUsedAt = now };
                return (new RefreshSuccess(rotated, user, successor, effective, Remaining(rotated, now), false), null);
            }

            if (attempt >= 2)
                return await FailAudited(session, client, request, "lost the rotation race repeatedly", ct);
            found = await store.Sessions.FindByFamilyWithUserAsync(familyHash, ct);
            if (found is null)
                return Fail(null, client, request, "session disappeared during refresh");
            (session, user) = found;
        }
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
