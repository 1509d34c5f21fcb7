using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Tessera.Core.Clients;
using Tessera.Core.Passwords;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Server.Hosting;

namespace Tessera.Tests.Infrastructure;

/// <summary>
/// A real Tessera on a real Kestrel socket on loopback, with a real SQLite file in a temp folder (or the PostgreSQL
/// named by <c>TESSERA_TEST_POSTGRES</c> when asked). Time is a FakeTimeProvider starting at the real now.
/// </summary>
public sealed class TesseraTestServer : IAsyncDisposable
{
    private readonly string _dataDir;
    public WebApplication App { get; }
    public string Issuer { get; }
    public FakeTimeProvider Time { get; }
    public ITesseraStore Store => App.Services.GetRequiredService<ITesseraStore>();
    public IServiceProvider Services => App.Services;

    private TesseraTestServer(WebApplication app, string issuer, string dataDir, FakeTimeProvider time)
    {
        App = app;
        Issuer = issuer;
        _dataDir = dataDir;
        Time = time;
    }

    public static async Task<TesseraTestServer> StartAsync(IEnumerable<string>? extraArgs = null, Action<WebApplicationBuilder>? configure = null)
    {
        var port = FreePort();
        var issuer = $"http://127.0.0.1:{port}";
        var dataDir = Path.Combine(Path.GetTempPath(), "tessera-test-" + Guid.NewGuid().ToString("N"));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var args = new List<string>
        {
            $"--urls={issuer}",
            $"--Tessera:Issuer={issuer}",
            $"--Tessera:DataDirectory={dataDir}",
            $"--Tessera:MasterKey={Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))}",
            // Front-door limits are off unless a test turns one on (later arguments win).
            "--Tessera:RateLimits:Token=0", "--Tessera:RateLimits:Login=0", "--Tessera:RateLimits:Authorize=0", "--Tessera:RateLimits:Other=0",
            // So are the failure throttles: tests sharing a server fail sign-ins and client authentications from one address.
            "--Tessera:Throttling:LoginPerAddress:PauseAfter=0", "--Tessera:Throttling:ClientPerAddress:PauseAfter=0",
            "--Tessera:Throttling:ClientPerClientAndAddress:PauseAfter=0",
        };
        if (extraArgs is not null) args.AddRange(extraArgs);
        var app = TesseraApp.Build(args.ToArray(), b =>
        {
            b.Services.RemoveAll<TimeProvider>();
            b.Services.AddSingleton<TimeProvider>(time);
            b.Logging.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Warning);
            configure?.Invoke(b);
        });
        await TesseraApp.InitializeAsync(app);
        await app.StartAsync();
        return new TesseraTestServer(app, issuer, dataDir, time);
    }

    public HttpClient CreateClient(CookieContainer? cookies = null)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = cookies is not null,
            CookieContainer = cookies ?? new CookieContainer(),
            MaxConnectionsPerServer = 512,
        };
        return new HttpClient(handler) { BaseAddress = new Uri(Issuer + "/") };
    }

    public async Task<(Client Client, string? Secret)> AddClientAsync(Client template, bool confidential)
    {
        string? secret = confidential ? Handles.NewClientSecret() : null;
        var client = template with { SecretHash = secret is null ? null : Handles.Hash(secret) };
        await Store.Clients.SaveAsync(client, default);
        return (client, secret);
    }

    public async Task<User> AddUserAsync(string username, string password, IReadOnlyList<string>? allowedScopes = null)
    {
        var user = new User
        {
            Id = Handles.NewId(), Username = username, Name = username + " Example", Email = username + "@example.com",
            PasswordHash = Services.GetRequiredService<PasswordHasher>().Hash(password), AllowedScopes = allowedScopes, CreatedAt = Time.GetUtcNow(),
        };
        Assert.True(await Store.Users.CreateAsync(user, default));
        return user;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
