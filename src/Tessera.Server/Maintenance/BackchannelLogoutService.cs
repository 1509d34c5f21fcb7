using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Keys;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;

namespace Tessera.Server.Maintenance;

/// <summary>
/// OpenID Connect Back-Channel Logout 1.0: follows the revocation feed and, for every ended session whose client
/// registered a back-channel logout URI, POSTs a signed logout token (<c>typ: logout+jwt</c>, sid and sub, the
/// back-channel-logout event, no nonce). Failed deliveries are retried with exponential backoff.
/// </summary>
public sealed partial class BackchannelLogoutService(
    ITesseraStore store, IRevocationFeedStore feed, KeyRing keys, TesseraOptions options, IHttpClientFactory httpFactory,
    TimeProvider time, ILogger<BackchannelLogoutService> log) : BackgroundService
{
    public const string Receiver = "tessera:backchannel-logout";
    public const string LogoutEvent = "http://schemas.openid.net/event/backchannel-logout";
    private const int MaxAttempts = 6;
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly List<Delivery> _retries = [];
    private readonly SemaphoreSlim _gate = new(1, 1);

    private sealed record Delivery(string ClientId, string Uri, string? Algorithm, string SessionId, string UserId, int Attempt, DateTimeOffset NotBefore);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The schedule runs on the real clock; what the job decides uses the injected one (tests travel in time without
        // replaying every tick they skip).
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogLoopFailed(log, e);
            }
        }
    }

    /// <summary>Turns new feed events into deliveries, then sends whatever is due.</summary>
    public async Task RunOnceAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            await RunCoreAsync(ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RunCoreAsync(CancellationToken ct)
    {
        var cursor = await feed.GetCursorAsync(Receiver, ct);
        var events = await feed.ReadAfterAsync(cursor, 200, ct);
        if (events.Count > 0)
        {
            var clients = (await store.Clients.ListAsync(ct)).Where(c => c.BackchannelLogoutUri is not null).ToDictionary(c => c.Id, c => (Uri: c.BackchannelLogoutUri!, c.SigningAlgorithm));
            foreach (var e in events)
            {
                if (clients.Count == 0) break;
                // Every ended session has an event of its own (a user's or a client's watermark comes with one per
                // session it ended, or ends none: a lock, narrower permissions, a rotated secret), so only those log out.
                if (e.SessionId is null || e.ClientId is null || e.UserId is null) continue;
                if (clients.TryGetValue(e.ClientId, out var to))
                    _retries.Add(new Delivery(e.ClientId, to.Uri, to.SigningAlgorithm, e.SessionId, e.UserId, 0, time.GetUtcNow()));
            }
            await feed.AckAsync(Receiver, events[^1].Id, ct);
        }

        var now = time.GetUtcNow();
        var due = _retries.Where(d => d.NotBefore <= now).ToList();
        foreach (var d in due)
        {
            _retries.Remove(d);
            if (await SendAsync(d, ct)) continue;
            if (d.Attempt + 1 >= MaxAttempts)
            {
                LogGaveUp(log, d.ClientId, d.SessionId, MaxAttempts);
                continue;
            }
            // 1 s, 2 s, 4 s, 8 s, 16 s between attempts.
            _retries.Add(d with { Attempt = d.Attempt + 1, NotBefore = now + TimeSpan.FromSeconds(1 << d.Attempt) });
        }
    }

    private async Task<bool> SendAsync(Delivery d, CancellationToken ct)
    {
        try
        {
            var token = await LogoutTokenAsync(d.ClientId, d.SessionId, d.UserId, ct, d.Algorithm);
            using var http = httpFactory.CreateClient("backchannel-logout");
            http.Timeout = TimeSpan.FromSeconds(5);
            using var response = await http.PostAsync(d.Uri, new FormUrlEncodedContent(new Dictionary<string, string> { ["logout_token"] = token }), ct);
            // OIDC BCL §2.8: the RP answers 200 (or 204) on success.
            if (response.IsSuccessStatusCode) return true;
            LogDeliveryFailed(log, d.ClientId, (int)response.StatusCode, d.Attempt + 1);
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            LogDeliveryError(log, d.ClientId, d.Attempt + 1, e.GetType().Name);
            return false;
        }
    }

    /// <summary>
    /// OIDC Back-Channel Logout §2.4: iss, aud, iat, exp, jti, sid, sub, events; never a nonce. Signed like the client's
    /// ID tokens (<paramref name="algorithm"/>, default ES256): "The same keys are used to sign and encrypt Logout Tokens
    /// as are used for ID Tokens."
    /// </summary>
    public async Task<string> LogoutTokenAsync(string clientId, string sessionId, string userId, CancellationToken ct, string? algorithm = null)
    {
        var key = await keys.GetCurrentAsync(algorithm ?? SecurityAlgorithms.EcdsaSha256, ct);
        var now = time.GetUtcNow();
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = options.Issuer,
            Audience = clientId,
            IssuedAt = now.UtcDateTime,
            Expires = (now + TimeSpan.FromMinutes(2)).UtcDateTime,
            TokenType = "logout+jwt",
            Claims = new Dictionary<string, object>
            {
                ["jti"] = Handles.NewId(),
                ["sub"] = userId,
                ["sid"] = sessionId,
                ["events"] = new Dictionary<string, object> { [LogoutEvent] = new Dictionary<string, object>() },
            },
            SigningCredentials = new SigningCredentials(key.PrivateKey, key.Algorithm),
        });
    }

    [LoggerMessage(EventId = 4201, Level = LogLevel.Warning, Message = "Back-channel logout to client {ClientId} answered {Status} (attempt {Attempt})")]
    private static partial void LogDeliveryFailed(ILogger logger, string clientId, int status, int attempt);

    [LoggerMessage(EventId = 4202, Level = LogLevel.Warning, Message = "Back-channel logout to client {ClientId} failed with {Error} (attempt {Attempt})")]
    private static partial void LogDeliveryError(ILogger logger, string clientId, int attempt, string error);

    [LoggerMessage(EventId = 4203, Level = LogLevel.Error, Message = "Back-channel logout to client {ClientId} for session {SessionId} abandoned after {Attempts} attempts")]
    private static partial void LogGaveUp(ILogger logger, string clientId, string sessionId, int attempts);

    [LoggerMessage(EventId = 4204, Level = LogLevel.Error, Message = "Back-channel logout loop failed; retrying")]
    private static partial void LogLoopFailed(ILogger logger, Exception e);
}
