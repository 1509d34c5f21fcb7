using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Clients;
using Tessera.Core.Keys;
using Tessera.Server.Cli;
using Tessera.Server.Maintenance;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Keys;

/// <summary>
/// One server for the class: an EdDSA client added to the store, one declared in configuration, an admin client, and
/// a back-channel logout receiver. Each test makes its own sessions.
/// </summary>
public sealed class EdDsaServerFixture : IAsyncLifetime
{
    public const string Password = "alice-password-1";
    public const string SeededId = "seeded-ed";
    public const string SeededSecret = "seeded-ed-secret-0123456789abcdef";
    public const string PostLogoutUri = "https://app.example.com/bye";

    public TesseraTestServer Server { get; private set; } = null!;
    public OAuthDriver Driver { get; private set; } = null!;
    public string WebSecret { get; private set; } = null!;
    public string AdminSecret { get; private set; } = null!;
    public ConcurrentQueue<string> LogoutTokens { get; } = new();
    private WebApplication _receiver = null!;

    public async Task InitializeAsync()
    {
        Server = await TesseraTestServer.StartAsync(
        [
            $"--Tessera:Clients:0:Id={SeededId}", $"--Tessera:Clients:0:Secret={SeededSecret}",
            "--Tessera:Clients:0:GrantTypes:0=client_credentials", "--Tessera:Clients:0:Scopes:0=api.read",
            "--Tessera:Clients:0:SigningAlgorithm=EdDSA",
        ]);
        Driver = new OAuthDriver(Server);
        await Server.AddUserAsync("alice", Password);

        var port = FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        _receiver = builder.Build();
        _receiver.MapPost("/backchannel", async (HttpContext http) =>
        {
            LogoutTokens.Enqueue((await http.Request.ReadFormAsync())["logout_token"].ToString());
            return Results.Ok();
        });
        await _receiver.StartAsync();

        WebSecret = (await Server.AddClientAsync(TestClients.Confidential("ed-web") with
        {
            SigningAlgorithm = "EdDSA", PostLogoutRedirectUris = [PostLogoutUri], BackchannelLogoutUri = $"http://127.0.0.1:{port}/backchannel",
        }, confidential: true)).Secret!;
        AdminSecret = (await Server.AddClientAsync(new Client
        {
            Id = "admin", DisplayName = "Operator tool", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["tessera.admin"],
        }, confidential: true)).Secret!;
    }

    public async Task DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await Server.DisposeAsync();
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>
/// Issue 8, EdDSA selectable per client, over real HTTP: the tokens' header says EdDSA and their signatures verify
/// with the key the JWKS publishes, checked by NSec directly on the JWS octets (not by the code that signed them);
/// Tessera's own checks (introspection, userinfo, logout's id_token_hint) accept them; the admin API and the
/// configuration select it; key rotation covers it; back-channel logout tokens follow the client's algorithm.
/// </summary>
public sealed class EdDsaServerTests(EdDsaServerFixture f) : IClassFixture<EdDsaServerFixture>
{
    private TesseraTestServer Server => f.Server;

    private async Task<JsonElement> JwksAsync()
    {
        using var http = Server.CreateClient();
        return JsonDocument.Parse(await http.GetStringAsync(".well-known/jwks.json")).RootElement.Clone();
    }

    /// <summary>The token's header names EdDSA and a kid; the JWKS publishes that kid as an RFC 8037 public key; NSec accepts the signature.</summary>
    private async Task AssertEdDsaSignedAsync(string token)
    {
        var jwt = new JsonWebToken(token);
        Assert.Equal("EdDSA", jwt.Alg);
        var jwks = await JwksAsync();
        var jwk = jwks.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("kid").GetString() == jwt.Kid);
        Assert.Equal("OKP", jwk.GetProperty("kty").GetString());
        Assert.Equal("Ed25519", jwk.GetProperty("crv").GetString());
        Assert.Equal("EdDSA", jwk.GetProperty("alg").GetString());
        Assert.Equal("sig", jwk.GetProperty("use").GetString());
        Assert.Equal(["alg", "crv", "kid", "kty", "use", "x"], jwk.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        var x = Base64UrlEncoder.DecodeBytes(jwk.GetProperty("x").GetString());
        Assert.Equal(32, x.Length);
        Assert.True(EdDsaKeyTests.NSecVerifies(token, x), "NSec does not accept the signature with the published key");

        // The same octets with one payload character changed do not verify.
        var parts = token.Split('.');
        var tampered = parts[0] + "." + (parts[1][0] == 'e' ? 'f' : 'e') + parts[1][1..] + "." + parts[2];
        Assert.False(EdDsaKeyTests.NSecVerifies(tampered, x));
    }

    private async Task<TokenAnswer> IntrospectAsync(string clientId, string secret, string token)
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/introspect") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}")));
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new TokenAnswer(response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    [Fact]
    public async Task EdDsaClient_GetsEdDsaAccessAndIdTokens_ThatVerifyWithThePublishedKey()
    {
        var tokens = await f.Driver.LoginAndExchangeAsync("ed-web", f.WebSecret, "alice", EdDsaServerFixture.Password, "openid offline_access api.read");
        await AssertEdDsaSignedAsync(tokens.AccessToken!);
        await AssertEdDsaSignedAsync(tokens.IdToken!);
        Assert.Equal("at+jwt", new JsonWebToken(tokens.AccessToken).Typ);

        // OIDC Core §3.1.3.6 with Ed25519's hash, SHA-512: the left-most 256 bits.
        var sha512 = SHA512.HashData(Encoding.ASCII.GetBytes(tokens.AccessToken!));
        Assert.Equal(Base64UrlEncoder.Encode(sha512, 0, 32), new JsonWebToken(tokens.IdToken).GetClaim("at_hash").Value);

        // The same key type after a refresh.
        var refreshed = await f.Driver.RefreshAsync("ed-web", f.WebSecret, tokens.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
        await AssertEdDsaSignedAsync(refreshed.AccessToken!);

        // A client without a choice still gets ES256 from the same server.
        var es = await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "admin", f.AdminSecret);
        Assert.Equal("ES256", new JsonWebToken(es.AccessToken).Alg);
    }

    [Fact]
    public async Task IntrospectionAndUserinfo_AcceptEdDsaAccessTokens_AndRefuseAlteredOnes()
    {
        var tokens = await f.Driver.LoginAndExchangeAsync("ed-web", f.WebSecret, "alice", EdDsaServerFixture.Password, "openid offline_access api.read");
        var active = await IntrospectAsync("ed-web", f.WebSecret, tokens.AccessToken!);
        Assert.Equal(HttpStatusCode.OK, active.Status);
        Assert.True(active.Body.GetProperty("active").GetBoolean(), active.Body.ToString());
        Assert.Equal("ed-web", active.Body.GetProperty("client_id").GetString());

        using var http = Server.CreateClient();
        using (var userinfo = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo"))
        {
            userinfo.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.AccessToken);
            var response = await http.SendAsync(userinfo);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal(new JsonWebToken(tokens.AccessToken).Subject, body.RootElement.GetProperty("sub").GetString());
        }

        // The signature of one token over another's payload: not active, not accepted.
        var mine = tokens.AccessToken!.Split('.');
        var other = (await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, EdDsaServerFixture.SeededId, EdDsaServerFixture.SeededSecret)).AccessToken!.Split('.');
        var spliced = $"{mine[0]}.{other[1]}.{mine[2]}";
        Assert.Equal("{\"active\":false}", (await IntrospectAsync("ed-web", f.WebSecret, spliced)).Body.GetRawText());
        using var forged = new HttpRequestMessage(HttpMethod.Get, "connect/userinfo");
        forged.Headers.Authorization = new AuthenticationHeaderValue("Bearer", spliced);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(forged)).StatusCode);
    }

    [Fact]
    public async Task Logout_AcceptsAnEdDsaIdTokenHint_AndEndsItsSession()
    {
        var tokens = await f.Driver.LoginAndExchangeAsync("ed-web", f.WebSecret, "alice", EdDsaServerFixture.Password, "openid offline_access api.read");
        using var http = Server.CreateClient();
        var ok = await http.GetAsync($"connect/logout?id_token_hint={tokens.IdToken}&post_logout_redirect_uri={Uri.EscapeDataString(EdDsaServerFixture.PostLogoutUri)}&state=s1");
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
        Assert.Equal(EdDsaServerFixture.PostLogoutUri + "?state=s1", ok.Headers.Location!.ToString());
        Assert.Equal("invalid_grant", (await f.Driver.RefreshAsync("ed-web", f.WebSecret, tokens.RefreshToken!)).Error);

        // The session's end reaches the client's back-channel URI as a logout token signed like its ID tokens.
        var sid = new JsonWebToken(tokens.IdToken).GetClaim("sid").Value;
        await Server.Services.GetRequiredService<BackchannelLogoutService>().RunOnceAsync(default);
        var logoutToken = f.LogoutTokens.ToArray().Select(t => new JsonWebToken(t)).Single(t => t.GetClaim("sid").Value == sid);
        Assert.Equal("logout+jwt", logoutToken.Typ);
        await AssertEdDsaSignedAsync(logoutToken.EncodedToken);
    }

    [Fact]
    public async Task Discovery_AdvertisesEdDsaForIdTokens()
    {
        using var http = Server.CreateClient();
        using var doc = JsonDocument.Parse(await http.GetStringAsync(".well-known/openid-configuration"));
        var algs = doc.RootElement.GetProperty("id_token_signing_alg_values_supported").EnumerateArray().Select(a => a.GetString()).ToList();
        Assert.Equal(["ES256", "RS256", "EdDSA"], algs);
    }

    [Fact]
    public async Task TheAdminApiAndTheConfiguration_SelectEdDsa_AndRefuseUnknownSpellings()
    {
        var admin = (await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "admin", f.AdminSecret)).AccessToken!;
        async Task<(HttpStatusCode Status, JsonElement Body)> CreateAsync(string id, string alg)
        {
            using var http = Server.CreateClient();
            using var request = new HttpRequestMessage(HttpMethod.Post, "admin/clients")
            {
                Content = new StringContent(JsonSerializer.Serialize(new { id, name = id, confidential = true, grantTypes = new[] { "client_credentials" }, scopes = new[] { "api.read" }, signingAlgorithm = alg }),
                    Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            var response = await http.SendAsync(request);
            return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
        }

        var (status, body) = await CreateAsync("admin-made-ed", "EdDSA");
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("EdDSA", body.GetProperty("signingAlgorithm").GetString());
        var token = await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "admin-made-ed", body.GetProperty("secret").GetString());
        await AssertEdDsaSignedAsync(token.AccessToken!);

        // "alg" values are case-sensitive (RFC 7515 §4.1.1); Ed25519 is a curve, not a JWS algorithm name here.
        foreach (var wrong in new[] { "eddsa", "Ed25519" })
        {
            var (refused, problem) = await CreateAsync("admin-made-" + wrong.ToLowerInvariant(), wrong);
            Assert.Equal(HttpStatusCode.BadRequest, refused);
            Assert.True(problem.GetProperty("errors").TryGetProperty("signingAlgorithm", out _), problem.ToString());
        }

        // Tessera:Clients:0:SigningAlgorithm=EdDSA in the configuration.
        var seeded = await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, EdDsaServerFixture.SeededId, EdDsaServerFixture.SeededSecret);
        Assert.Equal(HttpStatusCode.OK, seeded.Status);
        await AssertEdDsaSignedAsync(seeded.AccessToken!);
    }

    [Fact]
    public async Task ABadSigningAlgorithmInTheConfiguration_StopsTheServerWithAMessage()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => TesseraTestServer.StartAsync(
        [
            "--Tessera:Clients:0:Id=bad", "--Tessera:Clients:0:Secret=bad-secret-0123456789abcdef",
            "--Tessera:Clients:0:GrantTypes:0=client_credentials", "--Tessera:Clients:0:SigningAlgorithm=Ed25519",
        ]));
        Assert.Contains("SigningAlgorithm must be one of ES256, RS256, EdDSA", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RotatingTheEdDsaKey_SignsWithTheNewKeyAtOnce_AndOldTokensStayActive()
    {
        async Task<string> TokenAsync() =>
            (await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, EdDsaServerFixture.SeededId, EdDsaServerFixture.SeededSecret)).AccessToken!;
        var before = await TokenAsync();
        var esKid = new JsonWebToken((await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "admin", f.AdminSecret)).AccessToken).Kid;

        var rotated = await Server.Services.GetRequiredService<KeyRing>().RotateNowAsync(default, "EdDSA");
        Server.Time.Advance(TimeSpan.FromMilliseconds(1));
        var after = await TokenAsync();

        Assert.Equal(rotated.Kid, new JsonWebToken(after).Kid);
        Assert.NotEqual(new JsonWebToken(before).Kid, rotated.Kid);
        var okpKids = (await JwksAsync()).GetProperty("keys").EnumerateArray().Where(k => k.GetProperty("kty").GetString() == "OKP").Select(k => k.GetProperty("kid").GetString()).ToList();
        Assert.Contains(new JsonWebToken(before).Kid, okpKids);
        Assert.Contains(rotated.Kid, okpKids);
        await AssertEdDsaSignedAsync(before);
        await AssertEdDsaSignedAsync(after);
        Assert.True((await IntrospectAsync(EdDsaServerFixture.SeededId, EdDsaServerFixture.SeededSecret, before)).Body.GetProperty("active").GetBoolean());
        // ES256 is not rotated along.
        var esAfter = (await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "admin", f.AdminSecret)).AccessToken;
        Assert.Equal(esKid, new JsonWebToken(esAfter).Kid);
    }

    [Fact]
    public async Task TheKeysRotateCommand_RotatesTheAlgorithmItIsGiven()
    {
        var ring = Server.Services.GetRequiredService<KeyRing>();
        var edBefore = (await ring.GetCurrentAsync("EdDSA", default)).Kid;
        var esBefore = (await ring.GetCurrentAsync("ES256", default)).Kid;

        Assert.Equal(0, await Commands.RunAsync(CliArgs.Parse(["keys", "rotate", "--alg", "EdDSA"]), Server.Services, default));
        Server.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.NotEqual(edBefore, (await ring.GetCurrentAsync("EdDSA", default)).Kid);
        Assert.Equal(esBefore, (await ring.GetCurrentAsync("ES256", default)).Kid);

        var wrong = await Assert.ThrowsAsync<CliException>(() => Commands.RunAsync(CliArgs.Parse(["keys", "rotate", "--alg", "eddsa"]), Server.Services, default));
        Assert.Contains("ES256, RS256, EdDSA", wrong.Message, StringComparison.Ordinal);
    }
}
