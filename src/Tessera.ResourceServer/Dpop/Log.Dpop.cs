using Microsoft.Extensions.Logging;

namespace Tessera.ResourceServer;

/// <summary>The DPoP log lines. Like the rest: never a token, a proof or a key.</summary>
internal static partial class Log
{
    [LoggerMessage(30, LogLevel.Debug, "Request refused by the DPoP rules ({Error}): {Reason}")]
    public static partial void DpopRefused(ILogger logger, string error, string reason);

    [LoggerMessage(31, LogLevel.Warning, "DPoP replay cache is full ({Capacity} live proofs): new proofs are refused until entries expire. Raise Dpop.ReplayCacheSize.")]
    public static partial void DpopReplayCacheFull(ILogger logger, int capacity);
}
