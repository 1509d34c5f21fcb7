using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Bff.Sessions;

namespace Tessera.Bff.Tests.Unit;

/// <summary>
/// The BFF library in-process on loopback Kestrel, with a scripted stand-in for Tessera (discovery, JWKS, token,
/// introspection, revocation) and an echo API behind the proxy. For the non-browser tests.
/// </summary>
public sealed class InProcessBff : IAsyncDisposable
{
    public const string ClientId = "spa-bff";
    private readonly List<WebApplication> _apps = [];
    private readonly string _directory = Directory.CreateTempSubdirectory("tessera-bff-unit-").FullName;

    public ECDsa SigningKey { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    public string Kid { get; } = "test-key";
    public string AuthorityUrl { get; private set; } = "";
    public string ApiUrl { get; private set; } = "";
    public string BffUrl { get; private set; } = "";
    public IServiceProvider BffServices { get; private set; } = null!;

    /// <summary>Refresh-grant requests Tessera received.</summary>
    public int RefreshRequests => _refreshRequests;
    private int _refreshRequests;
    public ConcurrentQueue<string> RefreshScopes { get; } = new();

    /// <summary>What the stand-in answers: a successful refresh (default), or 400 invalid_grant.</summary>
    public bool RefuseRefresh { get; set; }
    public TimeSpan RefreshDelay { get; set; } = TimeSpan.FromMilliseconds(300);
    public bool IntrospectionActive { get; set; } = true;

    /// <summary>The echo API answers 401 to every call when set.</summary>
    public bool ApiRefusesEverything { get; set; }

    public static async Task<InProcessBff> StartAsync()
    {
        var h = new InProcessBff();
        h.AuthorityUrl = await h.StartAppAsync(h.MapAuthority);
        h.ApiUrl = await h.StartAppAsync(h.MapApi);
        h.BffUrl = await h.StartAppAsync(app => app.MapTesseraBff(), services =>
        {
            services.AddDataProtection().UseEphemeralDataProtectionProvider();
            services.AddTesseraBff(o =>
            {
                o.Authority = h.AuthorityUrl;
                o.ClientId = ClientId;
                o.ClientSecret = "test-secret";
                o.Scopes = ["openid", "profile", "offline_access", "api.read", "api.write"];
                o.Resource = "https://api.example";
                o.Routes = new Dictionary<string, string> { ["/api"] = h.ApiUrl + "/upstream" };
                o.Mode = BffMode.TokenMediating;
                o.SessionDatabasePath = Path.Combine(h._directory, "sessions.db");
            });
        });
        h.BffServices = h._apps[^1].Services;
        return h;
    }

    /// <summary>Stores a signed-in session as the callback would, and returns the cookie value.</summary>
    public async Task<string> SeedSessionAsync(TimeSpan accessTokenExpiresIn, string sid = "tessera-sid-1", string subject = "user-1")
    {
        var id = BffSession.NewId();
        var now = DateTimeOffset.UtcNow;
        await BffServices.GetRequiredService<IBffSessionStore>().SaveAsync(new BffSession
        {
            Key = BffSession.KeyOf(id),
            Subject = subject,
            TesseraSessionId = sid,
            CreatedAt = now - TimeSpan.FromMinutes(10),
            ExpiresAt = now + TimeSpan.FromHours(1),
            AccessToken = "at-0",
            AccessTokenIssuedAt = now + accessTokenExpiresIn - TimeSpan.FromMinutes(5),
            AccessTokenExpiresAt = now + accessTokenExpiresIn,
            RefreshToken = "rt-0",
            GrantedScopes = ["openid", "profile", "offline_access", "api.read", "api.write"],
            Claims = new Dictionary<string, string> { ["sub"] = subject, ["name"] = "Test User" },
        }, CancellationToken.None);
        return id;
    }

    public Task<BffSession?> FindSessionAsync(string cookieValue) =>
        BffServices.GetRequiredService<IBffSessionStore>().GetAsync(BffSession.KeyOf(cookieValue), CancellationToken.None);

    public HttpClient Client(string? cookie, bool csrf = true)
    {
        var http = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = new Uri(BffUrl) };
        if (cookie is not null) http.DefaultRequestHeaders.Add("Cookie", "tessera-bff=" + cookie);
        if (csrf) http.DefaultRequestHeaders.Add("X-CSRF", "1");
        return http;
    }

    /// <summary>A JWT signed by the stand-in's key, for back-channel logout tokens.</summary>
    public string Sign(Dictionary<string, object> claims, string typ) => new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(
        new SecurityTokenDescriptor
        {
            Claims = claims,
            TokenType = typ,
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(SigningKey) { KeyId = Kid }, SecurityAlgorithms.EcdsaSha256),
        });

    private void MapAuthority(WebApplication app)
    {
        app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = AuthorityUrl,
            ["authorization_endpoint"] = AuthorityUrl + "/connect/authorize",
            ["token_endpoint"] = AuthorityUrl + "/connect/token",
            ["jwks_uri"] = AuthorityUrl + "/jwks",
            ["revocation_endpoint"] = AuthorityUrl + "/connect/revoke",
            ["introspection_endpoint"] = AuthorityUrl + "/connect/introspect",
            ["authorization_response_iss_parameter_supported"] = true,
        }));
        app.MapGet("/jwks", () =>
        {
            var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(SigningKey) { KeyId = Kid });
            return Results.Json(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = Kid, use = "sig", alg = "ES256" } } });
        });
        app.MapPost("/connect/token", async (HttpContext http) =>
        {
            var form = await http.Request.ReadFormAsync();
            if (form["grant_type"] != "refresh_token") return Results.Json(new { error = "unsupported_grant_type" }, statusCode: 400);
            var n = Interlocked.Increment(ref _refreshRequests);
            RefreshScopes.Enqueue(form["scope"].ToString());
            await Task.Delay(RefreshDelay);
            if (RefuseRefresh) return Results.Json(new { error = "invalid_grant" }, statusCode: 400);
            var scope = form["scope"].Count > 0 ? form["scope"].ToString() : "openid profile offline_access api.read api.write";
            return Results.Json(new { access_token = $"at-{n}", token_type = "Bearer", expires_in = 300, refresh_token = $"rt-{n}", scope });
        });
        app.MapPost("/connect/introspect", () => Results.Json(new { active = IntrospectionActive }));
        app.MapPost("/connect/revoke", () => Results.Ok());
    }

    private void MapApi(WebApplication app)
    {
        app.Map("/upstream/{**rest}", (HttpContext http) =>
        {
            if (ApiRefusesEverything) return Results.Json(new { error = "invalid_token" }, statusCode: 401);
            http.Response.Headers["Set-Cookie"] = "planted=1; Path=/";
            http.Response.Headers.AccessControlAllowOrigin = "*";
            return Results.Json(new
            {
                authorization = http.Request.Headers.Authorization.ToString(),
                cookie = http.Request.Headers.Cookie.ToString(),
                csrf = http.Request.Headers["X-CSRF"].ToString(),
                path = http.Request.Path.Value,
                query = http.Request.QueryString.Value,
            });
        });
    }

    private async Task<string> StartAppAsync(Action<WebApplication> map, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        services?.Invoke(builder.Services);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        _apps.Add(app);
        return app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps) await app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        SigningKey.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // temp folder
        }
    }
}
