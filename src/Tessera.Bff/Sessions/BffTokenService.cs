using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tessera.Bff.Oidc;

namespace Tessera.Bff.Sessions;

/// <summary>The outcome of asking for a session's access token.</summary>
public enum TokenStatus
{
    Ok,

    /// <summary>No such session, or Tessera refused the refresh (revoked, expired, user disabled): the session was dropped.</summary>
    SessionExpired,

    /// <summary>Tessera could not be asked and the current token has expired: try again later; the session is kept.</summary>
    AuthorityUnavailable,
}

public readonly record struct AccessTokenResult(TokenStatus Status, string? AccessToken, DateTimeOffset ExpiresAt, string? Scope);

/// <summary>
/// Keeps a session's access token fresh. The token is refreshed shortly before it expires; concurrent requests of
/// one session share a single refresh (a per-session lock, and a re-read of the store inside it: whoever comes
/// second finds the new token). Replicas sharing the store re-read it too, and when two of them still refresh at
/// the same moment Tessera's retry window hands both the same successor, so the token family never forks.
/// </summary>
public sealed class BffTokenService(IBffSessionStore store, AuthorityClient authority, IOptions<TesseraBffOptions> options, TimeProvider time,
    ILogger<BffTokenService> logger)
{
    private static readonly TimeSpan RefreshTimeout = TimeSpan.FromSeconds(30);
    private readonly TesseraBffOptions _o = options.Value;
    private readonly KeyedLock _locks = new();

    internal int BusySessions => _locks.Count;

    /// <summary>The session's access token, refreshed first when it is about to expire.</summary>
    public async Task<AccessTokenResult> GetAccessTokenAsync(string key, CancellationToken ct)
    {
        var session = await store.GetAsync(key, ct);
        if (session is null || session.ExpiresAt <= time.GetUtcNow()) return await DropAsync(key, ct);
        if (!NeedsRefresh(session.AccessTokenIssuedAt, session.AccessTokenExpiresAt)) return Ok(session);

        using (await _locks.AcquireAsync(key, ct))
        {
            // Another request of this session (or another replica) may have refreshed while we waited.
            session = await store.GetAsync(key, ct);
            if (session is null) return await DropAsync(key, ct);
            if (!NeedsRefresh(session.AccessTokenIssuedAt, session.AccessTokenExpiresAt)) return Ok(session);
            if (session.RefreshToken is null)
                return session.AccessTokenExpiresAt > time.GetUtcNow() ? Ok(session) : await DropAsync(key, ct);

            // The refresh must not be cancelled by the browser that happened to trigger it: others wait for it.
            using var timeout = new CancellationTokenSource(RefreshTimeout);
            var result = await authority.RefreshAsync(session.RefreshToken, scope: null, timeout.Token);
            if (result.Tokens is { } t)
            {
                session = Apply(session, t);
                await store.SaveAsync(session, CancellationToken.None);
                BffLog.Refreshed(logger, session.Subject);
                return Ok(session);
            }
            if (result.Unavailable)
                return session.AccessTokenExpiresAt > time.GetUtcNow() ? Ok(session) : new AccessTokenResult(TokenStatus.AuthorityUnavailable, null, default, null);
            BffLog.SessionDropped(logger, session.Subject, result.Error ?? "refresh refused");
            return await DropAsync(key, ct);
        }
    }

    /// <summary>
    /// Token-mediating mode: an access token for exactly <paramref name="scopes"/> (already checked to be granted),
    /// made with the refresh grant's <c>scope</c> parameter (RFC 6749 §6) and cached per scope set until shortly
    /// before it expires. The refresh token never leaves the server.
    /// </summary>
    public async Task<AccessTokenResult> GetMediatedTokenAsync(string key, IReadOnlyList<string> scopes, CancellationToken ct)
    {
        var cacheKey = string.Join(' ', scopes.Order(StringComparer.Ordinal));
        var session = await store.GetAsync(key, ct);
        if (session is null || session.ExpiresAt <= time.GetUtcNow()) return await DropAsync(key, ct);
        if (session.MediatedTokens.TryGetValue(cacheKey, out var cached) && !NeedsRefresh(cached.IssuedAt, cached.ExpiresAt))
            return new AccessTokenResult(TokenStatus.Ok, cached.AccessToken, cached.ExpiresAt, cached.Scope);

        using (await _locks.AcquireAsync(key, ct))
        {
            session = await store.GetAsync(key, ct);
            if (session is null) return await DropAsync(key, ct);
            var now = time.GetUtcNow();
            if (session.MediatedTokens.TryGetValue(cacheKey, out cached) && !NeedsRefresh(cached.IssuedAt, cached.ExpiresAt))
                return new AccessTokenResult(TokenStatus.Ok, cached.AccessToken, cached.ExpiresAt, cached.Scope);
            if (session.RefreshToken is null) return new AccessTokenResult(TokenStatus.SessionExpired, null, default, null);

            using var timeout = new CancellationTokenSource(RefreshTimeout);
            var result = await authority.RefreshAsync(session.RefreshToken, cacheKey, timeout.Token);
            if (result.Tokens is not { } t)
            {
                if (result.Unavailable) return new AccessTokenResult(TokenStatus.AuthorityUnavailable, null, default, null);
                BffLog.SessionDropped(logger, session.Subject, result.Error ?? "refresh refused");
                return await DropAsync(key, ct);
            }
            // Never broader than asked: Tessera narrows to what is still permitted; anything wider is a bug we refuse to pass on.
            var granted = (t.Scope ?? cacheKey).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (granted.Any(s => !scopes.Contains(s)))
                return new AccessTokenResult(TokenStatus.AuthorityUnavailable, null, default, null);
            var mediated = new MediatedToken(t.AccessToken, string.Join(' ', granted), now, now + t.ExpiresIn);
            var tokens = session.MediatedTokens.Where(kv => kv.Value.ExpiresAt > now).ToDictionary(kv => kv.Key, kv => kv.Value);
            tokens[cacheKey] = mediated;
            session = session with
            {
                RefreshToken = t.RefreshToken ?? session.RefreshToken,
                ExpiresAt = SessionExpiry(session, t, now),
                MediatedTokens = tokens,
            };
            await store.SaveAsync(session, CancellationToken.None);
            return new AccessTokenResult(TokenStatus.Ok, mediated.AccessToken, mediated.ExpiresAt, mediated.Scope);
        }
    }

    /// <summary>
    /// The API answered 401 to a token we believed valid: maybe the session was revoked at Tessera ("sign out
    /// everywhere", an administrator, reuse detection). Ask Tessera (introspection of the refresh token, which does
    /// not rotate it); when it is no longer active the session is dropped. Returns false when the session ended.
    /// </summary>
    public async Task<bool> ConfirmSessionAsync(string key, CancellationToken ct)
    {
        var session = await store.GetAsync(key, ct);
        if (session is null) return false;
        if (session.RefreshToken is null) return true;
        using (await _locks.AcquireAsync(key, ct))
        {
            session = await store.GetAsync(key, ct);
            if (session?.RefreshToken is null) return session is not null;
            if (await authority.IsActiveAsync(session.RefreshToken, "refresh_token", ct) != false) return true;
            BffLog.SessionDropped(logger, session.Subject, "refresh token no longer active at Tessera");
            await store.DeleteAsync(key, CancellationToken.None);
            return false;
        }
    }

    /// <summary>Builds the session record from the sign-in's token response.</summary>
    internal BffSession NewSession(string key, string subject, string? sid, TokenResponse t, IReadOnlyDictionary<string, string> claims)
    {
        var now = time.GetUtcNow();
        var lifetime = t.RefreshToken is null ? t.ExpiresIn : t.RefreshExpiresIn is { } r && r < _o.SessionLifetime ? r : _o.SessionLifetime;
        return new BffSession
        {
            Key = key,
            Subject = subject,
            TesseraSessionId = sid,
            CreatedAt = now,
            ExpiresAt = now + lifetime,
            AccessToken = t.AccessToken,
            AccessTokenIssuedAt = now,
            AccessTokenExpiresAt = now + t.ExpiresIn,
            RefreshToken = t.RefreshToken,
            IdToken = t.IdToken,
            GrantedScopes = (t.Scope ?? string.Join(' ', _o.Scopes)).Split(' ', StringSplitOptions.RemoveEmptyEntries),
            Claims = claims,
        };
    }

    private BffSession Apply(BffSession s, TokenResponse t)
    {
        var now = time.GetUtcNow();
        return s with
        {
            AccessToken = t.AccessToken,
            AccessTokenIssuedAt = now,
            AccessTokenExpiresAt = now + t.ExpiresIn,
            RefreshToken = t.RefreshToken ?? s.RefreshToken,
            IdToken = t.IdToken ?? s.IdToken,
            ExpiresAt = SessionExpiry(s, t, now),
        };
    }

    private DateTimeOffset SessionExpiry(BffSession s, TokenResponse t, DateTimeOffset now)
    {
        var cap = s.CreatedAt + _o.SessionLifetime;
        var byTessera = t.RefreshExpiresIn is { } r ? now + r : s.ExpiresAt;
        return byTessera < cap ? byTessera : cap;
    }

    /// <summary>Refresh when less than the skew is left; the skew is at most half the token's lifetime.</summary>
    internal bool NeedsRefresh(DateTimeOffset issuedAt, DateTimeOffset expiresAt)
    {
        var half = (expiresAt - issuedAt) / 2;
        var skew = _o.RefreshBeforeExpiry < half ? _o.RefreshBeforeExpiry : half;
        return time.GetUtcNow() >= expiresAt - skew;
    }

    private static AccessTokenResult Ok(BffSession s) => new(TokenStatus.Ok, s.AccessToken, s.AccessTokenExpiresAt, string.Join(' ', s.GrantedScopes));

    private async Task<AccessTokenResult> DropAsync(string key, CancellationToken ct)
    {
        await store.DeleteAsync(key, CancellationToken.None);
        return new AccessTokenResult(TokenStatus.SessionExpired, null, default, null);
    }
}
