using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Tessera.ResourceServer;

/// <summary>Follows the revocation feed of every Tessera scheme that has feed credentials, for as long as the application runs.</summary>
internal sealed class RevocationFeedPoller(
    IEnumerable<TesseraSchemeMarker> schemes,
    IOptionsMonitor<TesseraAccessTokenOptions> tesseraOptions,
    IOptionsMonitor<JwtBearerOptions> bearerOptions,
    TesseraRevocationRegistry registry,
    TimeProvider time,
    ILoggerFactory loggers) : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var followed = schemes.Select(s => s.Scheme).Distinct(StringComparer.Ordinal).Where(s => tesseraOptions.Get(s).FeedEnabled).ToList();
        await Task.WhenAll(followed.Select(s => FollowAsync(s, stoppingToken)));
    }

    private async Task FollowAsync(string scheme, CancellationToken stop)
    {
        var options = tesseraOptions.Get(scheme);
        var logger = loggers.CreateLogger<RevocationFeedPoller>();
        var manager = bearerOptions.Get(scheme).ConfigurationManager
            ?? throw new InvalidOperationException($"The JwtBearer scheme '{scheme}' has no configuration manager.");
        using var client = new RevocationFeedClient(options, ct => manager.GetConfigurationAsync(ct), manager.RequestRefresh,
            registry.For(scheme), time, loggers.CreateLogger<RevocationFeedClient>());
        Log.PollerStarting(logger, client.Endpoint.ToString(), options.FeedClientId!, scheme);

        var failures = 0;
        while (!stop.IsCancellationRequested)
        {
            var started = time.GetTimestamp();
            TimeSpan wait;
            try
            {
                var outcome = await client.PollOnceAsync(stop);
                if (outcome.Stalled)
                {
                    wait = Backoff(options, ++failures);
                }
                else
                {
                    failures = 0;
                    // Without long polling, or against a feed that answers an empty long poll at once, never spin.
                    wait = outcome.Delivered > 0 || outcome.MoreAvailable ? TimeSpan.Zero : options.PollInterval - time.GetElapsedTime(started);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (RevocationFeedClient.FeedRefusedException e)
            {
                wait = Backoff(options, ++failures);
                Log.PollRefused(logger, e.Status, e.Error, wait);
            }
            catch (Exception e)
            {
                wait = Backoff(options, ++failures);
                Log.PollFailed(logger, e, failures, wait);
            }
            if (wait <= TimeSpan.Zero) continue;
            try
            {
                await Task.Delay(wait, time, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static TimeSpan Backoff(TesseraAccessTokenOptions options, int failures)
    {
        var ms = options.PollInterval.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 10));
        return TimeSpan.FromMilliseconds(Math.Min(ms, MaxBackoff.TotalMilliseconds));
    }
}
