namespace Tessera.Bff;

/// <summary>Which browser-app pattern of draft-ietf-oauth-browser-based-apps the backend offers.</summary>
public enum BffMode
{
    /// <summary>§6.1 backend-for-frontend: the browser never sees a token; API calls go through the proxy.</summary>
    Bff,

    /// <summary>§6.2 token-mediating backend: as <see cref="Bff"/>, plus <c>GET /bff/token</c> hands the SPA short-lived access tokens (never the refresh token).</summary>
    TokenMediating,
}

/// <summary>
/// Settings of <c>AddTesseraBff()</c>. Every property has a safe default except the four that say who the
/// backend is: <see cref="Authority"/>, <see cref="ClientId"/>, <see cref="ClientSecret"/> and <see cref="Scopes"/>.
/// They are validated when the host starts; a bad value stops it with a message that says what to change.
/// </summary>
public sealed class TesseraBffOptions
{
    /// <summary>Tessera's issuer URL. https, or http on a loopback address for local development.</summary>
    public string Authority { get; set; } = "";

    /// <summary>The backend's client id: a confidential client with the authorization_code and refresh_token grants.</summary>
    public string ClientId { get; set; } = "";

    /// <summary>The client secret (<c>client_secret_basic</c>). Keep it out of source control.</summary>
    public string ClientSecret { get; set; } = "";

    /// <summary>Scopes asked for at sign-in. <c>offline_access</c> gets the refresh token that keeps the session alive.</summary>
    public IList<string> Scopes { get; set; } = ["openid", "profile", "offline_access"];

    /// <summary>RFC 8707 resource indicator sent at sign-in: the audience of the session's access tokens. Optional.</summary>
    public string? Resource { get; set; }

    /// <summary>
    /// The proxy's allow-list: local path prefix (for example <c>/api</c>) → destination base URL (for example
    /// <c>https://api.example.com/v1</c>). <c>/api/orders?x=1</c> is forwarded to <c>https://api.example.com/v1/orders?x=1</c>.
    /// Nothing else is ever proxied.
    /// </summary>
    public IDictionary<string, string> Routes { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary><see cref="BffMode.Bff"/> (default) or <see cref="BffMode.TokenMediating"/>.</summary>
    public BffMode Mode { get; set; } = BffMode.Bff;

    /// <summary>
    /// Refresh the access token this long before it expires (default 30 s). For very short tokens the skew is at most
    /// half the token's lifetime, so a 5-second token is refreshed after 2.5 seconds, not on every call.
    /// </summary>
    public TimeSpan RefreshBeforeExpiry { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Upper bound of a server-side session (default 14 days); Tessera's <c>refresh_expires_in</c> shortens it.</summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>SQLite file of the server-side session store (default <c>bff-sessions.db</c> in the working directory).</summary>
    public string SessionDatabasePath { get; set; } = "bff-sessions.db";

    /// <summary>Cookie name; on https it gets the <c>__Host-</c> prefix (Secure, Path=/, no Domain).</summary>
    public string CookieName { get; set; } = "tessera-bff";

    /// <summary>The redirect URI registered at Tessera. Default: <c>{scheme}://{host}/bff/callback</c> of the request.</summary>
    public string? RedirectUri { get; set; }

    /// <summary>ID-token claims <c>/bff/user</c> shows the SPA. Never a token.</summary>
    public IList<string> UserClaims { get; set; } = ["sub", "name", "preferred_username", "email", "auth_time"];

    /// <summary>
    /// Signature algorithms accepted for ID and logout tokens. Asymmetric only: <c>none</c> and HMAC are never accepted.
    /// Add <c>EdDSA</c> when Tessera signs this client's tokens with Ed25519.
    /// </summary>
    public IList<string> SigningAlgorithms { get; set; } = ["ES256", "ES384", "ES512", "PS256", "RS256"];

    /// <summary>Clock skew allowed when checking ID and logout token times (default 1 minute).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a sign-in may take from <c>/bff/login</c> to the callback (default 10 minutes).</summary>
    public TimeSpan LoginTimeout { get; set; } = TimeSpan.FromMinutes(10);

    internal IEnumerable<string> Validate()
    {
        if (!Uri.TryCreate(Authority, UriKind.Absolute, out var authority))
            yield return "Authority must be Tessera's issuer URL, for example https://login.example.com.";
        else if (authority.Scheme != Uri.UriSchemeHttps && !(authority.Scheme == Uri.UriSchemeHttp && authority.IsLoopback))
            yield return "Authority must use https (plain http is allowed only on a loopback address).";
        if (string.IsNullOrWhiteSpace(ClientId)) yield return "ClientId is required.";
        if (string.IsNullOrEmpty(ClientSecret)) yield return "ClientSecret is required: the backend is a confidential client.";
        if (!Scopes.Contains("openid")) yield return "Scopes must contain openid.";
        if (Resource is not null && !Uri.TryCreate(Resource, UriKind.Absolute, out _)) yield return "Resource must be an absolute URI.";
        if (RefreshBeforeExpiry < TimeSpan.Zero) yield return "RefreshBeforeExpiry must not be negative.";
        if (SessionLifetime <= TimeSpan.Zero) yield return "SessionLifetime must be positive.";
        if (string.IsNullOrWhiteSpace(SessionDatabasePath)) yield return "SessionDatabasePath is required.";
        if (string.IsNullOrWhiteSpace(CookieName) || CookieName.StartsWith("__", StringComparison.Ordinal) || CookieName.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
            yield return "CookieName must be letters, digits, '-', '_' or '.', without a __ prefix (the __Host- prefix is added on https).";
        if (RedirectUri is not null && !Uri.TryCreate(RedirectUri, UriKind.Absolute, out _)) yield return "RedirectUri must be an absolute URI.";
        if (SigningAlgorithms.Count == 0 || SigningAlgorithms.Any(a => a.StartsWith("HS", StringComparison.OrdinalIgnoreCase) || a.Equals("none", StringComparison.OrdinalIgnoreCase)))
            yield return "SigningAlgorithms must list asymmetric algorithms only (no none, no HS*).";
        foreach (var (prefix, destination) in Routes)
        {
            foreach (var problem in Proxy.ProxyRoute.Check(prefix, destination)) yield return problem;
        }
    }
}
