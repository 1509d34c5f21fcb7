using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>Which authentication schemes an API accepts for Tessera's access tokens.</summary>
public enum TesseraDpopMode
{
    /// <summary>Bearer only (RFC 6750). A DPoP-bound token is still refused: it cannot be used as a bearer token.</summary>
    Disabled,

    /// <summary>Both: unbound tokens with <c>Bearer</c>, DPoP-bound tokens with <c>DPoP</c> and a proof (RFC 9449 §7.2). The default.</summary>
    Allowed,

    /// <summary>DPoP only: every token must be DPoP-bound and come with a proof; <c>Bearer</c> is not accepted.</summary>
    Required,
}

/// <summary>
/// How an API checks DPoP proofs (RFC 9449) that come with DPoP-bound access tokens (<c>Authorization: DPoP …</c>
/// plus a <c>DPoP</c> header). Each proof is checked on every request, also when the token itself was found in the
/// validated-token cache.
/// </summary>
public sealed class TesseraDpopOptions
{
    /// <summary>Asymmetric JWS algorithms accepted for proofs by default (RFC 9449 §11.6: never <c>none</c>, never HMAC).</summary>
    public static readonly IReadOnlyList<string> DefaultAlgorithms =
    [
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
    ];

    /// <summary>Bearer, DPoP or both (the default).</summary>
    public TesseraDpopMode Mode { get; set; } = TesseraDpopMode.Allowed;

    /// <summary>JWS algorithms accepted for proofs, announced in the challenge's <c>algs</c>. Asymmetric only.</summary>
    public IList<string> Algorithms { get; set; } = [.. DefaultAlgorithms];

    /// <summary>
    /// How long after its <c>iat</c> a proof is accepted (RFC 9449 §11.1: "a relatively brief period on the order of
    /// seconds or minutes"). Default 60 seconds, at most 5 minutes. Proof <c>jti</c>s are remembered this long.
    /// </summary>
    public TimeSpan ProofLifetime { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How far in the future a proof's <c>iat</c> may lie (the client's clock runs ahead). Default 5 seconds, at most 5 minutes.</summary>
    public TimeSpan ProofClockSkew { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many proof <c>jti</c>s the replay cache holds (only their SHA-256, each until its proof expires). It lives in
    /// this process: several instances of an API behind one address each keep their own, so a proof replayed to another
    /// instance within <see cref="ProofLifetime"/> is not detected there (RFC 9449 §11.1 notes this limit; server nonces
    /// narrow it). When it is full of live entries new proofs are refused, never accepted unchecked: size it for
    /// requests per second × (<see cref="ProofLifetime"/> + <see cref="ProofClockSkew"/>). Default 200,000 (about 3,000
    /// DPoP requests a second with the default lifetime).
    /// </summary>
    public int ReplayCacheSize { get; set; } = 200_000;

    /// <summary>
    /// RFC 9449 §9: require a server nonce in every proof. A proof without a fresh one is refused with
    /// <c>error="use_dpop_nonce"</c> and a new nonce in the <c>DPoP-Nonce</c> header; a successful response carries a
    /// new one when the presented nonce is past half its life. Nonces are made and checked with a key that lives in
    /// this process only, so behind a load balancer each instance accepts only its own. Off by default.
    /// </summary>
    public bool RequireNonce { get; set; }

    /// <summary>How long a server nonce is accepted. Default 5 minutes, between 10 seconds and 1 hour.</summary>
    public TimeSpan NonceLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The URL clients use for this API's root, for example <c>https://api.example.com</c>, or
    /// <c>https://example.com/orders</c> when a proxy strips <c>/orders</c> before passing requests on. Needed when the
    /// request this process sees differs from what the client addressed (a TLS-terminating proxy, another host name).
    /// A proof's <c>htu</c> is compared with this URL followed by the request-target the client sent. When null, the
    /// request's own scheme and <c>Host</c> are used.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    internal Uri? ResolvedPublicBaseUrl => PublicBaseUrl is null ? null : new Uri(PublicBaseUrl, UriKind.Absolute);

    internal bool AcceptsBearer => Mode != TesseraDpopMode.Required;

    internal bool AcceptsDpop => Mode != TesseraDpopMode.Disabled;

    /// <summary>Everything wrong with these options, in words an operator can act on.</summary>
    internal IEnumerable<string> Problems()
    {
        if (!Enum.IsDefined(Mode)) yield return "Dpop.Mode must be Disabled, Allowed or Required.";
        if (Mode == TesseraDpopMode.Disabled) yield break;
        if (Algorithms is null || Algorithms.Count == 0) yield return "Dpop.Algorithms must name at least one asymmetric algorithm.";
        else if (Algorithms.FirstOrDefault(a => !DefaultAlgorithms.Contains(a, StringComparer.Ordinal)) is { } bad)
            yield return $"Dpop.Algorithms cannot contain '{bad}': use ES256/384/512, PS256/384/512 or RS256/384/512.";
        if (ProofLifetime <= TimeSpan.Zero || ProofLifetime > TimeSpan.FromMinutes(5)) yield return "Dpop.ProofLifetime must be between 1 second and 5 minutes.";
        if (ProofClockSkew < TimeSpan.Zero || ProofClockSkew > TimeSpan.FromMinutes(5)) yield return "Dpop.ProofClockSkew must be between 0 and 5 minutes.";
        if (ReplayCacheSize < 1) yield return "Dpop.ReplayCacheSize must be at least 1: proofs are never accepted without the replay check.";
        if (RequireNonce && (NonceLifetime < TimeSpan.FromSeconds(10) || NonceLifetime > TimeSpan.FromHours(1))) yield return "Dpop.NonceLifetime must be between 10 seconds and 1 hour.";
        if (PublicBaseUrl is not null && (!Uri.TryCreate(PublicBaseUrl, UriKind.Absolute, out var publicBase) || (publicBase.Scheme != Uri.UriSchemeHttps && publicBase.Scheme != Uri.UriSchemeHttp)
                || publicBase.Query.Length > 0 || publicBase.Fragment.Length > 0 || publicBase.UserInfo.Length > 0))
            yield return "Dpop.PublicBaseUrl must be an absolute http(s) URL such as https://api.example.com, without user information, query or fragment.";
    }
}
