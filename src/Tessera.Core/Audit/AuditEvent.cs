namespace Tessera.Core.Audit;

/// <summary>An append-only record of something that happened to a token, session, user or client. Never holds a secret.</summary>
public sealed record AuditEvent
{
    public long Id { get; init; }
    public required DateTimeOffset At { get; init; }
    public required string Type { get; init; }
    public string? UserId { get; init; }
    public string? ClientId { get; init; }
    public string? SessionId { get; init; }
    public string? IpAddress { get; init; }
    public string? Reason { get; init; }
}

public static class AuditTypes
{
    public const string TokenIssued = "token.issued";
    public const string Refreshed = "refresh.rotated";
    public const string RefreshRetried = "refresh.retry_window_replay";
    public const string ReuseDetected = "refresh.reuse_detected";
    public const string RefreshRefused = "refresh.refused";
    public const string RefreshNarrowed = "refresh.narrowed";
    public const string SessionRevoked = "session.revoked";
    public const string CodeReplayed = "code.replayed";
    public const string LoginSucceeded = "login.succeeded";
    public const string LoginFailed = "login.failed";
    public const string ClientAuthFailed = "client.auth_failed";
    /// <summary>Failures from one address (any username) started a pause of its sign-ins.</summary>
    public const string LoginThrottled = "login.throttled";
    /// <summary>Failures from one address (any username) started a temporary lockout of its sign-ins.</summary>
    public const string LoginLockedOut = "login.locked_out";
    /// <summary>Failures from one address (with a client id: of that client from that address) started a pause of client authentication.</summary>
    public const string ClientAuthThrottled = "client.auth_throttled";
    /// <summary>As <see cref="ClientAuthThrottled"/>, a temporary lockout.</summary>
    public const string ClientAuthLockedOut = "client.auth_locked_out";
    public const string UserChanged = "user.changed";
    public const string ClientChanged = "client.changed";
    public const string Pruned = "maintenance.pruned";
}

public sealed record AuditQuery
{
    public string? UserId { get; init; }
    public string? ClientId { get; init; }
    public string? SessionId { get; init; }
    public string? Type { get; init; }
    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }
    /// <summary>Return events with an id below this one (for paging backwards from the newest).</summary>
    public long? BeforeId { get; init; }
    public int Limit { get; init; } = 100;
}
