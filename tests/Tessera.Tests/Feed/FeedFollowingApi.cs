using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tessera.Core.Sessions;
using Tessera.ResourceServer;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Feed;

/// <summary>
/// An API protected by the Tessera.ResourceServer library (AddTesseraAccessTokens, following the revocation feed), in
/// process on a loopback socket, trusting a <see cref="TesseraTestServer"/>. The API runs on the real clock: everything
/// it compares (a token's iat with a watermark) was stamped by Tessera's fake clock, so the outcome does not depend on
/// how long the test takes.
/// </summary>
public sealed class FeedFollowingApi : IAsyncDisposable
{
    public const string ReceiverId = "api-feed";

    private readonly TesseraTestServer _server;
    private readonly WebApplication _app;
    private readonly HttpClient _http;

    private FeedFollowingApi(TesseraTestServer server, WebApplication app, string url)
    {
        _server = server;
        _app = app;
        _http = new HttpClient { BaseAddress = new Uri(url + "/") };
    }

    /// <summary>Registers the API's feed receiver at <paramref name="server"/> and starts the API.</summary>
    public static async Task<FeedFollowingApi> StartAsync(TesseraTestServer server)
    {
        var (_, secret) = await server.AddClientAsync(new Core.Clients.Client
        {
            Id = ReceiverId, DisplayName = "API (revocation feed)", GrantTypes = [Core.Clients.GrantTypes.ClientCredentials], Scopes = ["tessera.revocations"],
        }, confidential: true);
        var url = $"http://127.0.0.1:{FreePort()}";
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddAuthentication(TesseraAccessTokenDefaults.Scheme).AddTesseraAccessTokens(o =>
        {
            o.Authority = server.Issuer;
            o.Audience = TestClients.Api;
            o.RequireHttpsMetadata = false;
            o.FeedClientId = ReceiverId;
            o.FeedClientSecret = secret;
            o.PollInterval = TimeSpan.FromMilliseconds(50);
        });
        builder.Services.AddAuthorization();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/api/hello", (ClaimsPrincipal user) => Results.Json(new { sub = user.FindFirstValue("sub"), sid = user.FindFirstValue("sid") })).RequireScope("api.read");
        app.MapGet("/api/write", () => Results.Text("written")).RequireScope("api.write");
        await app.StartAsync();
        return new FeedFollowingApi(server, app, url);
    }

    public async Task<HttpStatusCode> StatusAsync(string? accessToken, string path = "api/hello")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (accessToken is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        using var response = await _http.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>
    /// Waits until the API has applied every event on Tessera's feed so far: the library acknowledges (RFC 8936 §2.4.2)
    /// only what it applied, so once the receiver's position reaches the last event, the API knows all of it.
    /// </summary>
    public async Task CaughtUpAsync()
    {
        var feed = _server.Services.GetRequiredService<IRevocationFeedStore>();
        var events = await feed.ReadAfterAsync(0, 10_000, default);
        Assert.NotEmpty(events);
        var last = events[^1].Id;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (await feed.GetCursorAsync(ReceiverId, default) < last)
        {
            Assert.True(DateTime.UtcNow < until, $"the API did not acknowledge the feed up to event {last} within 10 s");
            await Task.Delay(20);
        }
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
