using Tessera.Core;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Server.Hosting;

namespace Tessera.Server.Maintenance;

/// <summary>
/// Keeps the tables bounded by live sessions: erases retry-window copies once their window closed and deletes
/// sessions that ended more than <see cref="TesseraOptions.EndedSessionRetention"/> ago, in small batches.
/// Safe on several nodes: each batch is one short statement (SKIP LOCKED on PostgreSQL).
/// </summary>
public sealed partial class PruningService(ITesseraStore store, TesseraOptions options, ServerSettings settings, TimeProvider time, ILogger<PruningService> log) : BackgroundService
{
    public const int BatchSize = 500;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The schedule runs on the real clock; what the job decides uses the injected one (tests travel in time without
        // replaying every tick they skip).
        using var timer = new PeriodicTimer(settings.PruneInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var n = await PruneOnceAsync(store, options, time.GetUtcNow(), stoppingToken);
                if (n > 0) LogPruned(log, n);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPruneFailed(log, e);
            }
        }
    }

    /// <summary>Runs batches until one comes back short. Returns the rows changed.</summary>
    public static async Task<int> PruneOnceAsync(ITesseraStore store, TesseraOptions options, DateTimeOffset now, CancellationToken ct)
    {
        var total = 0;
        // A copy may be erased once the longest retry window any client has closed.
        var windowMax = options.RefreshRetryWindow;
        foreach (var c in await store.Clients.ListAsync(ct))
            if (c.Refresh.RetryWindow is { } w && w > windowMax) windowMax = w;
        // Feed events matter only while an access token they void can still be alive.
        var longestAccessToken = options.AccessTokenLifetime;
        foreach (var c in await store.Clients.ListAsync(ct))
            if (c.AccessTokenLifetime is { } l && l > longestAccessToken) longestAccessToken = l;
        if (store is IRevocationFeedStore feed)
            while (true)
            {
                var n = await feed.PruneAsync(now - longestAccessToken - TimeSpan.FromMinutes(5), BatchSize, ct);
                total += n;
                if (n < BatchSize) break;
            }
        while (true)
        {
            var n = await store.Sessions.PruneAsync(now, windowMax, now - options.EndedSessionRetention, BatchSize, ct);
            total += n;
            if (n < BatchSize) return total;
        }
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Pruned {Rows} expired rows")]
    private static partial void LogPruned(ILogger logger, int rows);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Error, Message = "Pruning failed; will retry at the next interval")]
    private static partial void LogPruneFailed(ILogger logger, Exception e);
}
