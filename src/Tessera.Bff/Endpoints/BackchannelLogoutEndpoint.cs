using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Tessera.Bff.Oidc;
using Tessera.Bff.Sessions;

namespace Tessera.Bff.Endpoints;

/// <summary>
/// OpenID Connect Back-Channel Logout 1.0 receiver: the provider POSTs a logout token and the backend ends the
/// matching sessions, so their next call gets 401. Server to server: no cookie, no CSRF header.
/// </summary>
internal sealed class BackchannelLogoutEndpoint(TokenValidator validator, IBffSessionStore store, TimeProvider time, ILoggerFactory loggers)
{
    // §2.6 (7): "the RP MAY ... verify that the same jti value has not been recently received". Bounded by the tokens' lifetimes.
    private readonly ConcurrentDictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);

    public async Task<IResult> HandleAsync(HttpContext http)
    {
        var logger = loggers.CreateLogger(BffLog.Category);
        IResult Refuse(string reason)
        {
            BffLog.BackchannelRefused(logger, reason);
            // §2.8: "If the logout request was invalid, the RP MUST respond with HTTP 400 Bad Request."
            return BffHttp.Error(StatusCodes.Status400BadRequest, "invalid_request", "The logout token is not valid.");
        }
        if (!http.Request.HasFormContentType) return Refuse("not a form post");
        var form = await http.Request.ReadFormAsync(http.RequestAborted);
        if (form["logout_token"].Count != 1 || form["logout_token"].ToString() is not { Length: > 0 } raw) return Refuse("no logout_token");

        TokenValidator.Checked result;
        try
        {
            result = await validator.ValidateLogoutTokenAsync(raw, http.RequestAborted);
        }
        catch (Exception e) when (AuthorityClient.IsUnreachable(e))
        {
            // The keys to check it with cannot be fetched: a temporary failure, so the provider may retry.
            BffLog.AuthorityUnreachable(logger, "jwks", e.Message);
            return BffHttp.Error(StatusCodes.Status503ServiceUnavailable, "temporarily_unavailable", "The provider's signing keys cannot be fetched.");
        }
        if (result.Token is not { } token) return Refuse(result.Error!);

        var now = time.GetUtcNow();
        foreach (var (jti, until) in _seen)
        {
            if (until < now) _seen.TryRemove(jti, out _);
        }
        if (!_seen.TryAdd(token.Id, new DateTimeOffset(token.ValidTo, TimeSpan.Zero) + TimeSpan.FromMinutes(5))) return Refuse("jti replayed");

        token.TryGetPayloadValue<string>("sub", out var sub);
        token.TryGetPayloadValue<string>("sid", out var sid);
        var ended = await store.DeleteByTesseraSessionAsync(string.IsNullOrEmpty(sub) ? null : sub, string.IsNullOrEmpty(sid) ? null : sid, http.RequestAborted);
        BffLog.BackchannelLogout(logger, ended);
        // §2.8: "If the logout succeeded, the RP MUST respond with HTTP 200 OK" and Cache-Control: no-store.
        http.Response.Headers.CacheControl = "no-store";
        return Results.Ok();
    }
}
