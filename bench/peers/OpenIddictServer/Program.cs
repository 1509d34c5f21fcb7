// OpenIddict 7.8 peer for the Tessera benchmark (bench/README.md, "Peers"): ASP.NET Core + EF Core SQLite store,
// ES256 signing key, JWT access tokens (not encrypted), 5-minute access tokens, rolling (rotated) refresh tokens,
// one confidential client; authorization code + PKCE, refresh_token, client_credentials, introspection.
//
// What is simplified against a real deployment (all of it favours OpenIddict):
//  - /login signs the fixed test user in without a form, antiforgery or password hashing (no Argon2id);
//  - the token endpoint does not look the user up again on refresh (there is no user table);
//  - the client secret is compared as a SHA-256 hash, like Tessera does, instead of OpenIddict's default PBKDF2
//    (pass --stock-secret-hashing to keep OpenIddict's default).
//
//   dotnet OpenIddictServer.dll --port 5102 --db /tmp/openiddict.db [--client-id bench --client-secret S]
using System.Data.Common;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Core;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Tessera.Bench.Peers.OpenIddictServer;

public static class PeerProgram
{
    public const string Resource = "https://api.bench.example";
    public const string TestUser = "bench-user";
    private const string CookieScheme = "bench.browser";

    public static async Task<int> Main(string[] args)
    {
        string Arg(string name, string fallback)
        {
            var i = Array.IndexOf(args, "--" + name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var port = int.Parse(Arg("port", "5102"), System.Globalization.CultureInfo.InvariantCulture);
        var db = Arg("db", Path.Combine(Path.GetTempPath(), "tessera-bench-openiddict.db"));
        var clientId = Arg("client-id", "bench");
        var clientSecret = Arg("client-secret", "bench-secret-0123456789abcdef0123456789abcdef");
        var redirectUri = Arg("redirect-uri", "https://app.example.com/callback");
        var stockHashing = args.Contains("--stock-secret-hashing");

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);

        var s = builder.Services;
        s.AddDbContext<BenchDb>(o =>
        {
            o.UseSqlite($"Data Source={db}");
            // Same durability as Tessera's default: WAL (set once on the file) + synchronous=NORMAL on every connection.
            o.AddInterceptors(new SynchronousNormal());
            o.UseOpenIddict();
        });
        var core = s.AddOpenIddict().AddCore(o =>
        {
            o.UseEntityFrameworkCore().UseDbContext<BenchDb>();
            if (!stockHashing) o.ReplaceApplicationManager(typeof(Sha256SecretApplicationManager<>));
        });
        core.AddServer(o =>
        {
            o.SetAuthorizationEndpointUris("connect/authorize")
             .SetTokenEndpointUris("connect/token")
             .SetIntrospectionEndpointUris("connect/introspect");
            o.AllowAuthorizationCodeFlow().AllowRefreshTokenFlow().AllowClientCredentialsFlow();
            o.RequireProofKeyForCodeExchange();
            o.RegisterScopes("api", Scopes.OfflineAccess);
            o.AddSigningKey(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = Guid.NewGuid().ToString("N") });
            // Authorization codes and refresh tokens are encrypted JWTs (OpenIddict's format); access tokens are not.
            o.AddEncryptionKey(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)));
            o.DisableAccessTokenEncryption();
            o.SetAccessTokenLifetime(TimeSpan.FromMinutes(5));
            o.SetAuthorizationCodeLifetime(TimeSpan.FromMinutes(1));
            o.SetRefreshTokenLifetime(TimeSpan.FromDays(14));
            // Rolling refresh tokens are OpenIddict's default: every refresh redeems the token and issues a new one.
            o.UseAspNetCore()
             .EnableAuthorizationEndpointPassthrough()
             .EnableTokenEndpointPassthrough()
             .DisableTransportSecurityRequirement();
        });
        s.AddAuthentication(CookieScheme).AddCookie(CookieScheme, o => o.Cookie.Name = "bench.browser");
        s.AddAuthorization();

        var app = builder.Build();
        await SeedAsync(app.Services, db, clientId, clientSecret, redirectUri);
        app.UseAuthentication();

        app.MapGet("/healthz", () => "ok");

        // The passthrough "login": the fixed test user, no form, no password check.
        app.MapGet("/login", async (HttpContext http, string? returnUrl) =>
        {
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, TestUser)], CookieScheme);
            await http.SignInAsync(CookieScheme, new ClaimsPrincipal(identity));
            return Results.Redirect(returnUrl is { } r && r.StartsWith('/') ? r : "/");
        });

        app.MapMethods("/connect/authorize", [HttpMethods.Get, HttpMethods.Post], async (HttpContext http) =>
        {
            var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("not an OpenID Connect request");
            var browser = await http.AuthenticateAsync(CookieScheme);
            if (!browser.Succeeded)
                return Results.Redirect("/login?returnUrl=" + Uri.EscapeDataString(http.Request.PathBase + http.Request.Path + http.Request.QueryString));
            var identity = new ClaimsIdentity(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, Claims.Name, Claims.Role);
            identity.SetClaim(Claims.Subject, TestUser);
            identity.SetScopes(request.GetScopes());
            identity.SetResources(Resource);
            identity.SetDestinations(_ => [Destinations.AccessToken]);
            return Results.SignIn(new ClaimsPrincipal(identity), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        });

        app.MapPost("/connect/token", async (HttpContext http) =>
        {
            var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("not an OpenID Connect request");
            ClaimsIdentity identity;
            if (request.IsAuthorizationCodeGrantType() || request.IsRefreshTokenGrantType())
            {
                // OpenIddict has already validated the code / refresh token (signature, expiry, redemption, rotation).
                var result = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
                identity = new ClaimsIdentity(result.Principal!.Claims, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, Claims.Name, Claims.Role);
            }
            else if (request.IsClientCredentialsGrantType())
            {
                identity = new ClaimsIdentity(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, Claims.Name, Claims.Role);
                identity.SetClaim(Claims.Subject, request.ClientId);
                identity.SetScopes(request.GetScopes());
                identity.SetResources(Resource);
            }
            else
            {
                return Results.BadRequest(new { error = Errors.UnsupportedGrantType });
            }
            identity.SetDestinations(_ => [Destinations.AccessToken]);
            return Results.SignIn(new ClaimsPrincipal(identity), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        });

        await app.RunAsync();
        return 0;
    }

    private static async Task SeedAsync(IServiceProvider services, string db, string clientId, string clientSecret, string redirectUri)
    {
        await using var scope = services.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<BenchDb>();
        await context.Database.EnsureCreatedAsync();
        await context.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;");
        var manager = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        if (await manager.FindByClientIdAsync(clientId) is { } existing) await manager.DeleteAsync(existing);
        await manager.CreateAsync(new OpenIddictApplicationDescriptor
        {
            ClientId = clientId,
            ClientSecret = clientSecret,
            ClientType = ClientTypes.Confidential,
            DisplayName = "bench",
            RedirectUris = { new Uri(redirectUri) },
            Permissions =
            {
                Permissions.Endpoints.Authorization, Permissions.Endpoints.Token, Permissions.Endpoints.Introspection,
                Permissions.GrantTypes.AuthorizationCode, Permissions.GrantTypes.RefreshToken, Permissions.GrantTypes.ClientCredentials,
                Permissions.ResponseTypes.Code, Permissions.Prefixes.Scope + "api", Permissions.Prefixes.Scope + Scopes.OfflineAccess,
            },
            Requirements = { Requirements.Features.ProofKeyForCodeExchange },
        });
        Console.WriteLine($"OpenIddict peer ready (database {db}).");
    }
}

public sealed class BenchDb(DbContextOptions<BenchDb> options) : DbContext(options);

/// <summary>PRAGMA synchronous=NORMAL on each opened connection (WAL is persistent in the file).</summary>
public sealed class SynchronousNormal : DbConnectionInterceptor
{
    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Apply(connection);
        return Task.CompletedTask;
    }

    private static void Apply(DbConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA synchronous=NORMAL;";
        cmd.ExecuteNonQuery();
    }
}

/// <summary>Client secrets as SHA-256 (what Tessera does for its 256-bit random secrets) instead of PBKDF2.</summary>
public sealed class Sha256SecretApplicationManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store)
    : OpenIddictApplicationManager<TApplication>(cache, logger, options, store) where TApplication : class
{
    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(secret))));

    protected override ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(secret)), Convert.FromBase64String(comparand)));
}
