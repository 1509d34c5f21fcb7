using System.Net;
using System.Text.RegularExpressions;
using Tessera.Core.Clients;
using Tessera.Tests.Infrastructure;
using static Tessera.Tests.Server.ServerTestKit;

namespace Tessera.Tests.Server;

/// <summary>RFC 6749 §4.1.1-4.1.2, RFC 7636, RFC 8252 §7.3, RFC 9207 and OIDC Core §3.1.2 at the authorization endpoint.</summary>
public sealed partial class AuthorizeEndpointTests(SharedServer shared) : IClassFixture<SharedServer>, IAsyncLifetime
{
    private const string Password = SharedServer.Password;
    private readonly TesseraTestServer _server = shared.Server;
    private readonly OAuthDriver _driver = shared.Driver;
    private string _web = null!;
    private string _spa = null!;

    public async Task InitializeAsync()
    {
        _web = (await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("web")), confidential: true)).Client.Id;
        _spa = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("spa")), confidential: false)).Client.Id;
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private static string Challenge => OAuthDriver.NewPkce().Challenge;

    private async Task<HttpResponseMessage> GetAsync(string url, HttpClient? browser = null)
    {
        if (browser is not null) return await browser.GetAsync(url);
        using var http = _server.CreateClient();
        return await http.GetAsync(url);
    }

    /// <summary>RFC 6749 §4.1.2.1: the user sees an error page, and the browser is sent nowhere.</summary>
    private static async Task AssertErrorPageAsync(HttpResponseMessage response)
    {
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"expected the error page, got {(int)response.StatusCode} {response.Headers.Location}");
        Assert.Null(response.Headers.Location);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Request refused", html, StringComparison.Ordinal);
        Assert.DoesNotContain("app.example.com", html, StringComparison.Ordinal);
    }

    /// <summary>An error sent back to the client: its redirect URI, the error, the original state and our issuer.</summary>
    private Dictionary<string, string> AssertErrorRedirect(HttpResponseMessage response, string error, string? state = "xyz", string redirectUri = OAuthDriver.RedirectUri)
    {
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var q = RedirectQuery(response, redirectUri);
        Assert.Equal(error, q["error"]);
        Assert.Equal(_server.Issuer, q["iss"]);
        if (state is null) Assert.False(q.ContainsKey("state"));
        else Assert.Equal(state, q["state"]);
        Assert.False(q.ContainsKey("code"));
        return q;
    }

    // ---- requests that must never redirect ----

    [Fact]
    public async Task Authorize_ShowsAnErrorPageAndNeverRedirects_WhenTheClientIsUnknown()
    {
        var response = await GetAsync(OAuthDriver.AuthorizeUrl("no-such-client", "openid", Challenge));

        await AssertErrorPageAsync(response);
    }

    [Fact]
    public async Task Authorize_ShowsAnErrorPage_WhenClientIdIsMissing()
    {
        var response = await GetAsync($"connect/authorize?response_type=code&redirect_uri={Uri.EscapeDataString(OAuthDriver.RedirectUri)}&state=xyz");

        await AssertErrorPageAsync(response);
    }

    [Fact]
    public async Task Authorize_ShowsAnErrorPage_WhenRedirectUriIsMissing()
    {
        var response = await GetAsync($"connect/authorize?response_type=code&client_id={_web}&scope=openid&state=xyz");

        await AssertErrorPageAsync(response);
    }

    [Theory]
    [InlineData("https://evil.example.com/callback")]
    [InlineData("https://app.example.com/callback/")]
    [InlineData("https://APP.example.com/callback")]
    [InlineData("https://app.example.com/Callback")]
    [InlineData("https://app.example.com:443/callback")]
    [InlineData("https://app.example.com/callback?x=1")]
    [InlineData("https://app.example.com/callback#frag")]
    [InlineData("https://app.example.com/callback/../callback")]
    [InlineData("http://app.example.com/callback")]
    [InlineData("not a uri")]
    public async Task Authorize_ShowsAnErrorPage_WhenRedirectUriIsNotExactlyARegisteredOne(string redirectUri)
    {
        var response = await GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, redirectUri: redirectUri));

        await AssertErrorPageAsync(response);
    }

    [Fact]
    public async Task Authorize_ShowsAnErrorPage_WhenRedirectUriIsRepeated()
    {
        var url = OAuthDriver.AuthorizeUrl(_web, "openid", Challenge) + "&redirect_uri=" + Uri.EscapeDataString(OAuthDriver.RedirectUri);

        await AssertErrorPageAsync(await GetAsync(url));
    }

    [Fact]
    public async Task Authorize_ShowsAnErrorPage_EvenWhenSignedIn_ForAnUnregisteredRedirectUri()
    {
        var browser = await _driver.SignInAsync(SharedServer.User, Password);

        var response = await browser.GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, redirectUri: "https://evil.example.com/cb"));

        await AssertErrorPageAsync(response);
    }

    [Fact]
    public async Task Authorize_EncodesTheClientIdOnTheErrorPage()
    {
        var response = await GetAsync(OAuthDriver.AuthorizeUrl("<script>alert(1)</script>", "openid", Challenge));

        await AssertErrorPageAsync(response);
        Assert.DoesNotContain("<script>", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    // ---- native apps: the loopback port exception (RFC 8252 §7.3) ----

    [Theory]
    [InlineData(53124)]
    [InlineData(8080)]
    public async Task Authorize_AcceptsAnyLoopbackPort_ForANativeClient_AndTheCodeExchangesWithThatUri(int port)
    {
        var native = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("native")) with { Native = true, RedirectUris = ["http://127.0.0.1/cb"] }, confidential: false)).Client;
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var redirectUri = $"http://127.0.0.1:{port}/cb";
        var browser = _server.CreateClient(new CookieContainer());

        var result = await _driver.AuthorizeAsync(browser, OAuthDriver.AuthorizeUrl(native.Id, "openid", challenge, redirectUri: redirectUri), SharedServer.User, Password);

        Assert.True(result.ContainsKey("code"), string.Join("&", result));
        Assert.Equal(_server.Issuer, result["iss"]);
        var answer = await _driver.TokenAsync(new()
        {
            ["grant_type"] = "authorization_code", ["code"] = result["code"], ["redirect_uri"] = redirectUri, ["code_verifier"] = verifier,
        }, native.Id);
        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Fact]
    public async Task Authorize_RedirectsToTheLoopbackUriWithTheRequestedPort_ForANativeClient()
    {
        var native = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("native")) with { Native = true, RedirectUris = ["http://127.0.0.1/cb"] }, confidential: false)).Client;

        var response = await GetAsync(OAuthDriver.AuthorizeUrl(native.Id, "openid", null, redirectUri: "http://127.0.0.1:49152/cb"));

        AssertErrorRedirect(response, "invalid_request", redirectUri: "http://127.0.0.1:49152/cb");
    }

    [Fact]
    public async Task Authorize_ShowsAnErrorPage_ForALoopbackPortOnANonNativeClient()
    {
        var app = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("not-native")) with { Native = false, RedirectUris = ["http://127.0.0.1/cb"] }, confidential: false)).Client;

        await AssertErrorPageAsync(await GetAsync(OAuthDriver.AuthorizeUrl(app.Id, "openid", Challenge, redirectUri: "http://127.0.0.1:53124/cb")));
    }

    [Theory]
    [InlineData("http://127.0.0.1:53124/other")]
    [InlineData("http://127.0.0.1:53124/cb/")]
    [InlineData("http://localhost:53124/cb")]
    [InlineData("https://127.0.0.1:53124/cb")]
    [InlineData("http://127.0.0.2:53124/cb")]
    [InlineData("http://user@127.0.0.1:53124/cb")]
    [InlineData("http://127.0.0.1:53124/cb?x=1")]
    public async Task Authorize_ShowsAnErrorPage_ForANativeClient_WhenOnlyThePortWouldNotBeEnough(string redirectUri)
    {
        var native = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("native")) with { Native = true, RedirectUris = ["http://127.0.0.1/cb"] }, confidential: false)).Client;

        await AssertErrorPageAsync(await GetAsync(OAuthDriver.AuthorizeUrl(native.Id, "openid", Challenge, redirectUri: redirectUri)));
    }

    // ---- errors that go back to the client ----

    [Fact]
    public async Task Authorize_RedirectsWithUnsupportedResponseType_ForResponseTypeToken()
    {
        var url = OAuthDriver.AuthorizeUrl(_web, "openid", Challenge).Replace("response_type=code", "response_type=token", StringComparison.Ordinal);

        AssertErrorRedirect(await GetAsync(url), "unsupported_response_type");
    }

    [Theory]
    [InlineData("id_token")]
    [InlineData("code id_token")]
    [InlineData("code token")]
    public async Task Authorize_RedirectsWithUnsupportedResponseType_ForHybridAndImplicitResponseTypes(string responseType)
    {
        var url = OAuthDriver.AuthorizeUrl(_web, "openid", Challenge).Replace("response_type=code", "response_type=" + Uri.EscapeDataString(responseType), StringComparison.Ordinal);

        AssertErrorRedirect(await GetAsync(url), "unsupported_response_type");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidRequest_WhenResponseTypeIsMissing()
    {
        var url = OAuthDriver.AuthorizeUrl(_web, "openid", Challenge).Replace("response_type=code&", "", StringComparison.Ordinal);

        AssertErrorRedirect(await GetAsync(url), "invalid_request");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidRequest_WhenAPublicClientSendsNoCodeChallenge()
    {
        AssertErrorRedirect(await GetAsync(OAuthDriver.AuthorizeUrl(_spa, "openid", challenge: null)), "invalid_request");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidRequest_ForCodeChallengeMethodPlain()
    {
        var url = OAuthDriver.AuthorizeUrl(_spa, "openid", challenge: null, extra: "&code_challenge=" + OAuthDriver.NewPkce().Verifier + "&code_challenge_method=plain");

        AssertErrorRedirect(await GetAsync(url), "invalid_request");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidRequest_ForCodeChallengeMethodPlain_EvenForAConfidentialClient()
    {
        var url = OAuthDriver.AuthorizeUrl(_web, "openid", challenge: null, extra: "&code_challenge=" + Challenge + "&code_challenge_method=plain");

        AssertErrorRedirect(await GetAsync(url), "invalid_request");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidRequest_WhenCodeChallengeMethodIsOmitted()
    {
        // RFC 7636 §4.3: an omitted method means "plain", which is not allowed.
        var url = OAuthDriver.AuthorizeUrl(_spa, "openid", challenge: null, extra: "&code_challenge=" + Challenge);

        AssertErrorRedirect(await GetAsync(url), "invalid_request");
    }

    [Theory]
    [InlineData("short")]
    [InlineData("ThisIsFortyFourCharactersLongxxxxxxxxxxxxxxx")]
    [InlineData("not+base64url/characters=not+base64url/cha")]
    public async Task Authorize_RedirectsWithInvalidRequest_ForAMalformedCodeChallenge(string challenge)
    {
        var url = OAuthDriver.AuthorizeUrl(_spa, "openid", challenge: null, extra: "&code_challenge=" + Uri.EscapeDataString(challenge) + "&code_challenge_method=S256");

        AssertErrorRedirect(await GetAsync(url), "invalid_request");
    }

    [Theory]
    [InlineData("openid api.admin")]
    [InlineData("phone")]
    [InlineData("OPENID")]
    public async Task Authorize_RedirectsWithInvalidScope_ForAScopeTheClientLacks(string scope)
    {
        AssertErrorRedirect(await GetAsync(OAuthDriver.AuthorizeUrl(_web, scope, Challenge)), "invalid_scope");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidTarget_ForAResourceTheClientMayNotAskFor()
    {
        var url = OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, extra: "&resource=" + Uri.EscapeDataString("https://evil.example.com"));

        AssertErrorRedirect(await GetAsync(url), "invalid_target");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidRequest_ForResponseModeFragment()
    {
        AssertErrorRedirect(await GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, extra: "&response_mode=fragment")), "invalid_request");
    }

    [Fact]
    public async Task Authorize_RedirectsWithInvalidRequest_WhenScopeIsRepeated()
    {
        var response = await GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, extra: "&scope=profile"));

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var q = RedirectQuery(response);
        Assert.Equal("invalid_request", q["error"]);
        Assert.Equal(_server.Issuer, q["iss"]);
    }

    [Fact]
    public async Task Authorize_RedirectsWithUnauthorizedClient_ForAClientWithoutTheCodeGrant()
    {
        var (svc, _) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("svc")) with { GrantTypes = [GrantTypes.ClientCredentials] }, confidential: true);

        AssertErrorRedirect(await GetAsync(OAuthDriver.AuthorizeUrl(svc.Id, "openid", Challenge)), "unauthorized_client");
    }

    [Fact]
    public async Task Authorize_ErrorRedirectsCarryNoStateWhenNoneWasSent_ButStillCarryIss()
    {
        var url = OAuthDriver.AuthorizeUrl(_web, "openid api.admin", Challenge).Replace("&state=xyz", "", StringComparison.Ordinal);

        AssertErrorRedirect(await GetAsync(url), "invalid_scope", state: null);
    }

    [Fact]
    public async Task Authorize_ReturnsAStateWithReservedCharactersUnchanged()
    {
        const string state = "a b&c=d/é?#%";
        var url = OAuthDriver.AuthorizeUrl(_web, "openid api.admin", Challenge, state: Uri.EscapeDataString(state));

        AssertErrorRedirect(await GetAsync(url), "invalid_scope", state);
    }

    [Fact]
    public async Task Authorize_RedirectsWithLoginRequired_ForPromptNoneWhenNotSignedIn()
    {
        AssertErrorRedirect(await GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, extra: "&prompt=none")), "login_required");
    }

    [Fact]
    public async Task Authorize_RedirectsWithConsentRequired_ForPromptNoneOnAThirdPartyClient()
    {
        var third = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("third"), firstParty: false), confidential: false)).Client;
        var browser = await _driver.SignInAsync(SharedServer.User, Password);

        var response = await browser.GetAsync(OAuthDriver.AuthorizeUrl(third.Id, "openid", Challenge, extra: "&prompt=none"));

        AssertErrorRedirect(response, "consent_required");
    }

    [Fact]
    public async Task Authorize_IssuesACodeWithoutAnyPage_ForPromptNoneWhenSignedInToAFirstPartyClient()
    {
        var browser = await _driver.SignInAsync(SharedServer.User, Password);

        var response = await browser.GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, extra: "&prompt=none"));

        var q = RedirectQuery(response);
        Assert.True(q.ContainsKey("code"));
        Assert.Equal("xyz", q["state"]);
        Assert.Equal(_server.Issuer, q["iss"]);
    }

    // ---- the success path ----

    [Fact]
    public async Task Authorize_SendsAnUnsignedInUserToTheLoginPage_WithTheRequestAsReturnUrl()
    {
        var response = await GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge));

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var location = response.Headers.Location!.ToString();
        Assert.StartsWith("/login?returnUrl=", location, StringComparison.Ordinal);
        Assert.StartsWith("/connect/authorize?", Uri.UnescapeDataString(location["/login?returnUrl=".Length..]), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Authorize_RedirectsWithACodeStateAndIss_ForASignedInUserOfAFirstPartyClient()
    {
        var browser = await _driver.SignInAsync(SharedServer.User, Password);

        var response = await browser.GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge, state: "s-123"));

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        var q = RedirectQuery(response);
        Assert.Equal("s-123", q["state"]);
        Assert.Equal(_server.Issuer, q["iss"]);
        Assert.False(q.ContainsKey("error"));
        // Codes are random with at least 128 bits: 22+ base64url characters after the prefix.
        Assert.Matches("^[A-Za-z0-9_-]+$", q["code"][4..]);
        Assert.True(q["code"].Length - 4 >= 22);
    }

    [Fact]
    public async Task Authorize_IssuesADifferentCodeEachTime()
    {
        var browser = await _driver.SignInAsync(SharedServer.User, Password);
        var a = RedirectQuery(await browser.GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge)))["code"];
        var b = RedirectQuery(await browser.GetAsync(OAuthDriver.AuthorizeUrl(_web, "openid", Challenge)))["code"];

        Assert.NotEqual(a, b);
    }

    [Fact]
    public async Task Authorize_AcceptsAFormPost()
    {
        var browser = await _driver.SignInAsync(SharedServer.User, Password);
        var response = await browser.PostAsync("connect/authorize", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["response_type"] = "code", ["client_id"] = _spa, ["redirect_uri"] = OAuthDriver.RedirectUri, ["scope"] = "openid",
            ["state"] = "posted", ["code_challenge"] = Challenge, ["code_challenge_method"] = "S256",
        }));

        var q = RedirectQuery(response);
        Assert.True(q.ContainsKey("code"));
        Assert.Equal("posted", q["state"]);
        Assert.Equal(_server.Issuer, q["iss"]);
    }

    // ---- consent for third-party clients ----

    [Fact]
    public async Task Authorize_ShowsTheConsentPage_ForAThirdPartyClient()
    {
        var third = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("third"), firstParty: false) with { DisplayName = "Third <App>" }, confidential: false)).Client;
        var browser = await _driver.SignInAsync(SharedServer.User, Password);

        var response = await browser.GetAsync(OAuthDriver.AuthorizeUrl(third.Id, "openid offline_access", Challenge));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(response.Headers.Location);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("name=\"decision\" value=\"allow\"", html, StringComparison.Ordinal);
        Assert.Contains("name=\"decision\" value=\"deny\"", html, StringComparison.Ordinal);
        Assert.Contains("name=\"__RequestVerificationToken\"", html, StringComparison.Ordinal);
        Assert.Contains("Third &lt;App&gt;", html, StringComparison.Ordinal);
        Assert.Contains("Stay signed in", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Consent_Deny_RedirectsWithAccessDeniedStateAndIss()
    {
        var third = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("third"), firstParty: false), confidential: false)).Client;
        var browser = await _driver.SignInAsync(SharedServer.User, Password);
        var page = await (await browser.GetAsync(OAuthDriver.AuthorizeUrl(third.Id, "openid", Challenge, state: "deny-me"))).Content.ReadAsStringAsync();

        var response = await browser.PostAsync("connect/consent", ConsentForm(page, "deny"));

        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        var q = RedirectQuery(response);
        Assert.Equal("access_denied", q["error"]);
        Assert.Equal("deny-me", q["state"]);
        Assert.Equal(_server.Issuer, q["iss"]);
        Assert.False(q.ContainsKey("code"));
    }

    [Fact]
    public async Task Consent_Allow_RedirectsWithACodeStateAndIss()
    {
        var third = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("third"), firstParty: false), confidential: false)).Client;
        var browser = await _driver.SignInAsync(SharedServer.User, Password);
        var page = await (await browser.GetAsync(OAuthDriver.AuthorizeUrl(third.Id, "openid", Challenge, state: "allow-me"))).Content.ReadAsStringAsync();

        var response = await browser.PostAsync("connect/consent", ConsentForm(page, "allow"));

        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        var q = RedirectQuery(response);
        Assert.True(q.ContainsKey("code"));
        Assert.Equal("allow-me", q["state"]);
        Assert.Equal(_server.Issuer, q["iss"]);
    }

    [Fact]
    public async Task Consent_WithoutTheAntiforgeryToken_IsRefusedWithoutARedirect()
    {
        var third = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("third"), firstParty: false), confidential: false)).Client;
        var browser = await _driver.SignInAsync(SharedServer.User, Password);
        var page = await (await browser.GetAsync(OAuthDriver.AuthorizeUrl(third.Id, "openid", Challenge))).Content.ReadAsStringAsync();

        var response = await browser.PostAsync("connect/consent", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["request"] = WebUtility.HtmlDecode(RequestField().Match(page).Groups[1].Value), ["decision"] = "allow",
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
    }

    [Fact]
    public async Task Consent_RevalidatesTheRequest_SoATamperedRedirectUriGetsTheErrorPage()
    {
        var third = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("third"), firstParty: false), confidential: false)).Client;
        var browser = await _driver.SignInAsync(SharedServer.User, Password);
        var page = await (await browser.GetAsync(OAuthDriver.AuthorizeUrl(third.Id, "openid", Challenge))).Content.ReadAsStringAsync();
        var request = WebUtility.HtmlDecode(RequestField().Match(page).Groups[1].Value)
            .Replace(Uri.EscapeDataString(OAuthDriver.RedirectUri), Uri.EscapeDataString("https://evil.example.com/cb"), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("evil.example.com", Uri.UnescapeDataString(request), StringComparison.Ordinal);

        var response = await browser.PostAsync("connect/consent", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page), ["request"] = request, ["decision"] = "allow",
        }));

        await AssertErrorPageAsync(response);
    }

    private static FormUrlEncodedContent ConsentForm(string page, string decision) => new(new Dictionary<string, string>
    {
        ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page),
        ["request"] = WebUtility.HtmlDecode(RequestField().Match(page).Groups[1].Value),
        ["decision"] = decision,
    });

    [GeneratedRegex("name=\"request\" value=\"([^\"]*)\"")]
    private static partial Regex RequestField();
}
