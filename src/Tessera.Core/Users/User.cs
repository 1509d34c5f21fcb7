using System.Text.Json.Serialization;

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

    /// <summary>The TOTP (RFC 6238) shared secret, encrypted with the master key; null when the second factor is off.</summary>
    public byte[]? TotpSecret { get; init; }

    /// <summary>SHA-256 (Base64) of each unused recovery code.</summary>
    public IReadOnlyList<string>? RecoveryCodeHashes { get; init; }

    /// <summary>The last TOTP time step accepted, so a code works once.</summary>
    public long TotpLastStep { get; init; }

    /// <summary>Failed sign-ins since the last success; drives the growing sign-in delay.</summary>
    public int FailedLogins { get; init; }

    /// <summary>Sign-in refused until then (brute-force throttle). Unlike <see cref="LockedUntil"/> it does not end sessions.</summary>
    public DateTimeOffset? LoginBlockedUntil { get; init; }

    /// <summary>
    /// The stored row's version, for optimistic concurrency: <see cref="Storage.IUserStore.SaveAsync"/> writes only
    /// if the row still has this version, and increments it. Kept in its own column, not in the stored document.
    /// </summary>
    [JsonIgnore]
    public long Version { get; init; }

    /// <summary>After 5 failures, sign-in pauses 1 minute, doubling with each further failure, at most 1 hour.</summary>
    public User WithFailedLogin(DateTimeOffset now)
    {
        var failures = FailedLogins + 1;
        if (failures < 5) return this with { FailedLogins = failures };
        var minutes = Math.Min(60, 1 << Math.Min(failures - 5, 6));
        return this with { FailedLogins = failures, LoginBlockedUntil = now + TimeSpan.FromMinutes(minutes) };
    }

    public bool IsLocked(DateTimeOffset now) => LockedUntil is { } until && until > now;
}
