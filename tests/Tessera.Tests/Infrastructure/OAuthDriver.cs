using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.Tests.Infrastructure;

/// <summary>Token-endpoint answer as a test sees it.</summary>
public sealed record TokenAnswer(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)
{
    public string? Error => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("error", out var e) ? e.GetString() : null;
    public string? AccessToken => Str("access_token");
    public string? RefreshToken => Str("refresh_token");
    public string? IdToken => Str("id_token");
    public string? Str(string name) => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
    public long? Num(string name) => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Number ? e.GetInt64() : null;
}

/// <summary>Drives the browser and token flows over real HTTP, the way a client library and a user would.</summary>
public sealed partial class OAuthDriver(TesseraTestServer server)
{
    public const string RedirectUri = "https://app.example.com/callback";

    public static (string Verifier, string Challenge) NewPkce()
    {
        var verifier = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        return (verifier, Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
    }

    public static string AuthorizeUrl(string clientId, string scope, string? challenge, string state = "xyz", string redirectUri = RedirectUri, string? extra = null) =>
        $"connect/authorize?response_type=code&client_id={Uri.EscapeDataString(clientId)}&redirect_uri={Uri.EscapeDataString(redirectUri)}" +
        $"&scope={Uri.EscapeDataString(scope)}&state={state}" + (challenge is null ? "" : $"&code_challenge={challenge}&code_challenge_method=S256") + (extra ?? "");

    /// <summary>Signs in through the login form (antiforgery included) and returns the browser's client.</summary>
    public async Task<HttpClient> SignInAsync(string username, string password, CookieContainer? cookies = null)
    {
        var browser = server.CreateClient(cookies ?? new CookieContainer());
        var login = await browser.GetAsync("login?returnUrl=%2Faccount");
        var token = AntiforgeryToken(await login.Content.ReadAsStringAsync());
        var post = await browser.PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["username"] = username, ["password"] = password, ["returnUrl"] = "/account",
        }));
        Assert.Equal(HttpStatusCode.SeeOther, post.StatusCode);
        return browser;
    }

    /// <summary>Full front-channel flow: authorize, log in if asked, consent if asked; returns the redirect's query.</summary>
    public async Task<Dictionary<string, string>> AuthorizeAsync(HttpClient browser, string url, string? username = null, string? password = null)
    {
        var response = await browser.GetAsync(url);
        for (var hops = 0; hops < 8; hops++)
        {
            if (response.StatusCode is HttpStatusCode.Found or HttpStatusCode.SeeOther)
            {
                var location = response.Headers.Location!.ToString();
                if (location.StartsWith(RedirectUri, StringComparison.Ordinal) || !location.StartsWith('/'))
                    return QueryHelpers.ParseQuery(new Uri(location).Query).ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
                response = await browser.GetAsync(location.TrimStart('/'));
                continue;
            }
            var html = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"unexpected {(int)response.StatusCode}: {html}");
            if (html.Contains("name=\"password\"", StringComparison.Ordinal))
            {
                response = await browser.PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["__RequestVerificationToken"] = AntiforgeryToken(html),
                    ["username"] = username ?? throw new InvalidOperationException("login asked but no credentials given"),
                    ["password"] = password!,
                    ["returnUrl"] = WebUtility.HtmlDecode(ReturnUrl().Match(html).Groups[1].Value),
                }));
            }
            else if (html.Contains("name=\"decision\"", StringComparison.Ordinal))
            {
                response = await browser.PostAsync("connect/consent", new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["__RequestVerificationToken"] = AntiforgeryToken(html),
                    ["request"] = WebUtility.HtmlDecode(RequestField().Match(html).Groups[1].Value),
                    ["decision"] = "allow",
                }));
            }
            else
            {
                Assert.Fail("unexpected page: " + html);
            }
        }
        throw new InvalidOperationException("too many redirects");
    }

    public async Task<TokenAnswer> TokenAsync(Dictionary<string, string> form, string? clientId = null, string? secret = null, HttpClient? http = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new FormUrlEncodedContent(form) };
        if (clientId is not null && secret is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(clientId)}:{Uri.EscapeDataString(secret)}")));
        else if (clientId is not null)
            form["client_id"] = clientId;
        if (clientId is not null && secret is null) request.Content = new FormUrlEncodedContent(form);
        var owned = http is null;
        http ??= server.CreateClient();
        try
        {
            var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            return new TokenAnswer(response.StatusCode, body, response);
        }
        finally
        {
            if (owned) http.Dispose();
        }
    }

    /// <summary>Sign in, authorize, exchange the code: a user session with (when offline_access) a refresh token.</summary>
    public async Task<TokenAnswer> LoginAndExchangeAsync(string clientId, string? secret, string username, string password, string scope = "openid offline_access api.read")
    {
        var (verifier, challenge) = NewPkce();
        var browser = server.CreateClient(new CookieContainer());
        var result = await AuthorizeAsync(browser, AuthorizeUrl(clientId, scope, challenge), username, password);
        Assert.True(result.ContainsKey("code"), "no code: " + string.Join("&", result.Select(kv => kv.Key + "=" + kv.Value)));
        var answer = await TokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = result["code"], ["redirect_uri"] = RedirectUri, ["code_verifier"] = verifier,
        }, clientId, secret);
        Assert.True(answer.Status == HttpStatusCode.OK, $"code exchange failed: {answer.Body}");
        return answer;
    }

    public Task<TokenAnswer> RefreshAsync(string clientId, string? secret, string refreshToken, string? scope = null, HttpClient? http = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken };
        if (scope is not null) form["scope"] = scope;
        return TokenAsync(form, clientId, secret, http);
    }

    public static string AntiforgeryToken(string html)
    {
        var m = AntiforgeryField().Match(html);
        Assert.True(m.Success, "no antiforgery token in page");
        return WebUtility.HtmlDecode(m.Groups[1].Value);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    [GeneratedRegex("name=\"returnUrl\" value=\"([^\"]*)\"")]
    private static partial Regex ReturnUrl();

    [GeneratedRegex("name=\"request\" value=\"([^\"]*)\"")]
    private static partial Regex RequestField();
}
