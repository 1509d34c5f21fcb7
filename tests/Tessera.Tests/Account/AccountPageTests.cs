using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.IdentityModel.JsonWebTokens;
using Tessera.Core.Users;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Account;

/// <summary>One server for the class; every test signs in users of its own, so sessions never mix between tests.</summary>
public sealed class AccountServerFixture : IAsyncLifetime
{
    public const string Password = "account-password-1";
    public TesseraTestServer Server { get; private set; } = null!;
    public OAuthDriver Driver { get; private set; } = null!;
    public string PhotosSecret { get; private set; } = null!;
    public string NotesSecret { get; private set; } = null!;
    private int _counter;

    public async Task InitializeAsync()
    {
        Server = await TesseraTestServer.StartAsync();
        Driver = new OAuthDriver(Server);
        PhotosSecret = (await Server.AddClientAsync(TestClients.Confidential("photos") with { DisplayName = "Photo Album" }, confidential: true)).Secret!;
        NotesSecret = (await Server.AddClientAsync(TestClients.Confidential("notes") with { DisplayName = "Notes & Lists" }, confidential: true)).Secret!;
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public Task<User> NewUserAsync() => Server.AddUserAsync($"user{Interlocked.Increment(ref _counter)}", Password);
}

/// <summary>
/// Issue 6, "Shown by": the account page over plain HTTP, no browser. Sessions listed with application, device, IP and
/// times; ending one or all; antiforgery; another user's session cannot be ended; plain-words reasons.
/// </summary>
public sealed partial class AccountPageTests(AccountServerFixture f) : IClassFixture<AccountServerFixture>
{
    private const string ChromeOnWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    private const string FirefoxOnLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
    private const string SafariOnIphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

    private TesseraTestServer Server => f.Server;

    private (string Secret, string Name) App(string clientId) => clientId == "photos" ? (f.PhotosSecret, "Photo Album") : (f.NotesSecret, "Notes & Lists");

    /// <summary>A signed-in browser (cookies kept) that sends this User-Agent.</summary>
    private async Task<HttpClient> BrowserAsync(User user, string? userAgent = null)
    {
        var cookies = new CookieContainer();
        var browser = await f.Driver.SignInAsync(user.Username, AccountServerFixture.Password, cookies);
        if (userAgent is not null) browser.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", userAgent);
        return browser;
    }

    /// <summary>
    /// The code flow through the signed-in browser, then the code exchange from the application's back end with the
    /// given User-Agent: the session records that device.
    /// </summary>
    private async Task<TokenAnswer> SessionAsync(HttpClient browser, string clientId, string userAgent)
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var result = await f.Driver.AuthorizeAsync(browser, OAuthDriver.AuthorizeUrl(clientId, "openid offline_access api.read", challenge));
        Assert.True(result.ContainsKey("code"));
        using var http = Server.CreateClient();
        http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", userAgent);
        var answer = await f.Driver.TokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = result["code"], ["redirect_uri"] = OAuthDriver.RedirectUri, ["code_verifier"] = verifier,
        }, clientId, App(clientId).Secret, http);
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Body.ToString());
        return answer;
    }

    private Task<TokenAnswer> RefreshAsync(string clientId, string refreshToken) => f.Driver.RefreshAsync(clientId, App(clientId).Secret, refreshToken);

    private static string Sid(TokenAnswer tokens) => new JsonWebToken(tokens.AccessToken).GetClaim("sid").Value;

    private static async Task<string> PageAsync(HttpClient browser)
    {
        var response = await browser.GetAsync("account");
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"account page: {(int)response.StatusCode} {html}");
        return html;
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient browser, string path, Dictionary<string, string> form) =>
        browser.PostAsync(path, new FormUrlEncodedContent(form));

    private static async Task<HttpResponseMessage> EndSessionAsync(HttpClient browser, string sid, bool antiforgery = true)
    {
        var form = new Dictionary<string, string> { ["sid"] = sid };
        if (antiforgery) form["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(await PageAsync(browser));
        return await PostAsync(browser, "account/sessions/revoke", form);
    }

    private async Task<bool> IntrospectActiveAsync(string clientId, string token)
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/introspect") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{Uri.EscapeDataString(App(clientId).Secret)}")));
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("active").GetBoolean();
    }

    private static string When(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>The section of the page between two headings (or to the end).</summary>
    private static string Section(string html, string heading)
    {
        var start = html.IndexOf("<h2>" + heading, StringComparison.Ordinal);
        if (start < 0) return "";
        var end = html.IndexOf("<h2>", start + 4, StringComparison.Ordinal);
        return end < 0 ? html[start..] : html[start..end];
    }

    /// <summary>The table row that holds the form for session <paramref name="sid"/>.</summary>
    private static string RowOf(string html, string sid)
    {
        var row = Rows().Matches(html).Select(m => m.Value).FirstOrDefault(r => r.Contains($"name=\"sid\" value=\"{sid}\"", StringComparison.Ordinal));
        Assert.True(row is not null, $"no row for session {sid}");
        return row;
    }

    private static List<string> ListedSids(string html) => SidField().Matches(html).Select(m => m.Groups[1].Value).ToList();

    // ---- Not signed in ---------------------------------------------------------------------------------------

    [Fact]
    public async Task NotSignedIn_RedirectsToTheLoginPage()
    {
        using var anonymous = Server.CreateClient(new CookieContainer());

        var response = await anonymous.GetAsync("account");

        Assert.True(response.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.SeeOther, $"got {(int)response.StatusCode}");
        Assert.Equal("/login?returnUrl=%2Faccount", response.Headers.Location?.ToString());
    }

    [Fact]
    public async Task NotSignedIn_PostsAreNotCarriedOut()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        var tokens = await SessionAsync(browser, "photos", ChromeOnWindows);
        using var anonymous = Server.CreateClient(new CookieContainer());

        var end = await PostAsync(anonymous, "account/sessions/revoke", new Dictionary<string, string> { ["sid"] = Sid(tokens) });
        var all = await PostAsync(anonymous, "account/signout-everywhere", []);

        Assert.NotEqual(HttpStatusCode.OK, end.StatusCode);
        Assert.StartsWith("/login", end.Headers.Location?.ToString() ?? "/login", StringComparison.Ordinal);
        Assert.NotEqual(HttpStatusCode.OK, all.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("photos", tokens.RefreshToken!)).Status);
    }

    // ---- The list --------------------------------------------------------------------------------------------

    [Fact]
    public async Task SignedIn_ListsEachSession_WithApplicationDeviceIpStartedAndLastUsed()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user, ChromeOnWindows);
        var started = Server.Time.GetUtcNow();
        var photos = await SessionAsync(browser, "photos", ChromeOnWindows);
        var notes = await SessionAsync(browser, "notes", FirefoxOnLinux);
        Server.Time.Advance(TimeSpan.FromMinutes(7));
        var lastUsed = Server.Time.GetUtcNow();
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("photos", photos.RefreshToken!)).Status);

        var html = await PageAsync(browser);

        Assert.Contains(WebUtility.HtmlEncode(user.Username), html, StringComparison.Ordinal);
        var active = Section(html, "Active sessions");
        Assert.Equal(new[] { Sid(photos), Sid(notes) }.Order(), ListedSids(active).Order());

        var photosRow = RowOf(active, Sid(photos));
        Assert.Contains("Photo Album", photosRow, StringComparison.Ordinal);
        Assert.Contains("Chrome on Windows", photosRow, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1", photosRow, StringComparison.Ordinal);
        Assert.Contains(When(started), photosRow, StringComparison.Ordinal);
        Assert.Contains(When(lastUsed), photosRow, StringComparison.Ordinal);
        // The same browser and address: marked as the current one.
        Assert.Contains("this browser", photosRow, StringComparison.Ordinal);

        var notesRow = RowOf(active, Sid(notes));
        Assert.Contains("Notes &amp; Lists", notesRow, StringComparison.Ordinal); // HTML-encoded
        Assert.Contains("Firefox on Linux", notesRow, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1", notesRow, StringComparison.Ordinal);
        Assert.DoesNotContain(When(lastUsed), notesRow, StringComparison.Ordinal);
        Assert.DoesNotContain("this browser", notesRow, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignedIn_ShowsOnlyTheirOwnSessions()
    {
        var alice = await f.NewUserAsync();
        var bob = await f.NewUserAsync();
        var aliceBrowser = await BrowserAsync(alice);
        var bobBrowser = await BrowserAsync(bob);
        var aliceSession = await SessionAsync(aliceBrowser, "photos", SafariOnIphone);
        var bobSession = await SessionAsync(bobBrowser, "photos", ChromeOnWindows);

        var alicePage = await PageAsync(aliceBrowser);

        Assert.Equal([Sid(aliceSession)], ListedSids(alicePage));
        Assert.DoesNotContain(Sid(bobSession), alicePage, StringComparison.Ordinal);
        Assert.Contains("Safari on iOS", alicePage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Page_HasNoScript_HasTheViewportMeta_AndSecurityHeaders()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        await SessionAsync(browser, "photos", ChromeOnWindows);

        var response = await browser.GetAsync("account");
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("javascript:", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch(" on[a-z]+=", html);
        Assert.Contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">", html, StringComparison.Ordinal);
        Assert.Contains("method=\"post\"", html, StringComparison.Ordinal);
        var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("script-src", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Equal("DENY", string.Join(",", response.Headers.GetValues("X-Frame-Options")));
        Assert.Equal("nosniff", string.Join(",", response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("no-referrer", string.Join(",", response.Headers.GetValues("Referrer-Policy")));
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.False(response.Headers.Contains("Strict-Transport-Security")); // http here: HSTS only over https
    }

    // ---- Ending one --------------------------------------------------------------------------------------------

    [Fact]
    public async Task EndingOneSession_RevokesIt_AndOnlyIt()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        var target = await SessionAsync(browser, "photos", ChromeOnWindows);
        var keep = await SessionAsync(browser, "notes", FirefoxOnLinux);

        var response = await EndSessionAsync(browser, Sid(target));

        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Equal("/account", response.Headers.Location?.ToString());
        Assert.Equal("invalid_grant", (await RefreshAsync("photos", target.RefreshToken!)).Error);
        Assert.False(await IntrospectActiveAsync("photos", target.AccessToken!));
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("notes", keep.RefreshToken!)).Status);
        var html = await PageAsync(browser);
        Assert.Equal([Sid(keep)], ListedSids(Section(html, "Active sessions")));
        var ended = Section(html, "Ended");
        Assert.Contains("Photo Album", ended, StringComparison.Ordinal);
        Assert.Contains("You ended it.", ended, StringComparison.Ordinal);
        var stored = await Server.Store.Sessions.FindAsync(Sid(target), default);
        Assert.Equal("revoked_by_user", stored!.RevokedReason);
    }

    [Fact]
    public async Task EndingOneSession_WithoutAntiforgery_Is400_AndNothingChanges()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        var target = await SessionAsync(browser, "photos", ChromeOnWindows);

        var response = await EndSessionAsync(browser, Sid(target), antiforgery: false);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var stored = await Server.Store.Sessions.FindAsync(Sid(target), default);
        Assert.Null(stored!.RevokedAt);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("photos", target.RefreshToken!)).Status);
    }

    [Fact]
    public async Task EndingOneSession_WithAnotherBrowsersAntiforgeryToken_Is400()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        var otherBrowser = await BrowserAsync(user);
        var target = await SessionAsync(browser, "photos", ChromeOnWindows);
        var foreignToken = OAuthDriver.AntiforgeryToken(await PageAsync(otherBrowser));

        var response = await PostAsync(browser, "account/sessions/revoke", new Dictionary<string, string> { ["sid"] = Sid(target), ["__RequestVerificationToken"] = foreignToken });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("photos", target.RefreshToken!)).Status);
    }

    [Fact]
    public async Task EndingAnotherUsersSession_Is404_AndNothingChanges()
    {
        var alice = await f.NewUserAsync();
        var mallory = await f.NewUserAsync();
        var aliceBrowser = await BrowserAsync(alice);
        var malloryBrowser = await BrowserAsync(mallory);
        var aliceSession = await SessionAsync(aliceBrowser, "photos", ChromeOnWindows);
        await SessionAsync(malloryBrowser, "photos", ChromeOnWindows);

        var response = await EndSessionAsync(malloryBrowser, Sid(aliceSession));
        var unknown = await EndSessionAsync(malloryBrowser, "no-such-session");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        // Someone else's session and a session that does not exist look alike.
        Assert.Equal(await unknown.Content.ReadAsStringAsync(), await response.Content.ReadAsStringAsync());
        var stored = await Server.Store.Sessions.FindAsync(Sid(aliceSession), default);
        Assert.Null(stored!.RevokedAt);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("photos", aliceSession.RefreshToken!)).Status);
        Assert.Equal([Sid(aliceSession)], ListedSids(await PageAsync(aliceBrowser)));
    }

    // ---- Sign out everywhere -----------------------------------------------------------------------------------

    [Fact]
    public async Task SignOutEverywhere_RevokesAll_SetsTheWatermark_AndEndedSessionsStayListedWithTheReason()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user, ChromeOnWindows);
        var photos = await SessionAsync(browser, "photos", ChromeOnWindows);
        var notes = await SessionAsync(browser, "notes", SafariOnIphone);
        var page = await PageAsync(browser);
        var before = Server.Time.GetUtcNow();

        var response = await PostAsync(browser, "account/signout-everywhere", new Dictionary<string, string> { ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page) });

        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.StartsWith("/login", response.Headers.Location?.ToString(), StringComparison.Ordinal);
        Assert.Equal("invalid_grant", (await RefreshAsync("photos", photos.RefreshToken!)).Error);
        Assert.Equal("invalid_grant", (await RefreshAsync("notes", notes.RefreshToken!)).Error);
        // The old access tokens are not active any more.
        Assert.False(await IntrospectActiveAsync("photos", photos.AccessToken!));
        Assert.False(await IntrospectActiveAsync("notes", notes.AccessToken!));
        // The "revoked before" watermark is set, to the millisecond (the precision of the sessions' start times).
        var stored = await Server.Store.Users.FindByIdAsync(user.Id, default);
        Assert.Equal(before.ToUnixTimeMilliseconds(), stored!.RevokedBefore?.ToUnixTimeMilliseconds());
        // This browser is signed out too.
        var after = await browser.GetAsync("account");
        Assert.Equal("/login?returnUrl=%2Faccount", after.Headers.Location?.ToString());

        // Signing in again (a person takes a moment): the ended sessions are listed with the reason in plain words.
        Server.Time.Advance(TimeSpan.FromSeconds(5));
        var again = await BrowserAsync(user);
        var html = await PageAsync(again);
        Assert.Contains("No application holds a session for you.", Section(html, "Active sessions"), StringComparison.Ordinal);
        var ended = Section(html, "Ended");
        Assert.Contains("Photo Album", ended, StringComparison.Ordinal);
        Assert.Contains("Notes &amp; Lists", ended, StringComparison.Ordinal);
        Assert.Contains("Safari on iOS", ended, StringComparison.Ordinal);
        Assert.Equal(2, Regex.Count(ended, "You ended it\\."));
        // A new session after the watermark works.
        var fresh = await SessionAsync(again, "photos", ChromeOnWindows);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("photos", fresh.RefreshToken!)).Status);
    }

    [Fact]
    public async Task SignOutEverywhere_WithoutAntiforgery_Is400_AndNothingChanges()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        var tokens = await SessionAsync(browser, "photos", ChromeOnWindows);

        var response = await PostAsync(browser, "account/signout-everywhere", []);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null((await Server.Store.Users.FindByIdAsync(user.Id, default))!.RevokedBefore);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync("photos", tokens.RefreshToken!)).Status);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("account")).StatusCode);
    }

    // ---- Reasons in plain words --------------------------------------------------------------------------------

    [Fact]
    public async Task SessionRevokedByRefreshTokenReuse_IsShownAsPossibleTheft()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        var tokens = await SessionAsync(browser, "photos", ChromeOnWindows);
        var second = await RefreshAsync("photos", tokens.RefreshToken!);
        var third = await RefreshAsync("photos", second.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, third.Status);

        // The first token again, after its successor was used: reuse, the whole session ends.
        Assert.Equal("invalid_grant", (await RefreshAsync("photos", tokens.RefreshToken!)).Error);
        Assert.Equal("invalid_grant", (await RefreshAsync("photos", third.RefreshToken!)).Error);

        var html = await PageAsync(browser);
        Assert.Empty(ListedSids(Section(html, "Active sessions")));
        var ended = Section(html, "Ended");
        Assert.Contains("Photo Album", ended, StringComparison.Ordinal);
        Assert.Contains("used twice: possible theft", ended, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EndedSessions_StayListedFor30Days_ExpiredOnesSayWhy()
    {
        var user = await f.NewUserAsync();
        var browser = await BrowserAsync(user);
        var ended = await SessionAsync(browser, "photos", ChromeOnWindows);
        var idle = await SessionAsync(browser, "notes", FirefoxOnLinux);
        Assert.Equal(HttpStatusCode.SeeOther, (await EndSessionAsync(browser, Sid(ended))).StatusCode);

        // 29 days on: the ended one is still listed; the unused one expired after the 14-day idle window.
        Server.Time.Advance(TimeSpan.FromDays(29));
        var html = await PageAsync(await BrowserAsync(user));
        Assert.Empty(ListedSids(Section(html, "Active sessions")));
        var list = Section(html, "Ended");
        Assert.Contains("Photo Album", list, StringComparison.Ordinal);
        Assert.Contains("You ended it.", list, StringComparison.Ordinal);
        Assert.Contains("Notes &amp; Lists", list, StringComparison.Ordinal);
        Assert.Contains("Expired after a period without use.", list, StringComparison.Ordinal);
        Assert.Equal("invalid_grant", (await RefreshAsync("notes", idle.RefreshToken!)).Error);

        // 31 days after it ended, the ended one is gone from the page; the idle one (ended on day 14) too after day 44.
        Server.Time.Advance(TimeSpan.FromDays(2));
        html = await PageAsync(await BrowserAsync(user));
        Assert.DoesNotContain("Photo Album", html, StringComparison.Ordinal);
        Assert.Contains("Notes &amp; Lists", html, StringComparison.Ordinal);
        Server.Time.Advance(TimeSpan.FromDays(14));
        html = await PageAsync(await BrowserAsync(user));
        Assert.DoesNotContain("Ended in the last 30 days", html, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("refresh_token_reuse", "Ended because its refresh token was used twice: possible theft.")]
    [InlineData("revoked_by_user", "You ended it.")]
    [InlineData("revoked_by_admin", "Ended by an administrator.")]
    [InlineData("user_disabled", "Ended because the account was disabled.")]
    [InlineData("password_reset", "Ended because the password was reset.")]
    [InlineData("logout", "You signed out.")]
    public void Reasons_AreInPlainWords(string reason, string words)
    {
        var now = DateTimeOffset.UtcNow;
        var session = new Tessera.Core.Sessions.Session
        {
            Id = "s", UserId = "u", ClientId = "c", Scopes = [], CreatedAt = now, AuthTime = now, IdleExpiresAt = now.AddDays(1), AbsoluteExpiresAt = now.AddDays(2),
            RevokedAt = now, RevokedReason = reason,
        };

        Assert.Equal(words, Tessera.Server.Endpoints.AccountEndpoint.Reason(session, now));
    }

    [Theory]
    [InlineData(ChromeOnWindows, "Chrome on Windows")]
    [InlineData(FirefoxOnLinux, "Firefox on Linux")]
    [InlineData(SafariOnIphone, "Safari on iOS")]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0", "Edge on Windows")]
    [InlineData("", "Unknown device")]
    public void Device_IsDescribedFromTheUserAgent(string userAgent, string expected) =>
        Assert.Equal(expected, Tessera.Server.Endpoints.AccountEndpoint.Device(userAgent));

    [GeneratedRegex("<tr>.*?</tr>", RegexOptions.Singleline)]
    private static partial Regex Rows();

    [GeneratedRegex("name=\"sid\" value=\"([^\"]+)\"")]
    private static partial Regex SidField();
}
