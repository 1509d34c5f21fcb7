using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.Playwright;
using Tessera.Bff.Tests.Infrastructure;

namespace Tessera.Bff.Tests.Browser;

/// <summary>
/// Token-mediating mode (draft-ietf-oauth-browser-based-apps §6.2) in headless Chromium: the page gets short-lived
/// access tokens for exactly the scope it asks for from <c>/bff/token</c>, calls the API directly, never holds a
/// refresh token, and gets a new access token once the old one has expired.
/// </summary>
[Collection(StackCollection.Name)]
public sealed class TokenMediatingBrowserTests(TesseraStack stack)
{
    [Fact]
    public async Task TheSpaHoldsOnlyAShortLivedAccessToken_AndGetsANewOneAfterExpiry()
    {
        await using var browser = await Chromium.LaunchAsync(stack.Playwright);
        var tokenEndpoint = stack.MediatingUrl + "/bff/token";
        var leaks = new TokenLeakWatch(browser.Context, r => r.Url.StartsWith(tokenEndpoint + "?", StringComparison.Ordinal) && r.Status == 200);
        var tokenBodies = new ConcurrentQueue<Task<string>>();
        browser.Context.Response += (_, r) =>
        {
            if (r.Url.StartsWith(tokenEndpoint + "?", StringComparison.Ordinal) && r.Status == 200) tokenBodies.Enqueue(r.TextAsync());
        };
        var page = browser.Context.Pages.Count > 0 ? browser.Context.Pages[0] : await browser.Context.NewPageAsync();
        var spa = new Spa(page, stack, stack.MediatingUrl, "/mediating.html");

        await spa.OpenAsync();
        await spa.WaitForStateAsync("signed-out");
        await spa.ScreenshotAsync("mediating-1-before-sign-in");
        await spa.SignInAsync("mia");

        // First call: one access token from the backend, then straight to the API.
        var (state, text) = await spa.CallApiAsync();
        Assert.True(state == "ok", $"the direct API call failed: {text}\n{stack.Logs}");
        var firstJti = Spa.Jti(text);
        Assert.Equal("1", await page.GetAttributeAsync("#token-info", "data-count"));
        await spa.ScreenshotAsync("mediating-2-api-called-directly");

        var first = await SingleTokenResponseAsync(tokenBodies, 1);
        var firstToken = first.GetProperty("access_token").GetString()!;
        // Only what a short-lived access token needs: no refresh token, no ID token.
        Assert.Equal(["access_token", "expires_in", "scope", "token_type"], first.EnumerateObject().Select(p => p.Name).Order().ToArray());
        Assert.Equal("api.read", first.GetProperty("scope").GetString());
        Assert.InRange(first.GetProperty("expires_in").GetInt64(), 1, 5);
        // Never broader than asked: the session holds "openid profile offline_access api.read api.write", the page asked for api.read.
        var jwt = new JsonWebToken(firstToken);
        Assert.Equal("api.read", jwt.GetPayloadValue<string>("scope"));
        Assert.Equal([stack.ApiUrl], jwt.Audiences.ToArray());
        Assert.Equal(TesseraStack.AccessTokenLifetime, jwt.ValidTo - jwt.IssuedAt);

        // Asking for more than granted, for offline_access, for another resource, or without the CSRF header: refused.
        Assert.Equal(400, (await spa.FetchAsync("/bff/token?scope=api.read%20api.admin")).Status);
        Assert.Equal(400, (await spa.FetchAsync("/bff/token?scope=offline_access")).Status);
        Assert.Equal(400, (await spa.FetchAsync("/bff/token?resource=" + Uri.EscapeDataString("https://elsewhere.example") + "&scope=api.read")).Status);
        Assert.Equal(403, (await spa.FetchAsync("/bff/token?scope=api.read", csrf: false)).Status);
        // The plain BFF host does not mediate tokens at all.
        using (var http = new HttpClient())
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, stack.BffUrl + "/bff/token?scope=api.read");
            request.Headers.Add("X-CSRF", "1");
            Assert.Equal(404, (int)(await http.SendAsync(request)).StatusCode);
        }

        // After the token's expiry the API refuses it, and the page gets a new one from the backend.
        var wait = jwt.ValidTo - DateTime.UtcNow + TimeSpan.FromSeconds(1);
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
        var expired = await page.EvaluateAsync<int>("""
            async ([url, token]) => (await fetch(url, { headers: { Authorization: 'Bearer ' + token } })).status
            """, new object[] { stack.ApiUrl + "/api/data", firstToken });
        Assert.Equal(401, expired);
        (state, text) = await spa.CallApiAsync();
        Assert.True(state == "ok", $"the call after expiry failed: {text}\n{stack.Logs}");
        Assert.NotEqual(firstJti, Spa.Jti(text));
        Assert.Equal("2", await page.GetAttributeAsync("#token-info", "data-count"));
        var second = await SingleTokenResponseAsync(tokenBodies, 2);
        Assert.NotEqual(firstToken, second.GetProperty("access_token").GetString());
        Assert.False(second.TryGetProperty("refresh_token", out _));
        await spa.ScreenshotAsync("mediating-3-new-token-after-expiry");

        // No refresh token anywhere, and the access token is in no cookie or storage (only in a script variable).
        var findings = await leaks.FindingsAsync();
        Assert.True(findings.Count == 0, "tokens reached the browser:\n" + string.Join('\n', findings));
        using var visible = JsonDocument.Parse(await TokenLeakWatch.ScriptVisibleStateAsync(page));
        Assert.Equal("", visible.RootElement.GetProperty("cookie").GetString());
        Assert.Empty(visible.RootElement.GetProperty("local").EnumerateObject());
        Assert.Empty(visible.RootElement.GetProperty("session").EnumerateObject());
        foreach (var cookie in await browser.Context.CookiesAsync())
            Assert.Empty(TokenLeakWatch.Problems(cookie.Value, "", accessTokenAllowed: false));
    }

    /// <summary>The n-th successful /bff/token answer the browser received.</summary>
    private static async Task<JsonElement> SingleTokenResponseAsync(ConcurrentQueue<Task<string>> bodies, int n)
    {
        var all = await Task.WhenAll(bodies.ToArray());
        Assert.True(all.Length == n, $"expected {n} token responses, saw {all.Length}");
        return JsonDocument.Parse(all[n - 1]).RootElement.Clone();
    }
}
