namespace Tessera.Core.Users;

public sealed record User
{
    public required string Id { get; init; }
    public required string Username { get; init; }
    public string? PasswordHash { get; init; }
    public string? Name { get; init; }
    public string? Email { get; init; }
    public bool Disabled { get; init; }
    public DateTimeOffset? LockedUntil { get; init; }

    /// <summary>Every session that started before this instant is void ("sign out everywhere").</summary>
    public DateTimeOffset? RevokedBefore { get; init; }

    /// <summary>Scopes beyond the OpenID ones this user may be granted; null means no restriction beyond the client's.</summary>
    public IReadOnlyList<string>? AllowedScopes { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public bool IsLocked(DateTimeOffset now) => LockedUntil is { } until && until > now;
}
