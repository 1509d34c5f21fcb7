namespace Tessera.Core.Sessions;

/// <summary>
/// A token family: what one user granted one client. Its refresh-token state lives on the row itself
/// (current and previous token hashes), so rotating is a compare-and-swap of one row and the number of
/// rows is bounded by sessions, not by how often they refresh.
/// </summary>
public sealed record Session
{
    public required string Id { get; init; }
    public required string UserId { get; init; }
    public required string ClientId { get; init; }
    public required IReadOnlyList<string> Scopes { get; init; }
    public string? Resource { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset AuthTime { get; init; }
    public DateTimeOffset LastUsedAt { get; init; }
    public required DateTimeOffset IdleExpiresAt { get; init; }
    public required DateTimeOffset AbsoluteExpiresAt { get; init; }
    public DateTimeOffset? RevokedAt { get; init; }
    public string? RevokedReason { get; init; }
    public string? UserAgent { get; init; }
    public string? IpAddress { get; init; }

    /// <summary>SHA-256 of the family part every refresh token of this session carries; null when no refresh token was issued.</summary>
    public byte[]? FamilyHash { get; init; }

    /// <summary>SHA-256 of the refresh token that is valid now.</summary>
    public byte[]? CurrentTokenHash { get; init; }

    /// <summary>SHA-256 of the token the current one replaced, kept so a retry inside the window can be recognised.</summary>
    public byte[]? PreviousTokenHash { get; init; }
    public DateTimeOffset? PreviousConsumedAt { get; init; }

    /// <summary>The current token, encrypted, kept only while the retry window of the previous one is open.</summary>
    public byte[]? ProtectedCurrentToken { get; init; }

    /// <summary>Refreshes counted in the current rate-limit minute.</summary>
    public int RefreshCount { get; init; }
    public DateTimeOffset? RefreshWindowStart { get; init; }

    /// <summary>RFC 9449 §5: the JWK thumbprint every refresh of this (public client's) session must prove possession of.</summary>
    public string? DpopJkt { get; init; }

    /// <summary>
    /// Goes up by one with every change of the session's tokens, lifetimes or last use (rotation, touch, revocation);
    /// not with the per-minute refresh counters or when pruning erases the retry-window copy.
    /// <see cref="Storage.Rotation.ExpectedSessionVersion"/> makes a rotation fail unless the row is still the one the
    /// caller decided on.
    /// </summary>
    public long Version { get; init; }

    public bool IsActive(DateTimeOffset now) => RevokedAt is null && now < IdleExpiresAt && now < AbsoluteExpiresAt;
}
