using Tessera.Core.Storage;

namespace Tessera.Core.Sessions;

/// <summary>
/// "Every session of this user that started before the watermark is over" (sign out everywhere, an operator revoking
/// all, disabling, resetting the password, deleting): one way to do it, shared by the account page and the admin
/// operations, so that the token endpoint and the resource servers agree on what ended.
/// </summary>
public static class UserSessionsRevocation
{
    /// <summary>
    /// Call after the user's <see cref="Users.User.RevokedBefore"/> = <paramref name="watermark"/> was saved (from
    /// <see cref="RevocationTimes.Watermark"/>). Revokes the sessions that are still live, then publishes the user's
    /// watermark and a CAEP session-revoked for each session that ended.
    /// <para>
    /// Access tokens carry <c>iat</c> in whole seconds, so the feed's watermark can only void the seconds <em>before</em>
    /// the watermark's own: voiding that second too would refuse a sign-in made right after (the same second). The
    /// per-session events void the old sessions' tokens of that second, by <c>sid</c>. The sessions are read after the
    /// watermark was saved and the sessions revoked, so a session that was being created meanwhile (and that the token
    /// endpoint will refuse, since it started before the watermark) gets its event too.
    /// </para>
    /// </summary>
    /// <returns>How many live sessions this call revoked.</returns>
    public static async Task<int> RevokeAllAsync(ITesseraStore store, IRevocationPublisher publisher, string userId, DateTimeOffset watermark, string reason, CancellationToken ct)
    {
        var revoked = await store.Sessions.RevokeByUserAsync(userId, watermark, reason, ct);
        // The sessions this call revoked (whatever their start: one may have started in the watermark's own millisecond),
        // and any still live that started before the watermark. Sessions that had ended before (revoked earlier, with
        // their own event then) need nothing more.
        var ended = (await store.Sessions.ListByUserAsync(userId, ct))
            .Where(s => s.RevokedAt >= watermark || (s.RevokedAt is null && s.CreatedAt < watermark))
            .ToList();
        // The watermark first: a receiver applies events in order, so once it refuses an old session's token it also
        // knows the watermark.
        await publisher.UserRevokedBeforeAsync(userId, watermark, reason, watermark, ct);
        foreach (var s in ended) await publisher.SessionRevokedAsync(s, reason, watermark, ct);
        return revoked;
    }
}
