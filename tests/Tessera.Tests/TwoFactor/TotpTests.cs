using System.Net;
using System.Text.RegularExpressions;
using Microsoft.IdentityModel.JsonWebTokens;
using OtpNet;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.TwoFactor;

public sealed partial class TotpTests : IAsyncLifetime
{
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        await _server.AddUserAsync("alice", "alice-password-1");
        await _server.AddClientAsync(TestClients.Public("spa"), confidential: false);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string Code(byte[] secret, TimeSpan? offset = null) => new Totp(secret).ComputeTotp((_server.Time.GetUtcNow() + (offset ?? TimeSpan.Zero)).UtcDateTime);

    /// <summary>Signs in, turns TOTP on from the account page, returns the secret and the recovery codes.</summary>
    private async Task<(byte[] Secret, List<string> Recovery)> EnrollAsync()
    {
        var browser = await _driver.SignInAsync("alice", "alice-password-1");
        var page = await (await browser.GetAsync("account/2fa")).Content.ReadAsStringAsync();
        var secret = Base32Encoding.ToBytes(KeyText().Match(page).Groups[1].Value);
        var enabled = await browser.PostAsync("account/2fa/enable", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page),
            ["enroll"] = WebUtility.HtmlDecode(EnrollField().Match(page).Groups[1].Value),
            ["code"] = Code(secret),
        }));
        var html = await enabled.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, enabled.StatusCode);
        var recovery = RecoveryCode().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(10, recovery.Count);
        return (secret, recovery);
    }

    private async Task<(HttpClient Browser, HttpResponseMessage Response)> PasswordStepAsync()
    {
        var browser = _server.CreateClient(new CookieContainer());
        var login = await (await browser.GetAsync("login?returnUrl=%2Faccount")).Content.ReadAsStringAsync();
        var post = await browser.PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(login), ["username"] = "alice", ["password"] = "alice-password-1", ["returnUrl"] = "/account",
        }));
        return (browser, post);
    }

    private static async Task<HttpResponseMessage> SecondStepAsync(HttpClient browser, string code)
    {
        var page = await (await browser.GetAsync("login/2fa")).Content.ReadAsStringAsync();
        return await browser.PostAsync("login/2fa", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page), ["code"] = code,
        }));
    }

    [Fact]
    public async Task WithTotpOn_SignInAsksForTheCode_AndTheIdTokenSaysOtp()
    {
        var (secret, _) = await EnrollAsync();
        _server.Time.Advance(TimeSpan.FromSeconds(31));

        var (browser, afterPassword) = await PasswordStepAsync();
        Assert.Equal(HttpStatusCode.SeeOther, afterPassword.StatusCode);
        Assert.Equal("/login/2fa", afterPassword.Headers.Location!.ToString());
        // Not signed in yet: the account page still sends to the login form.
        Assert.Contains("/login", (await browser.GetAsync("account")).Headers.Location!.ToString());

        var wrong = await SecondStepAsync(browser, "000000" == Code(secret) ? "111111" : "000000");
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        var ok = await SecondStepAsync(browser, Code(secret));
        Assert.Equal(HttpStatusCode.SeeOther, ok.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("account")).StatusCode);

        var (verifier, challenge) = OAuthDriver.NewPkce();
        var result = await _driver.AuthorizeAsync(browser, OAuthDriver.AuthorizeUrl("spa", "openid", challenge));
        var tokens = await _driver.TokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = result["code"], ["redirect_uri"] = OAuthDriver.RedirectUri, ["code_verifier"] = verifier,
        }, "spa");
        var amr = new JsonWebToken(tokens.IdToken).GetPayloadValue<string[]>("amr");
        Assert.Equal(["pwd", "otp"], amr);
    }

    [Fact]
    public async Task ACode_WorksOnce_AndARecoveryCodeWorksOnce()
    {
        var (secret, recovery) = await EnrollAsync();
        _server.Time.Advance(TimeSpan.FromSeconds(31));
        var code = Code(secret);
        var (first, _) = await PasswordStepAsync();
        Assert.Equal(HttpStatusCode.SeeOther, (await SecondStepAsync(first, code)).StatusCode);
        var (second, _) = await PasswordStepAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await SecondStepAsync(second, code)).StatusCode);

        Assert.Equal(HttpStatusCode.SeeOther, (await SecondStepAsync(second, recovery[0])).StatusCode);
        var (third, _) = await PasswordStepAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await SecondStepAsync(third, recovery[0])).StatusCode);
    }

    [Fact]
    public async Task TheSecondStep_WithoutAPasswordStep_SendsBackToTheLoginForm()
    {
        await EnrollAsync();
        var browser = _server.CreateClient(new CookieContainer());
        var response = await browser.GetAsync("login/2fa");
        Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
        Assert.Equal("/login", response.Headers.Location!.ToString());
    }

    [GeneratedRegex("<code style=\"font-size:1.1rem\">([A-Z2-7]+)</code>")]
    private static partial Regex KeyText();

    [GeneratedRegex("name=\"enroll\" value=\"([^\"]+)\"")]
    private static partial Regex EnrollField();

    [GeneratedRegex("<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")]
    private static partial Regex RecoveryCode();
}
