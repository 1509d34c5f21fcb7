using Tessera.Core.Keys;

namespace Tessera.Server.Maintenance;

/// <summary>Checks hourly whether the next signing key is due to be announced (see <see cref="KeyRing.EnsureKeyAsync"/>).</summary>
public sealed partial class KeyRotationService(KeyRing keys, ILogger<KeyRotationService> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The schedule runs on the real clock; KeyRing decides with the injected one.
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await keys.EnsureKeyAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(log, e);
            }
        }
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Error, Message = "Signing-key rotation check failed; will retry in an hour")]
    private static partial void LogFailed(ILogger logger, Exception e);
}
