using System.Globalization;
using System.Net;
using Tessera.Core.Audit;
using Tessera.Core.Protocol;
using Tessera.Core.Storage;
using Tessera.Server.Hosting;

namespace Tessera.Server.Throttling;

/// <summary>
/// Client-authentication failures per source address (spraying many client ids) and per client id and address
/// (guessing one client's secret). Never per client id alone: an attacker guessing a client's secret from one address
/// would otherwise lock the real client out everywhere. Counts are per node, in memory (<see cref="FailureThrottle{TKey}"/>):
/// the token endpoint's success path gains no database round-trip, only a volatile read while nothing is tracked.
/// </summary>
public sealed partial class ClientAuthThrottle
{
    /// <summary>Client ids in keys are cut to this length, as in the audit log.</summary>
    public const int MaxClientIdLength = 200;

    private readonly FailureThrottle<IPAddress> _perAddress;
    private readonly FailureThrottle<(string ClientId, IPAddress Address)> _perClient;
    private readonly ITesseraStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger<ClientAuthThrottle> _log;

    public ClientAuthThrottle(ServerSettings settings, ITesseraStore store, TimeProvider time, ILogger<ClientAuthThrottle> log)
    {
        _store = store;
        _time = time;
        _log = log;
        var capacity = settings.Throttling.MaxTrackedEntries;
        _perAddress = new(settings.Throttling.ClientPerAddress, capacity, time, evicted => LogEvicted(log, "address", evicted));
        _perClient = new(settings.Throttling.ClientPerClientAndAddress, capacity, time, evicted => LogEvicted(log, "client and address", evicted));
    }

    /// <summary>
    /// A refusal when this address, or this client id at this address, is paused; null to go on and check the
    /// credentials. Decided before the client is looked up, the same for known and unknown ids.
    /// <para>
    /// The answer is 429 with Retry-After, not invalid_client. RFC 6585 §4: 429 "indicates that the user has sent too
    /// many requests in a given amount of time", and the response "MAY include a Retry-After header". RFC 6749 §5.2 defines invalid_client as
    /// "Client authentication failed"; during a pause the credentials are not checked at all, so that would be untrue,
    /// and it would send the operator of a client with the right secret hunting for a wrong one, while a well-behaved
    /// client honours Retry-After (RFC 9110 §10.2.3). It tells the caller nothing about the client or its secret: the
    /// pause depends only on earlier failures from the same address.
    /// </para>
    /// </summary>
    public ValueTask<OAuthFailure?> CheckAsync(HttpContext http, string clientId, CancellationToken ct) =>
        _perAddress.IsEmpty && _perClient.IsEmpty ? default : CheckTrackedAsync(http, clientId, ct);

    private async ValueTask<OAuthFailure?> CheckTrackedAsync(HttpContext http, string clientId, CancellationToken ct)
    {
        var address = SourceAddress.Of(http);
        var id = Cut(clientId);
        var byAddress = _perAddress.Check(address);
        var byClient = _perClient.Check((id, address));
        if (!byAddress.Refused && !byClient.Refused) return null;
        // When both are paused, Retry-After names the later end: a client that honours it is not refused again.
        var until = byAddress.Until > byClient.Until ? byAddress.Until : byClient.Until;
        var now = _time.GetUtcNow();
        // Only the first refusal of each pause is audited: the pause was audited when it started, and a paused address
        // must not be able to turn the audit log into a write amplifier at the token endpoint's request rate.
        if (byAddress.FirstRefusal || byClient.FirstRefusal)
            await _store.Audit.AppendAsync(new AuditEvent
            {
                At = now, Type = AuditTypes.ClientAuthFailed, ClientId = id, IpAddress = http.Connection.RemoteIpAddress?.ToString(),
                Reason = "client authentication from this address paused after repeated failures (further attempts in this pause are refused unaudited)",
            }, ct);
        return new OAuthFailure(OAuthErrors.TooManyRequests,
            "Too many failed client authentications from this address; retry after the number of seconds in Retry-After.",
            Status: StatusCodes.Status429TooManyRequests, RetryAfter: until - now);
    }

    /// <summary>Counts one failed client authentication (the client id as claimed, known or not) and audits any pause it starts.</summary>
    public async Task RecordFailureAsync(HttpContext http, string clientId, CancellationToken ct)
    {
        var address = SourceAddress.Of(http);
        var id = Cut(clientId);
        var byAddress = _perAddress.RecordFailure(address);
        var byClient = _perClient.RecordFailure((id, address));
        if (byAddress.PausedUntil is not null) await AuditPauseAsync(byAddress, address, clientId: null, ct);
        if (byClient.PausedUntil is not null) await AuditPauseAsync(byClient, address, id, ct);
    }

    /// <summary>
    /// The credentials were right: clear the count of this client at this address. Whoever proves the secret is the
    /// client. The address's own count stays (a caller with one good client must not reset its spraying count).
    /// </summary>
    public void Succeeded(HttpContext http, string clientId)
    {
        if (_perClient.IsEmpty) return;
        _perClient.Forget((Cut(clientId), SourceAddress.Of(http)));
    }

    private async Task AuditPauseAsync(FailureOutcome outcome, IPAddress address, string? clientId, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var until = outcome.PausedUntil!.Value;
        var shown = SourceAddress.Display(address);
        var scope = clientId is null ? "client authentications from this address (any client)" : "authentications of this client from this address";
        // The client id is the caller's unchecked input: it goes to the audit log, not into a log line.
        if (outcome.Lockout) LogLockout(_log, shown, clientId is null ? "any client" : "one client, see the audit log", outcome.Failures, until - now);
        await _store.Audit.AppendAsync(new AuditEvent
        {
            At = now,
            Type = outcome.Lockout ? AuditTypes.ClientAuthLockedOut : AuditTypes.ClientAuthThrottled,
            ClientId = clientId,
            IpAddress = shown,
            Reason = string.Create(CultureInfo.InvariantCulture,
                $"{outcome.Failures} failed {scope}; refused for {until - now:c}, until {until:u}"),
        }, ct);
    }

    private static string Cut(string clientId) => clientId.Length <= MaxClientIdLength ? clientId : clientId[..MaxClientIdLength];

    [LoggerMessage(EventId = 4311, Level = LogLevel.Warning, Message = "Client authentication from {Address} ({Scope}) locked out for {Duration} after {Failures} failures")]
    private static partial void LogLockout(ILogger logger, string address, string scope, int failures, TimeSpan duration);

    [LoggerMessage(EventId = 4312, Level = LogLevel.Warning, Message = "The client-authentication throttle per {Kind} was full: {Evicted} keys forgotten (Tessera:Throttling:MaxTrackedEntries)")]
    private static partial void LogEvicted(ILogger logger, string kind, int evicted);
}
