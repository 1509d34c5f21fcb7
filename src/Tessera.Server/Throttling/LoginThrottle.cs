using System.Globalization;
using System.Net;
using Tessera.Core.Audit;
using Tessera.Core.Storage;
using Tessera.Server.Hosting;

namespace Tessera.Server.Throttling;

/// <summary>
/// Sign-in failures per source address, whatever the username: the per-account pause (User.LoginBlockedUntil) cannot
/// see credential stuffing, which tries each account once or twice from the same few addresses. OWASP's Credential
/// Stuffing Prevention Cheat Sheet: addresses "attempting to log into multiple accounts can be blocked", and bans made
/// temporary "reduce the negative impact" on people who share the address; but blocking addresses "should not be used
/// as the sole or primary defense", so the per-account pause stays. Its Authentication Cheat Sheet describes an
/// exponential lockout that "starts as a very short period (e.g., one second), but doubles after each failed login
/// attempt". A success never clears an address's count: otherwise an attacker with one account of their own could
/// interleave a good sign-in between guesses. The count is per node (<see cref="FailureThrottle{TKey}"/>).
/// </summary>
public sealed partial class LoginThrottle
{
    private readonly FailureThrottle<IPAddress> _perAddress;
    private readonly ITesseraStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger<LoginThrottle> _log;

    public LoginThrottle(ServerSettings settings, ITesseraStore store, TimeProvider time, ILogger<LoginThrottle> log)
    {
        _store = store;
        _time = time;
        _log = log;
        _perAddress = new FailureThrottle<IPAddress>(settings.Throttling.LoginPerAddress, settings.Throttling.MaxTrackedEntries, time,
            evicted => LogEvicted(log, evicted));
    }

    /// <summary>
    /// True when sign-ins from this address are paused. The caller answers with the one generic failure page at once:
    /// no user lookup and no password hash, so known and unknown usernames take exactly the same (short) path, and a
    /// paused address cannot make the server spend Argon2id time and memory.
    /// </summary>
    public async ValueTask<bool> IsPausedAsync(HttpContext http, CancellationToken ct)
    {
        if (_perAddress.IsEmpty) return false;
        var verdict = _perAddress.Check(SourceAddress.Of(http));
        if (!verdict.Refused) return false;
        // The first refusal of each pause is audited; the rest are not, so a paused address cannot turn the audit log into
        // a write amplifier (the pause itself was audited when it started, with its end).
        if (verdict.FirstRefusal)
            await _store.Audit.AppendAsync(new AuditEvent
            {
                At = _time.GetUtcNow(), Type = AuditTypes.LoginFailed, IpAddress = http.Connection.RemoteIpAddress?.ToString(),
                Reason = "sign-in from this address paused after repeated failures (further attempts in this pause are refused unaudited)",
            }, ct);
        return true;
    }

    /// <summary>Counts one failed sign-in (any reason: unknown user, wrong password, account paused, disabled) and audits a pause it starts.</summary>
    public async Task RecordFailureAsync(HttpContext http, CancellationToken ct)
    {
        var address = SourceAddress.Of(http);
        var outcome = _perAddress.RecordFailure(address);
        if (outcome.PausedUntil is not { } until) return;
        var now = _time.GetUtcNow();
        var shown = SourceAddress.Display(address);
        if (outcome.Lockout) LogLockout(_log, shown, outcome.Failures, until - now);
        await _store.Audit.AppendAsync(new AuditEvent
        {
            At = now,
            Type = outcome.Lockout ? AuditTypes.LoginLockedOut : AuditTypes.LoginThrottled,
            IpAddress = shown,
            Reason = string.Create(CultureInfo.InvariantCulture,
                $"{outcome.Failures} failed sign-ins from this address; its sign-ins are refused for {until - now:c}, until {until:u}"),
        }, ct);
    }

    [LoggerMessage(EventId = 4301, Level = LogLevel.Warning, Message = "Sign-ins from {Address} locked out for {Duration} after {Failures} failures")]
    private static partial void LogLockout(ILogger logger, string address, int failures, TimeSpan duration);

    [LoggerMessage(EventId = 4302, Level = LogLevel.Warning, Message = "The sign-in throttle was full: {Evicted} addresses forgotten (Tessera:Throttling:MaxTrackedEntries)")]
    private static partial void LogEvicted(ILogger logger, int evicted);
}
