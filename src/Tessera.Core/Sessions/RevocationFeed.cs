namespace Tessera.Core.Sessions;

/// <summary>
/// One entry of the revocation feed: a session that ended; or, with <see cref="RevokedBefore"/>, "every access token of
/// this user (or, with no user, of this client) issued before T". Resource servers drop the matching access tokens
/// before they expire.
/// </summary>
public sealed record RevocationEvent
{
    public long Id { get; init; }

    /// <summary>When the revocation happened (CAEP <c>event_timestamp</c>).</summary>
    public required DateTimeOffset At { get; init; }

    /// <summary>The user; null only for a client's watermark (<see cref="ClientId"/> with <see cref="RevokedBefore"/>).</summary>
    public string? UserId { get; init; }
    public string? SessionId { get; init; }
    public string? ClientId { get; init; }

    /// <summary>
    /// A watermark: access tokens of the subject whose <c>iat</c> (whole seconds) is before this instant's whole second
    /// are void. Published in whole seconds, so the publisher picks the instant (see <see cref="RevocationTimes"/>).
    /// </summary>
    public DateTimeOffset? RevokedBefore { get; init; }

    /// <summary>One of <see cref="RevocationReasons"/>; it also picks the CAEP event type of the SET.</summary>
    public required string Reason { get; init; }
}

/// <summary>The feed's storage: an ordered log plus each receiver's acknowledged position (RFC 8936 §2.4).</summary>
public interface IRevocationFeedStore
{
    Task<long> AppendAsync(RevocationEvent e, CancellationToken ct);
    Task<IReadOnlyList<RevocationEvent>> ReadAfterAsync(long afterId, int limit, CancellationToken ct);
    Task<long> GetCursorAsync(string receiverId, CancellationToken ct);
    /// <summary>Moves the receiver's position forward to <paramref name="upToId"/>; never backwards.</summary>
    Task AckAsync(string receiverId, long upToId, CancellationToken ct);
    /// <summary>Deletes events older than <paramref name="olderThan"/>, one bounded batch.</summary>
    Task<int> PruneAsync(DateTimeOffset olderThan, int batchSize, CancellationToken ct);
}
