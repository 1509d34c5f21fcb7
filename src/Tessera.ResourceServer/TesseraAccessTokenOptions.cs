using System.Net;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>Names and constants of the Tessera access-token scheme.</summary>
public static class TesseraAccessTokenDefaults
{
    /// <summary>The authentication scheme <see cref="TesseraAuthenticationBuilderExtensions.AddTesseraAccessTokens(Microsoft.AspNetCore.Authentication.AuthenticationBuilder, Action{TesseraAccessTokenOptions})"/> registers by default.</summary>
    public const string Scheme = "Tessera";

    /// <summary>RFC 9068 §2.1: the <c>typ</c> header of a JWT access token.</summary>
    public static readonly IReadOnlyList<string> AccessTokenTypes = ["at+jwt", "application/at+jwt"];

    /// <summary>RFC 8417 §2.3: the <c>typ</c> header of a Security Event Token.</summary>
    public static readonly IReadOnlyList<string> SecurityEventTokenTypes = ["secevent+jwt", "application/secevent+jwt"];

    /// <summary>Tessera's revocation feed (RFC 8936 poll-based delivery), relative to the authority.</summary>
    public const string FeedPath = "/connect/revocations";

    /// <summary>CAEP event types the feed carries.</summary>
    public const string SessionRevokedEvent = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string CredentialChangeEvent = "https://schemas.openid.net/secevent/caep/event-type/credential-change";

    /// <summary>Asymmetric JWS algorithms accepted by default. HMAC (<c>HS*</c>) and <c>none</c> can never be allowed.</summary>
    public static readonly IReadOnlyList<string> Algorithms =
    [
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
    ];
}

/// <summary>How an API accepts Tessera's access tokens (RFC 9068) and follows its revocation feed.</summary>
public sealed class TesseraAccessTokenOptions
{
    /// <summary>Tessera's issuer identifier, exactly as it appears in <c>iss</c> (for example <c>https://login.example.com</c>). Discovery metadata is read from it.</summary>
    public string? Authority { get; set; }

    /// <summary>This API's identifier: tokens must carry it in <c>aud</c>.</summary>
    public string? Audience { get; set; }

    /// <summary>
    /// When true (the default) the authority and its metadata must use HTTPS. Setting it to false allows plain HTTP,
    /// but only for a loopback authority (127.0.0.0/8, ::1, localhost): development and tests on one machine.
    /// </summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>Leeway for <c>exp</c>, <c>nbf</c> and <c>iat</c> between Tessera's clock and this one. Default 30 seconds, at most 5 minutes.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// JWS algorithms accepted for access tokens and revocation events. Asymmetric only: <c>none</c> and <c>HS*</c> are
    /// refused at startup. <c>EdDSA</c> (Ed25519, for clients Tessera signs for with EdDSA) is accepted only when added here.
    /// </summary>
    public IList<string> ValidAlgorithms { get; set; } = [.. TesseraAccessTokenDefaults.Algorithms];

    /// <summary>How many validated tokens are remembered (keyed by their SHA-256) so a repeated token is not verified again. 0 turns the cache off.</summary>
    public int CacheSize { get; set; } = 10_000;

    /// <summary>
    /// The longest lifetime of an access token Tessera issues to this API (Tessera:AccessTokenLifetime, or a client's
    /// own). A revocation is remembered this long (plus <see cref="ClockSkew"/>): every token it voids has expired by then.
    /// </summary>
    public TimeSpan MaxAccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Client id of this API as a revocation-feed receiver (a confidential client with the <c>tessera.revocations</c>
    /// scope). Setting it starts the poller. Tessera keeps one feed position per receiver, so give each running instance
    /// of the API its own receiver: instances sharing one would each see only part of the events.
    /// </summary>
    public string? FeedClientId { get; set; }

    /// <summary>The receiver's client secret (HTTP Basic authentication at the feed).</summary>
    public string? FeedClientSecret { get; set; }

    /// <summary>The feed's address; default <see cref="Authority"/> + <c>/connect/revocations</c>.</summary>
    public string? FeedEndpoint { get; set; }

    /// <summary>
    /// With <see cref="LongPoll"/> (the default) the feed holds each poll until an event arrives, so revocations land
    /// in well under a second and this is only the first wait after a failed poll (doubling up to 30 s). Without long
    /// polling, the time between two polls.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>RFC 8936 §2.4: ask the feed to hold a poll open until events are available (<c>returnImmediately: false</c>).</summary>
    public bool LongPoll { get; set; } = true;

    /// <summary>At most this many events per poll (1 to 1000).</summary>
    public int MaxEventsPerPoll { get; set; } = 100;

    /// <summary>DPoP (RFC 9449): whether DPoP-bound tokens are accepted, and how their proofs are checked.</summary>
    public TesseraDpopOptions Dpop { get; set; } = new();

    internal bool FeedEnabled => !string.IsNullOrEmpty(FeedClientId);

    internal string Issuer => Authority!;

    internal string MetadataAddress => Authority!.TrimEnd('/') + "/.well-known/openid-configuration";

    internal string ResolvedFeedEndpoint => FeedEndpoint ?? Authority!.TrimEnd('/') + TesseraAccessTokenDefaults.FeedPath;

    internal static bool IsForbiddenAlgorithm(string alg) =>
        string.IsNullOrWhiteSpace(alg) || alg.Equals("none", StringComparison.OrdinalIgnoreCase) || alg.StartsWith("HS", StringComparison.OrdinalIgnoreCase);

    internal static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.IdnHost, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>Everything wrong with these options, in words an operator can act on.</summary>
    internal IEnumerable<string> Problems()
    {
        if (string.IsNullOrWhiteSpace(Authority) || !Uri.TryCreate(Authority, UriKind.Absolute, out var authority) || authority.Query.Length > 0 || authority.Fragment.Length > 0)
        {
            yield return "Authority must be Tessera's issuer identifier, an absolute URL without query or fragment.";
        }
        else if (authority.Scheme != Uri.UriSchemeHttps)
        {
            if (authority.Scheme != Uri.UriSchemeHttp)
                yield return "Authority must be an https URL.";
            else if (RequireHttpsMetadata)
                yield return "Authority must use HTTPS (set RequireHttpsMetadata = false to allow plain HTTP to a loopback authority in development).";
            else if (!IsLoopback(authority))
                yield return "Plain HTTP is allowed only for a loopback authority (127.0.0.1, ::1, localhost); use HTTPS.";
        }
        if (string.IsNullOrWhiteSpace(Audience)) yield return "Audience (this API's identifier, as found in the tokens' aud) is required.";
        if (ClockSkew < TimeSpan.Zero || ClockSkew > TimeSpan.FromMinutes(5)) yield return "ClockSkew must be between 0 and 5 minutes.";
        if (MaxAccessTokenLifetime <= TimeSpan.Zero || MaxAccessTokenLifetime > TimeSpan.FromDays(1)) yield return "MaxAccessTokenLifetime must be between 1 second and 1 day.";
        if (CacheSize < 0) yield return "CacheSize cannot be negative (0 turns the cache off).";
        if (ValidAlgorithms is null || ValidAlgorithms.Count == 0) yield return "ValidAlgorithms must name at least one asymmetric algorithm.";
        else if (ValidAlgorithms.FirstOrDefault(IsForbiddenAlgorithm) is { } bad) yield return $"ValidAlgorithms cannot contain '{bad}': only asymmetric signatures are accepted.";
        if (Dpop is null) yield return "Dpop cannot be null.";
        else foreach (var problem in Dpop.Problems()) yield return problem;
        if (FeedEnabled)
        {
            if (string.IsNullOrEmpty(FeedClientSecret)) yield return "FeedClientSecret is required when FeedClientId is set.";
            if (FeedEndpoint is not null && (!Uri.TryCreate(FeedEndpoint, UriKind.Absolute, out var feed) || (feed.Scheme != Uri.UriSchemeHttps && !(feed.Scheme == Uri.UriSchemeHttp && !RequireHttpsMetadata && IsLoopback(feed)))))
                yield return "FeedEndpoint must be an https URL (or http to loopback with RequireHttpsMetadata = false).";
            if (PollInterval <= TimeSpan.Zero || PollInterval > TimeSpan.FromMinutes(5)) yield return "PollInterval must be between 1 ms and 5 minutes.";
            if (MaxEventsPerPoll is < 1 or > 1000) yield return "MaxEventsPerPoll must be between 1 and 1000.";
        }
        else if (!string.IsNullOrEmpty(FeedClientSecret))
        {
            yield return "FeedClientSecret is set but FeedClientId is not.";
        }
    }
}
