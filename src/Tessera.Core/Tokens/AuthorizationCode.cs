namespace Tessera.Core.Tokens;

/// <summary>What an authorization code stands for. Stored under the code's SHA-256; one-time; short-lived.</summary>
public sealed record AuthorizationCode
{
    public required byte[] Hash { get; init; }
    public required string ClientId { get; init; }
    public required string UserId { get; init; }
    public required string RedirectUri { get; init; }
    public required IReadOnlyList<string> Scopes { get; init; }
    public string? Resource { get; init; }
    public string? CodeChallenge { get; init; }
    public string? Nonce { get; init; }
    public required DateTimeOffset AuthTime { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
    public DateTimeOffset? RedeemedAt { get; init; }
    /// <summary>The session the first redemption created, so a replay can revoke it (RFC 6749 §4.1.2).</summary>
    public string? SessionId { get; init; }
    /// <summary>RFC 9449 §10: the key the token request must prove (from the authorization request's dpop_jkt).</summary>
    public string? DpopJkt { get; init; }
    /// <summary>How the user authenticated (OIDC Core §2 amr): "pwd", plus "otp" with a second factor.</summary>
    public IReadOnlyList<string>? Amr { get; init; }
}
