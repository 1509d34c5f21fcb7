using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tessera.Bff.Sessions;

namespace Tessera.Bff.Tests.Unit;

/// <summary>The library over real HTTP (in-process Kestrel), with a scripted stand-in for Tessera.</summary>
public sealed class BffHttpTests : IAsyncLifetime
{
    private InProcessBff _bff = null!;

    public async Task InitializeAsync() => _bff = await InProcessBff.StartAsync();

    public async Task DisposeAsync() => await _bff.DisposeAsync();

    [Fact]
    public async Task TwentyConcurrentCalls_WithAnExpiredToken_CauseExactlyOneRefresh()
    {
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromSeconds(-30));
        using var http = _bff.Client(cookie);

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => http.GetAsync($"/api/data/{i}")));

        foreach (var answer in answers) Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(1, _bff.RefreshRequests);
        foreach (var answer in answers)
        {
            var echo = JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("Bearer at-1", echo.GetProperty("authorization").GetString());
        }
        var session = await _bff.FindSessionAsync(cookie);
        Assert.Equal("rt-1", session!.RefreshToken); // the rotated refresh token was kept
        // ...and the next calls use the stored token without asking Tessera again.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/data")).StatusCode);
        Assert.Equal(1, _bff.RefreshRequests);
        // The per-session locks are gone once nobody waits: memory is bounded by busy sessions.
        Assert.Equal(0, _bff.BffServices.GetRequiredService<BffTokenService>().BusySessions);
    }

    [Fact]
    public async Task ATokenCloseToExpiry_IsRefreshedBeforeItExpires()
    {
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromSeconds(10)); // inside the 30 s skew
        using var http = _bff.Client(cookie);
        var echo = JsonDocument.Parse(await http.GetStringAsync("/api/x")).RootElement;
        Assert.Equal("Bearer at-1", echo.GetProperty("authorization").GetString());
        Assert.Equal(1, _bff.RefreshRequests);
    }

    [Fact]
    public async Task TheProxy_SendsTheTokenButNotTheBrowsersCookies_AndDropsSetCookieAndCorsHeaders()
    {
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromMinutes(5));
        using var http = _bff.Client(cookie);
        var answer = await http.GetAsync("/api/orders/7?x=1");
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var echo = JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Bearer at-0", echo.GetProperty("authorization").GetString());
        Assert.Equal("", echo.GetProperty("cookie").GetString());
        Assert.Equal("", echo.GetProperty("csrf").GetString());
        Assert.Equal("/upstream/orders/7", echo.GetProperty("path").GetString());
        Assert.Equal("?x=1", echo.GetProperty("query").GetString());
        Assert.False(answer.Headers.Contains("Set-Cookie"));
        Assert.False(answer.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.Equal(0, _bff.RefreshRequests);
    }

    [Fact]
    public async Task WhenTesseraRefusesTheRefresh_TheCallGets401SessionExpired_AndTheSessionIsDropped()
    {
        _bff.RefuseRefresh = true;
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromSeconds(-1));
        using var http = _bff.Client(cookie);

        var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => http.GetAsync("/api/data")));

        foreach (var answer in answers)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
            Assert.Equal("session_expired", JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }
        Assert.Equal(1, _bff.RefreshRequests);
        Assert.Null(await _bff.FindSessionAsync(cookie));
        Assert.Contains(answers[0].Headers.GetValues("Set-Cookie"), v => v.StartsWith("tessera-bff=;", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WhenTheApiRefusesAndTesseraSaysTheSessionEnded_TheCallGets401SessionExpired()
    {
        _bff.ApiRefusesEverything = true;
        _bff.IntrospectionActive = false;
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromMinutes(5));
        using var http = _bff.Client(cookie);
        var answer = await http.GetAsync("/api/data");
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.Contains("session_expired", await answer.Content.ReadAsStringAsync());
        Assert.Null(await _bff.FindSessionAsync(cookie));
    }

    [Fact]
    public async Task WithoutTheCsrfHeader_EveryBackendCallIs403()
    {
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromMinutes(5));
        using var http = _bff.Client(cookie, csrf: false);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync("/api/data")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync("/bff/user")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync("/bff/token?scope=api.read")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.PostAsync("/bff/logout", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(new HttpRequestMessage(HttpMethod.Options, "/api/data"))).StatusCode);
        Assert.NotNull(await _bff.FindSessionAsync(cookie));
    }

    [Theory]
    [InlineData("/api/../admin", HttpStatusCode.BadRequest)]
    [InlineData("/api/%2e%2e/admin", HttpStatusCode.BadRequest)]
    [InlineData("/api%2Fdata", HttpStatusCode.BadRequest)]
    [InlineData("/api/data%5C..%5Cadmin", HttpStatusCode.BadRequest)]
    [InlineData("/api//data", HttpStatusCode.BadRequest)]
    [InlineData("http://evil.example/api/data", HttpStatusCode.BadRequest)]
    [InlineData("/apix/data", HttpStatusCode.NotFound)]
    [InlineData("/api/data", HttpStatusCode.OK)]
    public async Task RawPathTricks_AreRefusedOnTheWire(string target, HttpStatusCode expected)
    {
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromMinutes(5));
        // A raw socket: HttpClient would normalise the path before sending it.
        var uri = new Uri(_bff.BffUrl);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        await using var stream = tcp.GetStream();
        var request = $"GET {target} HTTP/1.1\r\nHost: {uri.Authority}\r\nX-CSRF: 1\r\nCookie: tessera-bff={cookie}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var statusLine = await reader.ReadLineAsync();
        Assert.StartsWith($"HTTP/1.1 {(int)expected} ", statusLine);
    }

    [Fact]
    public async Task TokenMediation_DownscopesWithTheRefreshGrant_AndNeverReturnsTheRefreshToken()
    {
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromMinutes(5));
        using var http = _bff.Client(cookie);

        var body = JsonDocument.Parse(await http.GetStringAsync("/bff/token?resource=" + Uri.EscapeDataString("https://api.example") + "&scope=api.read")).RootElement;

        Assert.Equal("at-1", body.GetProperty("access_token").GetString());
        Assert.Equal("api.read", body.GetProperty("scope").GetString());
        Assert.False(body.TryGetProperty("refresh_token", out _));
        Assert.Equal(["api.read"], _bff.RefreshScopes.ToArray());
        // Cached until shortly before expiry: the second ask does not go to Tessera.
        Assert.Equal("at-1", JsonDocument.Parse(await http.GetStringAsync("/bff/token?scope=api.read")).RootElement.GetProperty("access_token").GetString());
        Assert.Equal(1, _bff.RefreshRequests);
        Assert.Equal("rt-1", (await _bff.FindSessionAsync(cookie))!.RefreshToken);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/bff/token?scope=api.delete")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/bff/token?scope=api.read&resource=https%3A%2F%2Fother.example")).StatusCode);
    }

    [Fact]
    public async Task User_ShowsClaimsButNoToken_And401WhenNotSignedIn()
    {
        var cookie = await _bff.SeedSessionAsync(accessTokenExpiresIn: TimeSpan.FromMinutes(5));
        using var signedIn = _bff.Client(cookie);
        var text = await signedIn.GetStringAsync("/bff/user");
        Assert.Contains("\"name\":\"Test User\"", text);
        Assert.DoesNotContain("at-0", text);
        Assert.DoesNotContain("rt-0", text);

        using var anonymous = _bff.Client(null);
        var answer = await anonymous.GetAsync("/bff/user");
        Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        Assert.Equal("application/json; charset=utf-8", answer.Content.Headers.ContentType!.ToString());
    }

    [Fact]
    public async Task Login_RefusesAReturnUrlThatIsNotLocal()
    {
        using var http = _bff.Client(null);
        foreach (var target in (string[])["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"])
            Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/bff/login?returnUrl=" + Uri.EscapeDataString(target))).StatusCode);
        var ok = await http.GetAsync("/bff/login?returnUrl=%2Fpage");
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
        var location = ok.Headers.Location!.ToString();
        Assert.StartsWith(_bff.AuthorityUrl + "/connect/authorize?", location);
        Assert.Contains("code_challenge_method=S256", location);
        Assert.Contains("&nonce=", location);
        Assert.Contains("&state=", location);
        var loginCookie = Assert.Single(ok.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", loginCookie);
        Assert.Contains("samesite=lax", loginCookie);
    }

    [Fact]
    public async Task Callback_RefusesAStateThatThisBrowserDidNotStart()
    {
        using var http = _bff.Client(null);
        var answer = await http.GetAsync("/bff/callback?code=tsc_x&state=forged&iss=" + Uri.EscapeDataString(_bff.AuthorityUrl));
        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        Assert.Equal(0, _bff.RefreshRequests);
    }
}
