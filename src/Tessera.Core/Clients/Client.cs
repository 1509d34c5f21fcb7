namespace Tessera.Core.Clients;

/// <summary>A registered OAuth client. Immutable; the store replaces it whole.</summary>
public sealed record Client
{
    public required string Id { get; init; }
    public string DisplayName { get; init; } = "";

    /// <summary>SHA-256 of the client secret (generated secrets are high-entropy), or null for public clients.</summary>
    public byte[]? SecretHash { get; init; }

    /// <summary>
    /// When the secret was last rotated. Access tokens the client obtained before it (whole seconds, see
    /// <see cref="Sessions.RevocationTimes.AfterSecondOf"/>) are no longer active: they may have been obtained with the old secret.
    /// </summary>
    public DateTimeOffset? SecretRotatedAt { get; init; }

    /// <summary>A JWK Set of public keys for private_key_jwt authentication (RFC 7523), as JSON; null for secret or public clients.</summary>
    public string? Jwks { get; init; }

    /// <summary>Public clients (RFC 6749 §2.1) cannot keep a secret: they authenticate with <c>none</c> and must use PKCE.</summary>
    public bool IsPublic => SecretHash is null && Jwks is null;

    public IReadOnlyList<string> RedirectUris { get; init; } = [];
    public IReadOnlyList<string> PostLogoutRedirectUris { get; init; } = [];
    public IReadOnlyList<string> GrantTypes { get; init; } = [];

    /// <summary>Scopes this client may ever ask for.</summary>
    public IReadOnlyList<string> Scopes { get; init; } = [];

    /// <summary>Audiences (RFC 8707 resource indicators) this client may ask for; the first is the default.</summary>
    public IReadOnlyList<string> Resources { get; init; } = [];

    /// <summary>First-party clients skip the consent screen: the operator consented for the users.</summary>
    public bool FirstParty { get; init; }

    /// <summary>Native apps may use any port on a loopback redirect URI (RFC 8252 §7.3).</summary>
    public bool Native { get; init; }

    public TimeSpan? AccessTokenLifetime { get; init; }

    /// <summary>JWS algorithm of this client's ID, access and back-channel logout tokens: ES256 (default), RS256 for older libraries, or EdDSA (Ed25519).</summary>
    public string? SigningAlgorithm { get; init; }
    public RefreshPolicy Refresh { get; init; } = new();

    /// <summary>OIDC Back-Channel Logout 1.0: where to POST a logout token when one of this client's sessions ends.</summary>
    public string? BackchannelLogoutUri { get; init; }

    /// <summary>RP-initiated logout with an id_token_hint also revokes the session named by its <c>sid</c>.</summary>
    public bool LogoutRevokesSession { get; init; } = true;

    /// <summary>RFC 9449 <c>dpop_bound_access_tokens</c>: every token request must carry a DPoP proof.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>RFC 9449 §8: proofs must carry a fresh server nonce.</summary>
    public bool RequireDpopNonce { get; init; }

    public bool AllowsGrant(string grantType) => GrantTypes.Contains(grantType, StringComparer.Ordinal);
}

/// <summary>Per-client refresh-token policy. Null members take the server defaults.</summary>
public sealed record RefreshPolicy
{
    /// <summary>Sliding inactivity window; each refresh moves the idle expiry forward, never past the absolute one.</summary>
    public TimeSpan? IdleLifetime { get; init; }

    /// <summary>Hard cap counted from the session's start; rotation never extends it.</summary>
    public TimeSpan? AbsoluteLifetime { get; init; }

    /// <summary>How long a just-rotated token may be presented again to get the same successor.</summary>
    public TimeSpan? RetryWindow { get; init; }

    /// <summary>One-time use. May be turned off only for confidential clients.</summary>
    public bool Rotate { get; init; } = true;

    /// <summary>Issue a refresh token even without <c>offline_access</c> (for first-party apps that want it).</summary>
    public bool IssueWithoutOfflineAccess { get; init; }

    /// <summary>Maximum refreshes per session per minute; null means unlimited.</summary>
    public int? MaxRefreshesPerMinute { get; init; }
}
