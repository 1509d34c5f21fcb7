using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>A browser (cookies, no redirects followed by itself) and a confidential client, driving Tessera's code flow over HTTP.</summary>
public sealed partial class CodeFlow(string issuer, string clientId, string clientSecret, string redirectUri) : IDisposable
{
    private readonly HttpClient _browser = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
    {
        BaseAddress = new Uri(issuer + "/"),
    };
    private readonly HttpClient _backchannel = new() { BaseAddress = new Uri(issuer + "/") };

    public async Task SignInAsync(string username, string password)
    {
        var page = await _browser.GetStringAsync("login?returnUrl=%2Faccount");
        using var post = await _browser.PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Field(Antiforgery(), page), ["username"] = username, ["password"] = password, ["returnUrl"] = "/account",
        }));
        Assert.True(post.StatusCode == HttpStatusCode.SeeOther, $"sign-in answered {(int)post.StatusCode}");
    }

    /// <summary>Authorize (the browser is signed in), exchange the code: the token response.</summary>
    public async Task<JsonElement> GetTokensAsync(string scope)
    {
        var verifier = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var url = $"connect/authorize?response_type=code&client_id={Uri.EscapeDataString(clientId)}&redirect_uri={Uri.EscapeDataString(redirectUri)}" +
                  $"&scope={Uri.EscapeDataString(scope)}&state=s&code_challenge={challenge}&code_challenge_method=S256";
        string? code = null;
        HttpResponseMessage? next = await _browser.GetAsync(url);
        for (var hops = 0; hops < 6 && next is not null; hops++)
        {
            using var response = next;
            next = null;
            if (response.StatusCode is not (HttpStatusCode.Found or HttpStatusCode.SeeOther))
            {
                var html = await response.Content.ReadAsStringAsync();
                Assert.True(html.Contains("name=\"decision\"", StringComparison.Ordinal), $"unexpected {(int)response.StatusCode} page: {html}");
                next = await _browser.PostAsync("connect/consent", new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["__RequestVerificationToken"] = Field(Antiforgery(), html), ["request"] = Field(Request(), html), ["decision"] = "allow",
                }));
                continue;
            }
            var location = response.Headers.Location!.ToString();
            if (location.StartsWith(redirectUri, StringComparison.Ordinal))
            {
                var query = QueryHelpers.ParseQuery(new Uri(location).Query);
                Assert.True(query.ContainsKey("code"), "no code: " + location);
                code = query["code"].ToString();
                break;
            }
            next = await _browser.GetAsync(location.TrimStart('/'));
        }
        next?.Dispose();
        Assert.NotNull(code);
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = redirectUri, ["code_verifier"] = verifier,
            }),
        };
        request.Headers.Authorization = Basic();
        using var tokens = await _backchannel.SendAsync(request);
        var body = await tokens.Content.ReadAsStringAsync();
        Assert.True(tokens.StatusCode == HttpStatusCode.OK, "code exchange failed: " + body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>The account page's "Sign out everywhere" (antiforgery included): every session ends and this browser is signed out.</summary>
    public async Task SignOutEverywhereAsync()
    {
        var page = await _browser.GetStringAsync("account");
        using var post = await _browser.PostAsync("account/signout-everywhere", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Field(Antiforgery(), page),
        }));
        Assert.True(post.StatusCode == HttpStatusCode.SeeOther, $"sign out everywhere answered {(int)post.StatusCode}");
    }

    /// <summary>RFC 7009: the client revokes a token; for a refresh token Tessera ends the whole session.</summary>
    public async Task RevokeAsync(string token, string hint)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/revoke")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token, ["token_type_hint"] = hint }),
        };
        request.Headers.Authorization = Basic();
        using var response = await _backchannel.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private AuthenticationHeaderValue Basic() =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(clientId)}:{Uri.EscapeDataString(clientSecret)}")));

    private static string Field(Regex pattern, string html)
    {
        var m = pattern.Match(html);
        Assert.True(m.Success, "field not found in page");
        return WebUtility.HtmlDecode(m.Groups[1].Value);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex Antiforgery();

    [GeneratedRegex("name=\"request\" value=\"([^\"]*)\"")]
    private static partial Regex Request();

    public void Dispose()
    {
        _browser.Dispose();
        _backchannel.Dispose();
    }
}
