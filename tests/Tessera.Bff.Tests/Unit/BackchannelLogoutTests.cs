using System.Net;

namespace Tessera.Bff.Tests.Unit;

/// <summary>OpenID Connect Back-Channel Logout 1.0 §2.6 at <c>/bff/backchannel-logout</c>.</summary>
public sealed class BackchannelLogoutTests : IAsyncLifetime
{
    private const string Event = "http://schemas.openid.net/event/backchannel-logout";
    private InProcessBff _bff = null!;

    public async Task InitializeAsync() => _bff = await InProcessBff.StartAsync();

    public async Task DisposeAsync() => await _bff.DisposeAsync();

    private Dictionary<string, object> Claims(string sid, string? jti = null)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return new Dictionary<string, object>
        {
            ["iss"] = _bff.AuthorityUrl,
            ["aud"] = InProcessBff.ClientId,
            ["iat"] = now,
            ["exp"] = now + 120,
            ["jti"] = jti ?? Guid.NewGuid().ToString("N"),
            ["sid"] = sid,
            ["events"] = new Dictionary<string, object> { [Event] = new Dictionary<string, object>() },
        };
    }

    private async Task<HttpStatusCode> PostAsync(string token)
    {
        using var http = _bff.Client(null, csrf: false);
        var answer = await http.PostAsync("/bff/backchannel-logout", new FormUrlEncodedContent(new Dictionary<string, string> { ["logout_token"] = token }));
        return answer.StatusCode;
    }

    [Fact]
    public async Task AValidLogoutToken_EndsTheSessionsWithItsSid_AndNoOther()
    {
        var ended = await _bff.SeedSessionAsync(TimeSpan.FromMinutes(5), sid: "sid-A");
        var kept = await _bff.SeedSessionAsync(TimeSpan.FromMinutes(5), sid: "sid-B");

        Assert.Equal(HttpStatusCode.OK, await PostAsync(_bff.Sign(Claims("sid-A"), "logout+jwt")));

        Assert.Null(await _bff.FindSessionAsync(ended));
        Assert.NotNull(await _bff.FindSessionAsync(kept));
        using var http = _bff.Client(ended);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/data")).StatusCode);
    }

    [Fact]
    public async Task InvalidLogoutTokens_AreRefusedWith400_AndEndNothing()
    {
        var cookie = await _bff.SeedSessionAsync(TimeSpan.FromMinutes(5), sid: "sid-C");
        var withNonce = Claims("sid-C");
        withNonce["nonce"] = "n";
        var noEvent = Claims("sid-C");
        noEvent.Remove("events");
        var otherAudience = Claims("sid-C");
        otherAudience["aud"] = "someone-else";
        var noSubject = Claims("sid-C");
        noSubject.Remove("sid");
        var expired = Claims("sid-C");
        expired["iat"] = DateTimeOffset.UtcNow.AddHours(-2).ToUnixTimeSeconds();
        expired["exp"] = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds();

        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(_bff.Sign(withNonce, "logout+jwt")));
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(_bff.Sign(noEvent, "logout+jwt")));
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(_bff.Sign(otherAudience, "logout+jwt")));
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(_bff.Sign(noSubject, "logout+jwt")));
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(_bff.Sign(expired, "logout+jwt")));
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(_bff.Sign(Claims("sid-C"), "JWT"))); // an ID token is not a logout token
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync("not-a-jwt"));
        Assert.NotNull(await _bff.FindSessionAsync(cookie));
    }

    [Fact]
    public async Task AReplayedLogoutToken_IsRefused()
    {
        await _bff.SeedSessionAsync(TimeSpan.FromMinutes(5), sid: "sid-D");
        var token = _bff.Sign(Claims("sid-D", jti: "once"), "logout+jwt");
        Assert.Equal(HttpStatusCode.OK, await PostAsync(token));
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(token));
    }
}
