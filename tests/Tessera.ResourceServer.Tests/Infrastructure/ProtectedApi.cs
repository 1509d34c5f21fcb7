using System.Net.Http.Headers;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>An API using the library, in process on a real loopback socket, trusting a <see cref="LocalIssuer"/>.</summary>
public sealed class ProtectedApi : IAsyncDisposable
{
    public const string Audience = "https://api.example.test";

    public WebApplication App { get; }
    public string Url { get; }
    public HttpClient Http { get; }

    private ProtectedApi(WebApplication app, string url)
    {
        App = app;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url + "/") };
    }

    public static async Task<ProtectedApi> StartAsync(LocalIssuer issuer, bool followFeed = false, Action<TesseraAccessTokenOptions>? configure = null)
    {
        var url = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddAuthentication(TesseraAccessTokenDefaults.Scheme).AddTesseraAccessTokens(o =>
        {
            o.Authority = issuer.Issuer;
            o.Audience = Audience;
            o.RequireHttpsMetadata = false;
            if (followFeed)
            {
                o.FeedClientId = LocalIssuer.FeedClientId;
                o.FeedClientSecret = LocalIssuer.FeedClientSecret;
                o.PollInterval = TimeSpan.FromMilliseconds(50);
            }
            configure?.Invoke(o);
        });
        builder.Services.AddAuthorizationBuilder().AddTesseraScopePolicy("writers", "api.write");
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/api/hello", (ClaimsPrincipal user) => Results.Json(new { sub = user.FindFirstValue("sub"), sid = user.FindFirstValue("sid") })).RequireScope("api.read");
        app.MapGet("/api/write", () => Results.Text("written")).RequireAuthorization("writers");
        app.MapGet("/api/admin", () => Results.Text("admin")).RequireScope("api.read", "api.admin");
        app.MapGet("/api/open", () => Results.Text("open"));
        await app.StartAsync();
        return new ProtectedApi(app, url);
    }

    public async Task<HttpResponseMessage> GetAsync(string path, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await Http.SendAsync(request);
    }

    /// <summary>A request with any Authorization scheme and any number of DPoP headers, sent as given.</summary>
    public async Task<HttpResponseMessage> SendAsync(string path, string? scheme, string? token, IEnumerable<string>? proofs = null, HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, path);
        if (scheme is not null) request.Headers.TryAddWithoutValidation("Authorization", scheme + " " + token);
        foreach (var proof in proofs ?? []) request.Headers.TryAddWithoutValidation("DPoP", proof);
        return await Http.SendAsync(request);
    }

    /// <summary>The absolute URI of <paramref name="path"/> on this API, as a client puts it in a proof's htu.</summary>
    public string UrlOf(string path) => Url + "/" + path.TrimStart('/');

    internal RevocationState Revocations => App.Services.GetRequiredService<TesseraRevocationRegistry>().For(TesseraAccessTokenDefaults.Scheme);

    internal TesseraTokenHandler Handler =>
        (TesseraTokenHandler)App.Services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(TesseraAccessTokenDefaults.Scheme).TokenHandlers.Single();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>One issuer and one API (no feed) for a whole test class.</summary>
public sealed class IssuerAndApi : IAsyncLifetime
{
    public LocalIssuer Issuer { get; private set; } = null!;
    public ProtectedApi Api { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Issuer = await LocalIssuer.StartAsync();
        Api = await ProtectedApi.StartAsync(Issuer);
    }

    public async Task DisposeAsync()
    {
        await Api.DisposeAsync();
        await Issuer.DisposeAsync();
    }
}
