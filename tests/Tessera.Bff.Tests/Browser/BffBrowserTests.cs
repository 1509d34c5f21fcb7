using System.Text.Json;
using Microsoft.Playwright;
using Tessera.Bff.Tests.Infrastructure;

namespace Tessera.Bff.Tests.Browser;

/// <summary>
/// The backend-for-frontend in headless Chromium against real processes: Tessera's login page, the BFF host's
/// single-page app, the proxy, 5-second access tokens, "sign out everywhere" on Tessera's account page, logout.
/// </summary>
[Collection(StackCollection.Name)]
public sealed class BffBrowserTests(TesseraStack stack)
{
    private const string SessionCookie = "tessera-bff";

    [Fact]
    public async Task SignsInThroughTesserasLoginPage_AndTheSpaCallsTheApiThroughTheBff()
    {
        await using var browser = await Chromium.LaunchAsync(stack.Playwright);
        var leaks = new TokenLeakWatch(browser.Context);
        var spa = new Spa(await PageOf(browser), stack, stack.BffUrl);

        await spa.OpenAsync();
        await spa.WaitForStateAsync("signed-out");
        await spa.ScreenshotAsync("bff-1-before-sign-in");

        await spa.SignInAsync("alice");
        Assert.Equal("Signed in as Alice", await spa.Page.InnerTextAsync("#status"));
        var (state, text) = await spa.CallApiAsync();
        Assert.True(state == "ok", $"the API call failed: {text}\n{stack.Logs}");
        var api = JsonDocument.Parse(text).RootElement;
        Assert.Equal("Hello from the sample API", api.GetProperty("message").GetString());
        Assert.Contains("api.read", api.GetProperty("scope").GetString()!.Split(' '));
        await spa.ScreenshotAsync("bff-2-signed-in-api-result");

        // The cookie: a random id only, HttpOnly, SameSite=Strict, Path=/, host-only; the sign-in cookie is gone.
        var cookies = await browser.Context.CookiesAsync([stack.BffUrl]);
        var session = Assert.Single(cookies, c => c.Name == SessionCookie);
        Assert.True(session.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, session.SameSite);
        Assert.Equal("/", session.Path);
        Assert.Equal("127.0.0.1", session.Domain);
        Assert.False(session.Secure); // plain http on loopback; on https the name is __Host-tessera-bff and Secure
        Assert.Equal(43, session.Value.Length);
        Assert.DoesNotContain(cookies, c => c.Name == SessionCookie + "-login");

        await AssertNoTokenReachedTheBrowserAsync(browser, spa.Page, leaks);
    }

    [Fact]
    public async Task CallsKeepWorkingAcrossSeveralRefreshes_WithFiveSecondAccessTokens()
    {
        await using var browser = await Chromium.LaunchAsync(stack.Playwright);
        var leaks = new TokenLeakWatch(browser.Context);
        var spa = new Spa(await PageOf(browser), stack, stack.BffUrl);
        await spa.OpenAsync();
        await spa.SignInAsync("alice");

        // 14 s of calls with 5-second tokens (refreshed 2.5 s before they expire): every call works, several tokens are used.
        var tokensUsed = new List<string>();
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(14);
        var calls = 0;
        while (DateTime.UtcNow < until)
        {
            var (state, text) = await spa.CallApiAsync();
            Assert.True(state == "ok", $"call {calls} failed: {text}\n{stack.Logs}");
            var jti = Spa.Jti(text);
            if (!tokensUsed.Contains(jti)) tokensUsed.Add(jti);
            calls++;
            await Task.Delay(TimeSpan.FromSeconds(1.2));
        }
        Assert.True(tokensUsed.Count >= 4, $"expected at least 4 access tokens (3 refreshes) over 14 s, saw {tokensUsed.Count} in {calls} calls");
        Assert.Equal("signed-in", await spa.Page.GetAttributeAsync("#status", "data-state"));
        await AssertNoTokenReachedTheBrowserAsync(browser, spa.Page, leaks);
    }

    [Fact]
    public async Task RequestsWithoutTheCsrfHeader_AreRefused_AndNoCorsHeadersAreSent()
    {
        await using var browser = await Chromium.LaunchAsync(stack.Playwright);
        var leaks = new TokenLeakWatch(browser.Context);
        var spa = new Spa(await PageOf(browser), stack, stack.BffUrl);
        await spa.OpenAsync();
        await spa.SignInAsync("alice");

        foreach (var (url, method) in new[] { ("/api/data", "GET"), ("/bff/user", "GET"), ("/bff/logout", "POST") })
        {
            var (status, body, allowOrigin) = await spa.FetchAsync(url, method, csrf: false);
            Assert.True(status == 403, $"{method} {url} without X-CSRF answered {status}: {body}");
            Assert.Contains("csrf_header_required", body);
            Assert.Null(allowOrigin);
        }
        // Nothing was signed out by the refused logout, and the same calls with the header work.
        var (okStatus, _, okAllowOrigin) = await spa.FetchAsync("/bff/user");
        Assert.Equal(200, okStatus);
        Assert.Null(okAllowOrigin);
        Assert.Equal("ok", (await spa.CallApiAsync()).State);

        // From another origin the browser cannot even send the header: the preflight gets no CORS answer.
        var foreign = await browser.Context.NewPageAsync();
        await foreign.GotoAsync(stack.ApiUrl + "/healthz");
        var outcome = await foreign.EvaluateAsync<string>("""
            async (url) => {
              try { const r = await fetch(url, { headers: { 'X-CSRF': '1' }, credentials: 'include' }); return 'status ' + r.status; }
              catch (e) { return 'blocked'; }
            }
            """, stack.BffUrl + "/api/data");
        Assert.Equal("blocked", outcome);
        await AssertNoTokenReachedTheBrowserAsync(browser, spa.Page, leaks);
    }

    [Fact]
    public async Task AfterSignOutEverywhereOnTheAccountPage_TheNextCallGets401_AndTheUiShowsSignedOut()
    {
        await using var browser = await Chromium.LaunchAsync(stack.Playwright);
        var leaks = new TokenLeakWatch(browser.Context);
        var spa = new Spa(await PageOf(browser), stack, stack.BffUrl);
        await spa.OpenAsync();
        await spa.SignInAsync("eve");
        Assert.Equal("ok", (await spa.CallApiAsync()).State);

        // In another tab, Tessera's account page: "Sign out everywhere".
        var account = await browser.Context.NewPageAsync();
        await account.GotoAsync(stack.TesseraUrl + "/account");
        Assert.Contains("SPA backend", await account.InnerTextAsync("body"));
        await account.ClickAsync("button:has-text('Sign out everywhere')");
        await account.WaitForURLAsync(url => url.StartsWith(stack.TesseraUrl + "/login", StringComparison.Ordinal));

        // Back in the SPA, the very next call: 401 from the backend, and the page shows signed out.
        var apiCall = spa.Page.WaitForResponseAsync(r => r.Url == stack.BffUrl + "/api/data");
        var (state, text) = await spa.CallApiAsync();
        var response = await apiCall;
        Assert.Equal(401, response.Status);
        Assert.Equal("session_expired", JsonDocument.Parse(await response.TextAsync()).RootElement.GetProperty("error").GetString());
        Assert.Equal("signed-out", state);
        Assert.Equal("signed out", text);
        await spa.WaitForStateAsync("signed-out");
        Assert.Equal(401, (await spa.FetchAsync("/bff/user")).Status);
        await spa.ScreenshotAsync("bff-3-after-sign-out-everywhere");
        // Tessera also told the backend over the back channel (a logout token to /bff/backchannel-logout); whichever came
        // first, the proxy's check or the logout token, the session is gone. The receiver must have accepted the token.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!stack.BffHostLogs.Contains("Back-channel logout ended", StringComparison.Ordinal) && DateTime.UtcNow < until) await Task.Delay(100);
        Assert.Contains("Back-channel logout ended", stack.BffHostLogs);
        Assert.DoesNotContain("Back-channel logout token refused", stack.BffHostLogs);
        await AssertNoTokenReachedTheBrowserAsync(browser, spa.Page, leaks);
    }

    [Fact]
    public async Task Logout_ClearsTheCookie_AndRevokesTheSessionAtTessera()
    {
        await using var browser = await Chromium.LaunchAsync(stack.Playwright);
        var leaks = new TokenLeakWatch(browser.Context);
        var spa = new Spa(await PageOf(browser), stack, stack.BffUrl);
        await spa.OpenAsync();
        await spa.SignInAsync("bob");
        Assert.Equal("ok", (await spa.CallApiAsync()).State);
        var oldCookie = Assert.Single(await browser.Context.CookiesAsync([stack.BffUrl]), c => c.Name == SessionCookie);
        Assert.Contains("\tactive\t", await stack.TesseraCliAsync("sessions", "list", "--user", "bob"));

        var logout = spa.Page.WaitForResponseAsync(r => r.Url == stack.BffUrl + "/bff/logout");
        await spa.Page.ClickAsync("#logout");
        Assert.Equal(200, (await logout).Status);
        await spa.WaitForStateAsync("signed-out");
        await spa.ScreenshotAsync("bff-4-after-sign-out");

        // The cookie is gone from the browser...
        Assert.DoesNotContain(await browser.Context.CookiesAsync([stack.BffUrl]), c => c.Name == SessionCookie);
        // ...the server-side session is gone too (the old cookie value no longer works)...
        await browser.Context.AddCookiesAsync([new Cookie { Name = SessionCookie, Value = oldCookie.Value, Domain = "127.0.0.1", Path = "/", HttpOnly = true, SameSite = SameSiteAttribute.Strict }]);
        var (status, body, _) = await spa.FetchAsync("/bff/user");
        Assert.Equal(401, status);
        Assert.Equal(401, (await spa.FetchAsync("/api/data")).Status);
        // ...and Tessera's session was revoked by the client (RFC 7009): listed as ended, "The application signed out".
        var sessions = await stack.TesseraCliAsync("sessions", "list", "--user", "bob");
        Assert.Contains("revoked:revoked_by_client", sessions);
        Assert.DoesNotContain("\tactive\t", sessions);
        var account = await browser.Context.NewPageAsync();
        await account.GotoAsync(stack.TesseraUrl + "/account");
        Assert.Contains("The application signed out.", await account.InnerTextAsync("body"));
        Assert.Contains("No application holds a session for you.", await account.InnerTextAsync("body"));
        await AssertNoTokenReachedTheBrowserAsync(browser, spa.Page, leaks, body);
    }

    private static async Task<IPage> PageOf(Chromium.Session browser) =>
        browser.Context.Pages.Count > 0 ? browser.Context.Pages[0] : await browser.Context.NewPageAsync();

    /// <summary>No response, no cookie and no storage readable by the page's JavaScript holds an access or refresh token.</summary>
    private async Task AssertNoTokenReachedTheBrowserAsync(Chromium.Session browser, IPage page, TokenLeakWatch leaks, params string[] alsoSeen)
    {
        var findings = (await leaks.FindingsAsync()).ToList();
        Assert.True(leaks.ResponsesSeen > 5, "the watch saw almost no responses; is it attached?");
        Assert.True(findings.Count == 0, "tokens reached the browser:\n" + string.Join('\n', findings));

        await page.GotoAsync(stack.BffUrl + "/");
        var visible = await TokenLeakWatch.ScriptVisibleStateAsync(page);
        using (var doc = JsonDocument.Parse(visible))
        {
            Assert.Equal("", doc.RootElement.GetProperty("cookie").GetString()); // every cookie of this site is HttpOnly
            Assert.Empty(doc.RootElement.GetProperty("local").EnumerateObject());
            Assert.Empty(doc.RootElement.GetProperty("session").EnumerateObject());
        }
        foreach (var cookie in await browser.Context.CookiesAsync())
            Assert.Empty(TokenLeakWatch.Problems(cookie.Value, "", accessTokenAllowed: false));
        foreach (var text in alsoSeen)
            Assert.Empty(TokenLeakWatch.Problems(text, "application/json", accessTokenAllowed: false));
    }
}
