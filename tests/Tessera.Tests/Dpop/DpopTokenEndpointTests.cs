using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Dpop;

public sealed class DpopTokenEndpointTests : IAsyncLifetime
{
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;
    private string _tokenUrl = null!;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        _tokenUrl = _server.Issuer + "/connect/token";
        await _server.AddUserAsync("alice", "alice-password-1");
        await _server.AddClientAsync(TestClients.Public("spa"), confidential: false);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private DateTimeOffset Now => _server.Time.GetUtcNow();

    private async Task<TokenAnswer> PostAsync(Dictionary<string, string> form, params string[] proofs)
    {
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new FormUrlEncodedContent(form) };
        foreach (var p in proofs) request.Headers.TryAddWithoutValidation("DPoP", p);
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new TokenAnswer(response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    /// <summary>Code flow for the public client, with a DPoP proof at the code exchange.</summary>
    private async Task<TokenAnswer> BoundLoginAsync(DpopProofBuilder key, string? dpopJkt = null)
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var browser = _server.CreateClient(new CookieContainer());
        var extra = dpopJkt is null ? null : "&dpop_jkt=" + dpopJkt;
        var result = await _driver.AuthorizeAsync(browser, OAuthDriver.AuthorizeUrl("spa", "openid offline_access api.read", challenge, extra: extra), "alice", "alice-password-1");
        return await PostAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["client_id"] = "spa", ["code"] = result["code"],
            ["redirect_uri"] = OAuthDriver.RedirectUri, ["code_verifier"] = verifier,
        }, key.Build("POST", _tokenUrl, iat: Now));
    }

    private Dictionary<string, string> RefreshForm(string token) => new() { ["grant_type"] = "refresh_token", ["client_id"] = "spa", ["refresh_token"] = token };

    [Fact]
    public async Task CodeExchange_WithProof_IssuesDpopBoundAccessTokenWithTheKeyThumbprint()
    {
        using var key = new DpopProofBuilder();
        var answer = await BoundLoginAsync(key);
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("DPoP", answer.Str("token_type"));
        var cnf = new JsonWebToken(answer.AccessToken).GetPayloadValue<JsonElement>("cnf");
        Assert.Equal(key.Thumbprint(), cnf.GetProperty("jkt").GetString());
    }

    [Fact]
    public async Task Refresh_OfABoundSession_NeedsAProofByTheSameKey()
    {
        using var key = new DpopProofBuilder();
        using var other = new DpopProofBuilder();
        var first = await BoundLoginAsync(key);

        var withoutProof = await PostAsync(RefreshForm(first.RefreshToken!));
        Assert.Equal("invalid_grant", withoutProof.Error);
        var otherKey = await PostAsync(RefreshForm(first.RefreshToken!), other.Build("POST", _tokenUrl, iat: Now));
        Assert.Equal("invalid_grant", otherKey.Error);

        // The refusals consumed nothing: the right key still refreshes.
        var ok = await PostAsync(RefreshForm(first.RefreshToken!), key.Build("POST", _tokenUrl, iat: Now));
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Equal("DPoP", ok.Str("token_type"));
    }

    public static TheoryData<string> BadProofs => new()
    {
        "wrong-typ", "alg-none", "alg-hs256", "no-jwk", "private-jwk", "bad-signature", "wrong-htm", "wrong-htu", "path-case-htu", "null-htu", "iat-past-year-9999", "null-iat", "old-iat", "future-iat", "no-jti", "not-a-jwt",
    };

    [Theory]
    [MemberData(nameof(BadProofs))]
    public async Task Token_RefusesMalformedProofs_WithInvalidDpopProof(string variant)
    {
        using var key = new DpopProofBuilder();
        var now = Now;
        var proof = variant switch
        {
            "wrong-typ" => key.Build("POST", _tokenUrl, h => h["typ"] = "JWT", iat: now),
            "alg-none" => string.Join('.', key.Build("POST", _tokenUrl, h => h["alg"] = "none", iat: now).Split('.')[..2]) + ".",
            "alg-hs256" => key.Build("POST", _tokenUrl, h => h["alg"] = "HS256", iat: now),
            "no-jwk" => key.Build("POST", _tokenUrl, h => h.Remove("jwk"), iat: now),
            "private-jwk" => key.Build("POST", _tokenUrl, h => ((Dictionary<string, object>)h["jwk"])["d"] = "AAAA", iat: now),
            "bad-signature" => key.Build("POST", _tokenUrl, iat: now, breakSignature: true),
            "wrong-htm" => key.Build("GET", _tokenUrl, iat: now),
            "wrong-htu" => key.Build("POST", "https://elsewhere.example/connect/token", iat: now),
            // RFC 3986 §6.2.2.1: only scheme and host are case-insensitive; a path differing in case is another resource.
            "path-case-htu" => key.Build("POST", _tokenUrl.Replace("/connect/token", "/connect/TOKEN", StringComparison.Ordinal), iat: now),
            // Hostile values in a proof the attacker signed with their own key: refused, never a 500.
            "null-htu" => key.Build("POST", _tokenUrl, payload: p => p["htu"] = null!, iat: now),
            "iat-past-year-9999" => key.Build("POST", _tokenUrl, payload: p => p["iat"] = 999_999_999_999L, iat: now),
            "null-iat" => key.Build("POST", _tokenUrl, payload: p => p["iat"] = null!, iat: now),
            "old-iat" => key.Build("POST", _tokenUrl, iat: now - TimeSpan.FromMinutes(5)),
            "future-iat" => key.Build("POST", _tokenUrl, iat: now + TimeSpan.FromMinutes(5)),
            "no-jti" => key.Build("POST", _tokenUrl, payload: p => p.Remove("jti"), iat: now),
            _ => "not-a-jwt",
        };
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential("svc-" + variant), confidential: true);
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{client.Id}:{secret}")));
        request.Headers.TryAddWithoutValidation("DPoP", proof);
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("invalid_dpop_proof", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Token_AcceptsAProofWhoseHtuDiffersOnlyInTheCaseOfSchemeAndHost()
    {
        using var key = new DpopProofBuilder();
        var hostEnd = _tokenUrl.IndexOf('/', _tokenUrl.IndexOf("://", StringComparison.Ordinal) + 3);
        var htu = _tokenUrl[..hostEnd].ToUpperInvariant() + _tokenUrl[hostEnd..];
        Assert.NotEqual(_tokenUrl, htu);
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential("svc-host-case"), confidential: true);
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{client.Id}:{secret}")));
        request.Headers.TryAddWithoutValidation("DPoP", key.Build("POST", htu, iat: Now));
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("DPoP", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task Token_RefusesAReplayedProof_AndTwoDpopHeaders()
    {
        using var key = new DpopProofBuilder();
        var first = await BoundLoginAsync(key);
        var proof = key.Build("POST", _tokenUrl, iat: Now);
        var ok = await PostAsync(RefreshForm(first.RefreshToken!), proof);
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        var replay = await PostAsync(RefreshForm(ok.RefreshToken!), proof);
        Assert.Equal("invalid_dpop_proof", replay.Error);
        var two = await PostAsync(RefreshForm(ok.RefreshToken!), key.Build("POST", _tokenUrl, iat: Now), key.Build("POST", _tokenUrl, iat: Now));
        Assert.Equal("invalid_dpop_proof", two.Error);
        // Neither refusal consumed the token.
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(RefreshForm(ok.RefreshToken!), key.Build("POST", _tokenUrl, iat: Now))).Status);
    }

    [Fact]
    public async Task ServerNonce_IsDemandedWithUseDpopNonce_AndAcceptedOnRetry()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential("nonce-svc") with { RequireDpop = true, RequireDpopNonce = true }, confidential: true);
        using var key = new DpopProofBuilder();
        async Task<HttpResponseMessage> Send(string proof)
        {
            using var http = _server.CreateClient();
            using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{client.Id}:{secret}")));
            request.Headers.TryAddWithoutValidation("DPoP", proof);
            return await http.SendAsync(request);
        }
        // A JSON null where the nonce goes is no nonce (not a 500).
        var nullNonce = await Send(key.Build("POST", _tokenUrl, payload: p => p["nonce"] = null!, iat: Now));
        Assert.Equal(HttpStatusCode.BadRequest, nullNonce.StatusCode);
        Assert.Contains("use_dpop_nonce", await nullNonce.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var first = await Send(key.Build("POST", _tokenUrl, iat: Now));
        Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);
        var firstBody = await first.Content.ReadAsStringAsync();
        Assert.True(firstBody.Contains("use_dpop_nonce"), firstBody);
        var nonce = first.Headers.GetValues("DPoP-Nonce").Single();

        var second = await Send(key.Build("POST", _tokenUrl, payload: p => p["nonce"] = nonce, iat: Now));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);

        var forged = await Send(key.Build("POST", _tokenUrl, payload: p => p["nonce"] = nonce[..^2] + "AA", iat: Now));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);

        _server.Time.Advance(TimeSpan.FromMinutes(6));
        var expired = await Send(key.Build("POST", _tokenUrl, payload: p => p["nonce"] = nonce, iat: Now));
        Assert.Contains("use_dpop_nonce", await expired.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ClientThatRequiresDpop_IsRefusedWithoutAProof()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential("bound-svc") with { RequireDpop = true }, confidential: true);
        var answer = await _driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, client.Id, secret);
        Assert.Equal("invalid_dpop_proof", answer.Error);
    }

    [Fact]
    public async Task DpopJkt_OnTheAuthorizationRequest_BindsTheCodeToThatKey()
    {
        using var key = new DpopProofBuilder();
        using var other = new DpopProofBuilder();
        var refused = await BoundLoginAsync(other, dpopJkt: key.Thumbprint());
        Assert.Equal("invalid_grant", refused.Error);
        var accepted = await BoundLoginAsync(key, dpopJkt: key.Thumbprint());
        Assert.Equal(HttpStatusCode.OK, accepted.Status);
    }

    [Fact]
    public async Task Discovery_AdvertisesDpopAlgorithms()
    {
        using var http = _server.CreateClient();
        var doc = JsonDocument.Parse(await http.GetStringAsync(".well-known/openid-configuration")).RootElement;
        var algs = doc.GetProperty("dpop_signing_alg_values_supported").EnumerateArray().Select(a => a.GetString()).ToList();
        Assert.Contains("ES256", algs);
        Assert.DoesNotContain("none", algs);
        Assert.DoesNotContain(algs, a => a!.StartsWith("HS", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UserInfo_RequiresTheDpopSchemeAndAProofWithAth_ForABoundToken()
    {
        using var key = new DpopProofBuilder();
        using var other = new DpopProofBuilder();
        var tokens = await BoundLoginAsync(key);
        var url = _server.Issuer + "/connect/userinfo";
        var ath = DpopProofBuilder.B64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(tokens.AccessToken!)));
        async Task<HttpResponseMessage> Call(string scheme, string? proof)
        {
            using var http = _server.CreateClient();
            using var request = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
            request.Headers.TryAddWithoutValidation("Authorization", scheme + " " + tokens.AccessToken);
            if (proof is not null) request.Headers.TryAddWithoutValidation("DPoP", proof);
            return await http.SendAsync(request);
        }
        var asBearer = await Call("Bearer", null);
        Assert.Equal(HttpStatusCode.Unauthorized, asBearer.StatusCode);
        Assert.StartsWith("DPoP", asBearer.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await Call("DPoP", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Call("DPoP", other.Build("GET", url, payload: p => p["ath"] = ath, iat: Now))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Call("DPoP", key.Build("GET", url, iat: Now))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Call("DPoP", key.Build("GET", url, payload: p => p["ath"] = null!, iat: Now))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Call("DPoP", key.Build("GET", url, payload: p => p["ath"] = ath, iat: Now))).StatusCode);
    }
}
