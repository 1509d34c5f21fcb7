namespace Tessera.Core;

/// <summary>Server-wide settings, bound from the <c>Tessera</c> configuration section. Every default is documented here.</summary>
public sealed class TesseraOptions
{
    /// <summary>The issuer identifier (RFC 8414 §2): https URL, no query or fragment. Default: the listen URL.</summary>
    public string? Issuer { get; set; }

    /// <summary>Access-token lifetime unless a client overrides it. Default 5 minutes.</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Authorization-code lifetime. Default 60 seconds.</summary>
    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Refresh sessions' sliding inactivity window. Default 14 days.</summary>
    public TimeSpan RefreshIdleLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>Refresh sessions' absolute lifetime from the grant. Default 90 days.</summary>
    public TimeSpan RefreshAbsoluteLifetime { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How long a just-rotated refresh token still returns the same successor. Default 30 seconds.</summary>
    public TimeSpan RefreshRetryWindow { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long ended sessions stay listed (and stored) after they end. Default 30 days.</summary>
    public TimeSpan EndedSessionRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Allowed clock skew when checking our own JWTs (userinfo, introspection). Default 30 seconds.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a signing key signs before the next one takes over. Default 90 days.</summary>
    public TimeSpan SigningKeyLifetime { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How long before it signs a new key is published in the JWKS, so every cache has it in time. Default 14 days.</summary>
    public TimeSpan SigningKeyAnnouncement { get; set; } = TimeSpan.FromDays(14);

    /// <summary>How long a replaced key stays published: longer than any token it signed lives. Default 1 day.</summary>
    public TimeSpan SigningKeyRetention { get; set; } = TimeSpan.FromDays(1);

    public IEnumerable<string> Validate()
    {
        if (SigningKeyAnnouncement >= SigningKeyLifetime || SigningKeyAnnouncement < TimeSpan.Zero)
            yield return "Tessera:SigningKeyAnnouncement must be shorter than Tessera:SigningKeyLifetime.";
        if (SigningKeyRetention < AccessTokenLifetime)
            yield return "Tessera:SigningKeyRetention must be at least Tessera:AccessTokenLifetime, or tokens outlive the key that checks them.";
        if (AccessTokenLifetime <= TimeSpan.Zero || AccessTokenLifetime > TimeSpan.FromHours(24))
            yield return "Tessera:AccessTokenLifetime must be between 00:00:01 and 1.00:00:00 (access tokens are short-lived).";
        if (AuthorizationCodeLifetime <= TimeSpan.Zero || AuthorizationCodeLifetime > TimeSpan.FromMinutes(10))
            yield return "Tessera:AuthorizationCodeLifetime must be between 00:00:01 and 00:10:00 (RFC 6749 §4.1.2 recommends at most 10 minutes).";
        if (RefreshIdleLifetime <= TimeSpan.Zero)
            yield return "Tessera:RefreshIdleLifetime must be positive, for example 14.00:00:00.";
        if (RefreshAbsoluteLifetime < RefreshIdleLifetime)
            yield return "Tessera:RefreshAbsoluteLifetime must be at least Tessera:RefreshIdleLifetime.";
        if (RefreshRetryWindow < TimeSpan.Zero || RefreshRetryWindow > TimeSpan.FromMinutes(5))
            yield return "Tessera:RefreshRetryWindow must be between 00:00:00 and 00:05:00.";
        if (Issuer is not null && (!Uri.TryCreate(Issuer, UriKind.Absolute, out var u) || u.Query.Length > 0 || u.Fragment.Length > 0 || (u.Scheme != "https" && u.Scheme != "http")))
            yield return "Tessera:Issuer must be an absolute http(s) URL with no query or fragment, for example https://id.example.com.";
    }
}
