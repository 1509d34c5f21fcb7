using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Server.Maintenance;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Logout;

/// <summary>RP-initiated logout and OIDC Back-Channel Logout, with a real receiving endpoint on loopback.</summary>
public sealed class LogoutTests : IAsyncLifetime
{
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;
    private WebApplication _receiver = null!;
    private string _receiverUrl = null!;
    private readonly ConcurrentQueue<string> _received = new();
    private int _failuresToSimulate;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        await _server.AddUserAsync("alice", "alice-password-1");

        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        _receiverUrl = $"http://127.0.0.1:{port}/backchannel";
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        _receiver = builder.Build();
        _receiver.MapPost("/backchannel", async (HttpContext http) =>
        {
            if (Interlocked.Decrement(ref _failuresToSimulate) >= 0) return Results.StatusCode(503);
            var form = await http.Request.ReadFormAsync();
            _received.Enqueue(form["logout_token"].ToString());
            return Results.Ok();
        });
        await _receiver.StartAsync();
        await _server.AddClientAsync(TestClients.Confidential("web") with { BackchannelLogoutUri = _receiverUrl, PostLogoutRedirectUris = ["https://app.example.com/bye"] }, confidential: true);
    }

    public async Task DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _server.DisposeAsync();
    }

    private BackchannelLogoutService Service => _server.Services.GetRequiredService<BackchannelLogoutService>();

    private async Task<JsonWebToken> ValidLogoutTokenAsync(string token)
    {
        using var http = _server.CreateClient();
        var jwks = new JsonWebKeySet(await http.GetStringAsync(".well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer, ValidAudience = "web", IssuerSigningKeys = jwks.GetSigningKeys(), ValidTypes = ["logout+jwt"],
            ValidAlgorithms = ["ES256"], LifetimeValidator = (_, exp, _, _) => exp > _server.Time.GetUtcNow().UtcDateTime,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }

    [Fact]
    public async Task RevokingASession_SendsASignedLogoutTokenToTheClientsBackchannelUri()
    {
        var tokens = await _driver.LoginAndExchangeAsync("web", await SecretAsync(), "alice", "alice-password-1");
        var sid = new JsonWebToken(tokens.AccessToken).GetClaim("sid").Value;
        using var http = _server.CreateClient();
        using var revoke = new HttpRequestMessage(HttpMethod.Post, "connect/revoke")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = tokens.RefreshToken!, ["client_id"] = "web", ["client_secret"] = await SecretAsync() }),
        };
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(revoke)).StatusCode);

        await Service.RunOnceAsync(default);
        Assert.True(_received.TryDequeue(out var logoutToken));
        var jwt = await ValidLogoutTokenAsync(logoutToken);
        Assert.Equal(sid, jwt.GetClaim("sid").Value);
        Assert.False(string.IsNullOrEmpty(jwt.GetClaim("sub").Value));
        Assert.False(jwt.TryGetClaim("nonce", out _));
        Assert.True(jwt.TryGetPayloadValue<System.Text.Json.JsonElement>("events", out var events));
        Assert.True(events.TryGetProperty(BackchannelLogoutService.LogoutEvent, out _));
    }

    [Fact]
    public async Task FailedDelivery_IsRetriedWithBackoff()
    {
        _failuresToSimulate = 2;
        var tokens = await _driver.LoginAndExchangeAsync("web", await SecretAsync(), "alice", "alice-password-1");
        var session = (await _server.Store.Sessions.ListByUserAsync((await _server.Store.Users.FindByUsernameAsync("alice", default))!.Id, default)).First();
        await _server.Services.GetRequiredService<Tessera.Server.Admin.AdminService>().RevokeSessionAsync(session, "test", default);

        await Service.RunOnceAsync(default);                 // attempt 1: 503
        Assert.Empty(_received);
        _server.Time.Advance(TimeSpan.FromSeconds(1));
        await Service.RunOnceAsync(default);                 // attempt 2 after 1 s: 503
        Assert.Empty(_received);
        await Service.RunOnceAsync(default);                 // not due yet (2 s backoff)
        Assert.Empty(_received);
        _server.Time.Advance(TimeSpan.FromSeconds(2));
        await Service.RunOnceAsync(default);                 // attempt 3: delivered
        Assert.Single(_received);
        Assert.Equal(session.Id, (await ValidLogoutTokenAsync(_received.Single())).GetClaim("sid").Value);
    }

    [Fact]
    public async Task RpInitiatedLogout_EndsTheSessionAndRedirectsOnlyToARegisteredUri()
    {
        var tokens = await _driver.LoginAndExchangeAsync("web", await SecretAsync(), "alice", "alice-password-1");
        using var http = _server.CreateClient();
        var bad = await http.GetAsync($"connect/logout?id_token_hint={tokens.IdToken}&post_logout_redirect_uri={Uri.EscapeDataString("https://evil.example/")}");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Null(bad.Headers.Location);

        var ok = await http.GetAsync($"connect/logout?id_token_hint={tokens.IdToken}&post_logout_redirect_uri={Uri.EscapeDataString("https://app.example.com/bye")}&state=s1");
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
        Assert.Equal("https://app.example.com/bye?state=s1", ok.Headers.Location!.ToString());
        var refresh = await _driver.RefreshAsync("web", await SecretAsync(), tokens.RefreshToken!);
        Assert.Equal("invalid_grant", refresh.Error);

        var forged = await http.GetAsync("connect/logout?id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
    }

    private string? _secret;

    private async Task<string> SecretAsync()
    {
        if (_secret is not null) return _secret;
        var client = (await _server.Store.Clients.FindAsync("web", default))!;
        _secret = Tessera.Core.Tokens.Handles.NewClientSecret();
        await _server.Store.Clients.SaveAsync(client with { SecretHash = Tessera.Core.Tokens.Handles.Hash(_secret) }, default);
        return _secret;
    }
}
