namespace Tessera.Core.Sessions;

/// <summary>
/// One entry of the revocation feed: a session that ended, or (with <see cref="RevokedBefore"/>) "every session of
/// this user that started before T". Resource servers drop the matching access tokens before they expire.
/// </summary>
public sealed record RevocationEvent
{
    public long Id { get; init; }
    public required DateTimeOffset At { get; init; }
    public required string UserId { get; init; }
    public string? SessionId { get; init; }
    public string? ClientId { get; init; }
    public DateTimeOffset? RevokedBefore { get; init; }
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
