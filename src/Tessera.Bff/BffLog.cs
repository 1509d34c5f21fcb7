using Microsoft.Extensions.Logging;

namespace Tessera.Bff;

/// <summary>The backend's log lines, with stable event ids. Never a token, code, secret or cookie value.</summary>
internal static partial class BffLog
{
    public const string Category = "Tessera.Bff";

    [LoggerMessage(7001, LogLevel.Information, "Signed in {Subject}; new backend session")]
    public static partial void SignedIn(ILogger logger, string subject);

    [LoggerMessage(7002, LogLevel.Warning, "Sign-in refused: {Reason}")]
    public static partial void SignInRefused(ILogger logger, string reason);

    [LoggerMessage(7003, LogLevel.Debug, "Refreshed the access token of {Subject}")]
    public static partial void Refreshed(ILogger logger, string subject);

    [LoggerMessage(7004, LogLevel.Information, "Session of {Subject} dropped: {Reason}")]
    public static partial void SessionDropped(ILogger logger, string subject, string reason);

    [LoggerMessage(7005, LogLevel.Warning, "Tessera refused a {GrantType} request: {Error}")]
    public static partial void TokenRequestRefused(ILogger logger, string grantType, string error);

    [LoggerMessage(7006, LogLevel.Warning, "Tessera's {Endpoint} endpoint could not be reached: {Detail}")]
    public static partial void AuthorityUnreachable(ILogger logger, string endpoint, string detail);

    [LoggerMessage(7007, LogLevel.Warning, "Revocation at Tessera answered HTTP {Status}")]
    public static partial void RevocationFailed(ILogger logger, int status);

    [LoggerMessage(7008, LogLevel.Information, "Signed out {Subject}")]
    public static partial void SignedOut(ILogger logger, string subject);

    [LoggerMessage(7009, LogLevel.Information, "Back-channel logout ended {Count} sessions")]
    public static partial void BackchannelLogout(ILogger logger, int count);

    [LoggerMessage(7010, LogLevel.Warning, "Back-channel logout token refused: {Reason}")]
    public static partial void BackchannelRefused(ILogger logger, string reason);

    [LoggerMessage(7011, LogLevel.Warning, "Proxy request refused ({Reason})")]
    public static partial void ProxyRefused(ILogger logger, string reason);

    [LoggerMessage(7012, LogLevel.Warning, "Proxy could not reach {Destination}: {Error}")]
    public static partial void ProxyFailed(ILogger logger, string destination, string error);
}
