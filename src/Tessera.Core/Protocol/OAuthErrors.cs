namespace Tessera.Core.Protocol;

/// <summary>Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1 and RFC 7009 §2.2.1.</summary>
public static class OAuthErrors
{
    public const string InvalidRequest = "invalid_request";
    public const string InvalidClient = "invalid_client";
    public const string InvalidGrant = "invalid_grant";
    public const string UnauthorizedClient = "unauthorized_client";
    public const string UnsupportedGrantType = "unsupported_grant_type";
    public const string InvalidScope = "invalid_scope";
    public const string InvalidTarget = "invalid_target";
    public const string AccessDenied = "access_denied";
    public const string UnsupportedResponseType = "unsupported_response_type";
    public const string ServerError = "server_error";
    public const string InvalidToken = "invalid_token";
    public const string UnsupportedTokenType = "unsupported_token_type";
    public const string LoginRequired = "login_required";
    public const string ConsentRequired = "consent_required";

    /// <summary>Not an RFC 6749 code: the front door's 429 answers (RFC 6585 §4), always with Retry-After.</summary>
    public const string TooManyRequests = "too_many_requests";
}

/// <summary>
/// An expected refusal: the RFC error code, a description that is safe to show the caller, and a detail that
/// goes only to the audit log. <paramref name="RetryAfter"/> is sent as Retry-After with a 429 (60 s when not set).
/// </summary>
public sealed record OAuthFailure(string Error, string Description, string? AuditReason = null, int? Status = null, TimeSpan? RetryAfter = null);
