using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Tessera.Server.Protocol;

namespace Tessera.Server.Hosting;

/// <summary>The platform rate limiter, partitioned by endpoint kind and client IP. Refusals are 429 with Retry-After.</summary>
public static class FrontDoorLimits
{
    public static PartitionedRateLimiter<HttpContext> Create(RateLimitSettings limits) => PartitionedRateLimiter.Create<HttpContext, string>(http =>
    {
        var (kind, perMinute) = Classify(http, limits);
        var key = kind + "|" + (http.Connection.RemoteIpAddress?.ToString() ?? "unknown");
        return perMinute <= 0
            ? RateLimitPartition.GetNoLimiter(key)
            : RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = perMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0, AutoReplenishment = true,
            });
    });

    private static (string Kind, int PerMinute) Classify(HttpContext http, RateLimitSettings l)
    {
        var path = http.Request.Path.Value ?? "";
        if (path.StartsWith("/connect/token", StringComparison.OrdinalIgnoreCase) || path.StartsWith("/connect/revoke", StringComparison.OrdinalIgnoreCase)
            || path.StartsWith("/connect/introspect", StringComparison.OrdinalIgnoreCase) || path.StartsWith("/connect/revocations", StringComparison.OrdinalIgnoreCase))
            return ("token", l.Token);
        if (path.Equals("/login", StringComparison.OrdinalIgnoreCase) && HttpMethods.IsPost(http.Request.Method))
            return ("login", l.Login);
        if (path.StartsWith("/connect/authorize", StringComparison.OrdinalIgnoreCase) || path.StartsWith("/connect/consent", StringComparison.OrdinalIgnoreCase))
            return ("authorize", l.Authorize);
        return ("other", l.Other);
    }

    public static async ValueTask OnRejectedAsync(OnRejectedContext context, CancellationToken ct)
    {
        var http = context.HttpContext;
        var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? (int)Math.Ceiling(wait.TotalSeconds) : 60;
        http.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await OAuthResults.WriteJsonAsync(http, StatusCodes.Status429TooManyRequests, new Dictionary<string, string>
        {
            ["error"] = "too_many_requests",
            ["error_description"] = "Too many requests from this address; retry after the number of seconds in Retry-After.",
        });
    }
}
