using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Options;
using Tessera.Core;
using Tessera.Core.Crypto;
using Tessera.Core.Keys;
using Tessera.Core.Passwords;
using Tessera.Core.Refresh;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Server.ClientAuthentication;
using Tessera.Server.Endpoints;
using Tessera.Server.Grants;
using Tessera.Server.Maintenance;
using Tessera.Server.Pages;
using Tessera.Storage.Common;
using Tessera.Storage.Postgres;
using Tessera.Storage.Sqlite;

namespace Tessera.Server.Hosting;

internal sealed record SeedData(IReadOnlyList<ClientSeed> Clients, IReadOnlyList<UserSeed> Users);

public static class TesseraApp
{
    public const string DefaultUrl = "http://127.0.0.1:5080";
    public const string BrowserScheme = "tessera.browser";

    /// <summary>Builds the server. <paramref name="configure"/> lets tests and embedders adjust services before the app is built.</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.SetBasePath(Directory.GetCurrentDirectory())
            .AddJsonFile("appsettings.json", optional: true)
            .AddJsonFile("tessera.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(args);
        var url = (builder.Configuration["urls"] ?? builder.Configuration["ASPNETCORE_URLS"] ?? DefaultUrl).Split(';')[0];
        builder.WebHost.UseUrls(url);
        // No "Server: Kestrel" on every answer: it tells a scanner what runs here and nothing a client needs.
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        var settings = builder.Configuration.GetSection("Tessera").Get<ServerSettings>() ?? new ServerSettings();
        var options = builder.Configuration.GetSection("Tessera").Get<TesseraOptions>() ?? new TesseraOptions();
        var clientSeeds = builder.Configuration.GetSection("Tessera:Clients").Get<List<ClientSeed>>() ?? [];
        var userSeeds = builder.Configuration.GetSection("Tessera:Users").Get<List<UserSeed>>() ?? [];
        var problems = settings.Validate().Concat(options.Validate()).Concat(ConfigSeed.Validate(clientSeeds, userSeeds)).ToList();
        if (problems.Count > 0)
            throw new OptionsValidationException("Tessera", typeof(ServerSettings), problems);
        options.Issuer = (options.Issuer ?? url).TrimEnd('/');
        // On https the provider's cookies take the __Host- prefix: Secure, Path=/, no Domain (RFC 6265bis §4.1.3.2).
        var https = options.Issuer.StartsWith("https://", StringComparison.Ordinal);
        var cookiePrefix = https ? "__Host-" : "";
        var securePolicy = https ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;

        var s = builder.Services;
        s.AddSingleton(settings);
        s.AddSingleton(new SeedData(clientSeeds, userSeeds));
        s.AddSingleton(options);
        s.AddSingleton(TimeProvider.System);
        s.AddSingleton<ITesseraStore>(_ => settings.Store == "postgres"
            ? new PostgresStore(settings.PostgresConnectionString!)
            : new SqliteStore(new SqliteStoreOptions
            {
                Path = settings.SqlitePath ?? Path.Combine(settings.DataDirectory, "tessera.db"),
                FullSync = settings.SqliteFullSync,
            }));
        s.AddSingleton(sp => sp.GetRequiredService<ITesseraStore>().Keys);
        s.AddSingleton(_ => new SecretProtector(MasterKeyLoader.Load(settings)));
        s.AddSingleton<KeyRing>();
        s.AddSingleton<TokenMinter>();
        s.AddSingleton(_ => new PasswordHasher(settings.Argon2));
        s.AddSingleton<RefreshEvents>();
        s.AddSingleton(sp => (IRevocationFeedStore)sp.GetRequiredService<ITesseraStore>());
        s.AddSingleton<IRevocationPublisher, FeedRevocationPublisher>();
        s.AddSingleton<RefreshTokenService>();
        s.AddSingleton(sp => (Tessera.Core.Dpop.IReplayCache)sp.GetRequiredService<ITesseraStore>());
        s.AddSingleton<Tessera.Core.Dpop.DpopProofValidator>();
        s.AddSingleton<Throttling.LoginThrottle>();
        s.AddSingleton<Throttling.ClientAuthThrottle>();
        s.AddSingleton<ClientAuthenticator>();
        s.AddSingleton<PrivateKeyJwtValidator>();
        s.AddSingleton<TwoFactor>();
        s.AddSingleton<AccessTokenValidator>();
        s.AddSingleton<TokenResponder>();
        s.AddSingleton<AuthorizationCodeGrant>();
        s.AddSingleton<RefreshTokenGrant>();
        s.AddSingleton<ClientCredentialsGrant>();
        s.AddSingleton<AuthorizeRequestValidator>();
        s.AddHostedService<PruningService>();
        s.AddHostedService<KeyRotationService>();
        s.AddHttpClient("backchannel-logout").ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false });
        s.AddSingleton<BackchannelLogoutService>();
        s.AddHostedService(sp => sp.GetRequiredService<BackchannelLogoutService>());

        var dataProtection = s.AddDataProtection().SetApplicationName("tessera");
        // The key ring behind the login cookie and antiforgery: in the database with postgres, so every node behind the
        // load balancer shares it; in the data directory for a single SQLite node. Each key is encrypted with the master key.
        if (settings.Store == "postgres")
        {
            s.AddSingleton(sp => new PostgresXmlRepository(sp.GetRequiredService<ITesseraStore>() as PostgresStore
                ?? throw new InvalidOperationException("Tessera:Store is postgres but the store is not a PostgresStore.")));
            s.AddOptions<KeyManagementOptions>().Configure<PostgresXmlRepository>((o, repository) => o.XmlRepository = repository);
        }
        else
        {
            dataProtection.PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(settings.DataDirectory, "dataprotection-keys")));
        }
        s.AddOptions<KeyManagementOptions>().Configure<SecretProtector>((o, protector) => o.XmlEncryptor = new MasterKeyXmlEncryptor(protector));
        s.AddAntiforgery(o =>
        {
            o.Cookie.Name = cookiePrefix + "tessera.af";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = securePolicy;
            o.Cookie.Path = "/";
            o.FormFieldName = "__RequestVerificationToken";
        });
        s.AddAuthentication(BrowserScheme).AddCookie(BrowserScheme, o =>
        {
            o.Cookie.Name = cookiePrefix + "tessera.session";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = securePolicy;
            o.Cookie.Path = "/";
            o.ExpireTimeSpan = TimeSpan.FromHours(12);
            o.SlidingExpiration = false;
            o.LoginPath = "/login";
        });
        s.AddAuthorization();
        s.AddRateLimiter(o =>
        {
            o.GlobalLimiter = FrontDoorLimits.Create(settings.RateLimits);
            o.OnRejected = FrontDoorLimits.OnRejectedAsync;
        });
        s.AddSingleton<Admin.AdminService>();
        s.AddProblemDetails();
        s.AddOpenApi("admin");

        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseMiddleware<SecurityHeadersMiddleware>();
        app.UseStatusCodePages();
        // With every limit set to 0 (off) the limiter middleware is left out altogether rather than run with no-op
        // partitions (the platform's partitioned limiter takes a process-wide lock on every request).
        var limits = settings.RateLimits;
        if (limits.Token > 0 || limits.Login > 0 || limits.Authorize > 0 || limits.Other > 0)
            app.UseRateLimiter();
        app.UseAuthentication();
        Map(app);
        if (settings.Demo) DemoCallback.Map(app, options.Issuer);
        return app;
    }

    /// <summary>Migrates the schema, makes sure a signing key exists and seeds the demo; run before the app starts listening.</summary>
    public static async Task InitializeAsync(WebApplication app, CancellationToken ct = default)
    {
        var sp = app.Services;
        await sp.GetRequiredService<ITesseraStore>().MigrateAsync(ct);
        await sp.GetRequiredService<KeyRing>().EnsureKeyAsync(ct);
        if (sp.GetService<PostgresXmlRepository>() is { } dataProtectionKeys)
            await dataProtectionKeys.EnsureKeyAsync(sp.GetRequiredService<IKeyManager>(), sp.GetRequiredService<IOptions<KeyManagementOptions>>().Value.NewKeyLifetime, ct);
        var seed = sp.GetRequiredService<SeedData>();
        await ConfigSeed.ApplyAsync(sp, seed.Clients, seed.Users, ct);
        if (sp.GetRequiredService<ServerSettings>().Demo)
            await DemoSeed.RunAsync(sp, ct);
    }

    private static void Map(WebApplication app)
    {
        DiscoveryEndpoint.Map(app);
        JwksEndpoint.Map(app);
        AuthorizeEndpoint.Map(app);
        LoginEndpoint.Map(app);
        ConsentEndpoint.Map(app);
        TokenEndpoint.Map(app);
        RevocationEndpoint.Map(app);
        IntrospectionEndpoint.Map(app);
        UserInfoEndpoint.Map(app);
        LogoutEndpoint.Map(app);
        AccountEndpoint.Map(app);
        SecondFactorEndpoint.Map(app);
        TwoFactorSetupEndpoint.Map(app);
        RevocationFeedEndpoint.Map(app);
        Admin.AdminApi.Map(app);
        app.MapOpenApi("/admin/openapi/{documentName}.json");
        app.MapGet("/", () => Results.Redirect("/.well-known/openid-configuration"));
        app.MapGet("/healthz", () => Results.Text("ok"));
    }
}
