using Microsoft.AspNetCore.Http;

namespace Tessera.ResourceServer;

/// <summary>How a request presented its access token.</summary>
internal enum PresentedScheme
{
    /// <summary>No Authorization header, or one with a scheme this API does not accept (treated as no credentials).</summary>
    None,
    Bearer,
    Dpop,
    /// <summary>More than one Authorization header: which one counts cannot be told.</summary>
    Ambiguous,
}

/// <summary>
/// The one reading of the <c>Authorization</c> header, shared by the JwtBearer events (which hand the token to the
/// handler) and the token handler (which decides whether a proof is needed), so the two can never disagree.
/// </summary>
internal readonly record struct PresentedCredentials(PresentedScheme Scheme, string? Token)
{
    public static PresentedCredentials Read(HttpRequest request, TesseraDpopOptions dpop)
    {
        var values = request.Headers.Authorization;
        if (values.Count == 0) return default;
        // RFC 6750 §3.1 invalid_request: "uses more than one method for including an access token" (RFC 9449 Figure 19).
        if (values.Count > 1) return new(PresentedScheme.Ambiguous, null);
        var value = values[0] ?? "";
        var space = value.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0) return default;
        var scheme = value.AsSpan(0, space);
        var token = value[(space + 1)..].Trim(' ');
        if (token.Length == 0) return default;
        // RFC 9110 §11.1: "It uses a case-insensitive token to identify the authentication scheme".
        if (dpop.AcceptsBearer && scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)) return new(PresentedScheme.Bearer, token);
        // RFC 9449 §7.1: credentials = "DPoP" 1*SP token68.
        if (dpop.AcceptsDpop && scheme.Equals("DPoP", StringComparison.OrdinalIgnoreCase)) return new(PresentedScheme.Dpop, token);
        return default;
    }
}
