using System.Net;
using System.Text.RegularExpressions;
using Tessera.Tests.Infrastructure;
using static Tessera.Tests.Server.ServerTestKit;

namespace Tessera.Tests.Server;

/// <summary>The provider's own sign-in form, driven over HTTP the way a browser would, antiforgery included.</summary>
public sealed partial class LoginPageTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private const string SessionCookie = "tessera.session";
    private const string Password = SharedServer.Password;
    private readonly TesseraTestServer _server = shared.Server;

    /// <summary>A user of its own for tests that fail a sign-in, so no failure count is shared between tests.</summary>
    private async Task<string> NewUserAsync() => (await _server.AddUserAsync(SharedServer.Unique("bob"), Password)).Username;

    private sealed record Browser(HttpClient Http, CookieContainer Cookies);

    private Browser NewBrowser()
    {
        var cookies = new CookieContainer();
        return new Browser(_server.CreateClient(cookies), cookies);
    }

    private static async Task<string> LoginPageAsync(Browser b, string returnUrl = "/account")
    {
        var page = await b.Http.GetAsync("login?returnUrl=" + Uri.EscapeDataString(returnUrl));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        return await page.Content.ReadAsStringAsync();
    }

    private static Task<HttpResponseMessage> PostLoginAsync(Browser b, string? antiforgery, string username, string password, string returnUrl = "/account")
    {
        var form = new Dictionary<string, string> { ["username"] = username, ["password"] = password, ["returnUrl"] = returnUrl };
        if (antiforgery is not null) form["__RequestVerificationToken"] = antiforgery;
        return b.Http.PostAsync("login", new FormUrlEncodedContent(form));
    }

    private async Task<HttpResponseMessage> SignInAsync(Browser b, string username = "alice", string password = Password, string returnUrl = "/account")
    {
        var html = await LoginPageAsync(b, returnUrl);
        return await PostLoginAsync(b, OAuthDriver.AntiforgeryToken(html), username, password, returnUrl);
    }

    private Cookie? SessionOf(Browser b) => b.Cookies.GetCookies(new Uri(_server.Issuer)).FirstOrDefault(c => c.Name == SessionCookie);

    private static string ErrorMessage(string html)
    {
        var m = ErrorParagraph().Match(html);
        Assert.True(m.Success, "no error message on the page");
        return m.Groups[1].Value;
    }

    [Fact]
    public async Task Login_ShowsAnHtmlFormWithUsernamePasswordAndAnAntiforgeryToken()
    {
        var b = NewBrowser();
        var response = await b.Http.GetAsync("login");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("<form method=\"post\" action=\"/login\">", html, StringComparison.Ordinal);
        Assert.Contains("name=\"username\"", html, StringComparison.Ordinal);
        Assert.Matches("name=\"password\" type=\"password\"", html);
        Assert.False(string.IsNullOrEmpty(OAuthDriver.AntiforgeryToken(html)));
        Assert.NotEmpty(SetCookies(response, "tessera.af"));
        Assert.Null(SessionOf(b));
    }

    [Fact]
    public async Task Login_SendsSecurityHeaders_AndNoHstsOverHttp()
    {
        var response = await NewBrowser().Http.GetAsync("login");

        var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Equal("no-referrer", string.Join(",", response.Headers.GetValues("Referrer-Policy")));
        Assert.Equal("nosniff", string.Join(",", response.Headers.GetValues("X-Content-Type-Options")));
        Assert.False(response.Headers.Contains("Strict-Transport-Security"));
    }

    [Fact]
    public async Task Login_SendsSecurityHeaders_OnThePageShownAfterAFailedAttempt()
    {
        var response = await SignInAsync(NewBrowser(), await NewUserAsync(), "wrong-password");

        Assert.Contains("frame-ancestors 'none'", string.Join(";", response.Headers.GetValues("Content-Security-Policy")), StringComparison.Ordinal);
        Assert.Equal("no-referrer", string.Join(",", response.Headers.GetValues("Referrer-Policy")));
        Assert.Equal("nosniff", string.Join(",", response.Headers.GetValues("X-Content-Type-Options")));
        Assert.False(response.Headers.Contains("Strict-Transport-Security"));
    }

    [Fact]
    public async Task Login_Returns400AndNoSessionCookie_WhenTheAntiforgeryTokenIsMissing()
    {
        var b = NewBrowser();
        await LoginPageAsync(b);

        var response = await PostLoginAsync(b, antiforgery: null, "alice", Password);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Empty(SetCookies(response, SessionCookie));
        Assert.Null(SessionOf(b));
    }

    [Fact]
    public async Task Login_Returns400AndNoSessionCookie_WhenTheAntiforgeryTokenComesFromAnotherBrowser()
    {
        var attacker = NewBrowser();
        var token = OAuthDriver.AntiforgeryToken(await LoginPageAsync(attacker));
        var victim = NewBrowser();
        await LoginPageAsync(victim);

        var response = await PostLoginAsync(victim, token, "alice", Password);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Empty(SetCookies(response, SessionCookie));
        Assert.Null(SessionOf(victim));
    }

    [Fact]
    public async Task Login_Returns400AndNoSessionCookie_WhenTheAntiforgeryCookieIsMissing()
    {
        var token = OAuthDriver.AntiforgeryToken(await LoginPageAsync(NewBrowser()));
        var cookieless = NewBrowser();

        var response = await PostLoginAsync(cookieless, token, "alice", Password);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(SessionOf(cookieless));
    }

    [Fact]
    public async Task Login_Returns400_WhenTheBodyIsNotAForm()
    {
        var b = NewBrowser();
        await LoginPageAsync(b);

        var response = await b.Http.PostAsync("login", new StringContent("{\"username\":\"alice\"}", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(SessionOf(b));
    }

    [Fact]
    public async Task Login_ShowsTheSameMessage_ForAWrongPasswordAndAnUnknownUser()
    {
        var wrongPassword = await SignInAsync(NewBrowser(), await NewUserAsync(), "not-the-password");
        var unknownUser = await SignInAsync(NewBrowser(), SharedServer.Unique("mallory"), "not-the-password");

        Assert.Equal(HttpStatusCode.BadRequest, wrongPassword.StatusCode);
        Assert.Equal(wrongPassword.StatusCode, unknownUser.StatusCode);
        var a = await wrongPassword.Content.ReadAsStringAsync();
        var b = await unknownUser.Content.ReadAsStringAsync();
        Assert.Equal(ErrorMessage(a), ErrorMessage(b));
        Assert.Equal(AntiforgeryField().Replace(a, ""), AntiforgeryField().Replace(b, ""));
        Assert.Empty(SetCookies(wrongPassword, SessionCookie));
        Assert.Empty(SetCookies(unknownUser, SessionCookie));
    }

    [Fact]
    public async Task Login_ShowsTheFormAgainWithTheReturnUrl_AfterAWrongPassword()
    {
        var response = await SignInAsync(NewBrowser(), await NewUserAsync(), "wrong-password", "/connect/authorize?client_id=web");

        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("name=\"password\"", html, StringComparison.Ordinal);
        Assert.Contains("value=\"/connect/authorize?client_id=web\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-password", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_Returns303ToTheReturnUrl_OnSuccess()
    {
        var b = NewBrowser();

        var response = await SignInAsync(b, returnUrl: "/connect/authorize?client_id=web&state=1");

        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Equal("/connect/authorize?client_id=web&state=1", response.Headers.Location?.ToString());
        Assert.NotNull(SessionOf(b));
    }

    [Fact]
    public async Task Login_SetsAnHttpOnlySameSiteLaxSessionCookie_WithoutTheHostPrefixOverHttp()
    {
        var response = await SignInAsync(NewBrowser());

        var line = Assert.Single(SetCookies(response, SessionCookie));
        var attributes = line.Split(';').Skip(1).Select(a => a.Trim().ToLowerInvariant()).ToList();
        Assert.Contains("httponly", attributes);
        Assert.Contains("samesite=lax", attributes);
        Assert.Contains("path=/", attributes);
        Assert.DoesNotContain(attributes, a => a.StartsWith("domain", StringComparison.Ordinal));
        Assert.Empty(SetCookies(response, "__Host-" + SessionCookie));
    }

    [Fact]
    public async Task Login_IssuesANewSessionCookieValue_AtEveryLogin()
    {
        var b = NewBrowser();
        var first = CookieValue(Assert.Single(SetCookies(await SignInAsync(b), SessionCookie)));
        var second = CookieValue(Assert.Single(SetCookies(await SignInAsync(b), SessionCookie)));
        var other = CookieValue(Assert.Single(SetCookies(await SignInAsync(NewBrowser()), SessionCookie)));

        Assert.NotEqual(first, second);
        Assert.NotEqual(first, other);
        Assert.NotEqual(second, other);
        Assert.Equal(second, SessionOf(b)!.Value);
    }

    [Fact]
    public async Task Login_ReplacesAPlantedSessionCookie()
    {
        var b = NewBrowser();
        b.Cookies.Add(new Uri(_server.Issuer), new Cookie(SessionCookie, "planted-by-attacker"));

        var response = await SignInAsync(b);

        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.NotEqual("planted-by-attacker", SessionOf(b)!.Value);
    }

    [Theory]
    [InlineData("//evil.com")]
    [InlineData("https://evil.com")]
    [InlineData("/\\evil.com")]
    [InlineData("\\\\evil.com")]
    [InlineData("http:evil.com")]
    [InlineData("javascript:alert(1)")]
    [InlineData(" //evil.com")]
    [InlineData("/\t/evil.com")]
    public async Task Login_DoesNotFollowAnOpenRedirect_InReturnUrl(string returnUrl)
    {
        var b = NewBrowser();
        var html = await LoginPageAsync(b, returnUrl);
        Assert.Contains("name=\"returnUrl\" value=\"/account\"", html, StringComparison.Ordinal);

        // Even a form posted with the hostile value (not the one the page rendered) is sent home.
        var response = await PostLoginAsync(b, OAuthDriver.AntiforgeryToken(html), "alice", Password, returnUrl);

        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Equal("/account", response.Headers.Location?.ToString());
    }

    [Fact]
    public async Task Login_EncodesTheReturnUrlInThePage()
    {
        var html = await LoginPageAsync(NewBrowser(), "/account\"><script>alert(1)</script>");

        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_SessionCookieSignsTheBrowserIn_ForTheAccountPage()
    {
        var b = NewBrowser();
        await SignInAsync(b);

        var account = await b.Http.GetAsync("account");

        Assert.Equal(HttpStatusCode.OK, account.StatusCode);
        Assert.Contains("alice", await account.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [GeneratedRegex("<p class=\"error\"[^>]*>([^<]*)</p>")]
    private static partial Regex ErrorParagraph();

    [GeneratedRegex("value=\"[A-Za-z0-9_\\-]{40,}\"")]
    private static partial Regex AntiforgeryField();
}
