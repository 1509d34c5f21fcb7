using Microsoft.Extensions.Logging;

namespace Tessera.ResourceServer;

/// <summary>Every log line of the library. None carries a token, a secret or a signed event.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Access token refused: {Reason}.")]
    public static partial void TokenInvalid(ILogger logger, string reason);

    [LoggerMessage(2, LogLevel.Information, "Access token of client {ClientId} refused: it was revoked (cached: {FromCache}).")]
    public static partial void RevokedTokenRefused(ILogger logger, string clientId, bool fromCache);

    [LoggerMessage(10, LogLevel.Information, "Following Tessera's revocation feed at {Endpoint} as {Receiver} for scheme {Scheme}.")]
    public static partial void PollerStarting(ILogger logger, string endpoint, string receiver, string scheme);

    [LoggerMessage(11, LogLevel.Debug, "Revocation feed: {Applied} events applied, {Ignored} ignored, {Pruned} expired entries dropped; {Sessions} sessions, {Users} user and {Clients} client watermarks held.")]
    public static partial void PollProcessed(ILogger logger, int applied, int ignored, int pruned, int sessions, int users, int clients);

    [LoggerMessage(12, LogLevel.Warning, "Revocation feed poll failed ({Failures} in a row); next try in {Delay}.")]
    public static partial void PollFailed(ILogger logger, Exception exception, int failures, TimeSpan delay);

    [LoggerMessage(13, LogLevel.Warning, "Revocation feed answered {Status} ({Error}); next try in {Delay}.")]
    public static partial void PollRefused(ILogger logger, int status, string error, TimeSpan delay);

    [LoggerMessage(14, LogLevel.Warning, "Revocation event {Jti} failed validation ({Reason}); attempt {Attempt}.")]
    public static partial void EventInvalid(ILogger logger, string jti, string reason, int attempt);

    [LoggerMessage(15, LogLevel.Error, "Revocation event {Jti} was skipped after {Attempts} failed validations ({Reason}); the feed moves past it.")]
    public static partial void EventSkipped(ILogger logger, string jti, int attempts, string reason);

    [LoggerMessage(16, LogLevel.Debug, "Revocation event {Jti} carries no revocation this library understands; acknowledged.")]
    public static partial void EventIgnored(ILogger logger, string jti);
}
