using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Tessera.Bff.Tests.Infrastructure;

/// <summary>
/// Everything the browser tests talk to, as real processes on loopback: Tessera (`dotnet tessera.dll serve`, clients
/// and users made with its command line, 5-second access tokens), the sample API (`BffHost.dll demo-api`), the BFF
/// host in BFF mode and a second one in token-mediating mode. Tessera answers on <c>localhost</c> and the rest on
/// <c>127.0.0.1</c>, so the provider is cross-site from the single-page app, as it is in production.
/// </summary>
public sealed class TesseraStack : IAsyncLifetime
{
    public const string Password = "bff-end-to-end-test-password";
    public const string ClientId = "spa-bff";
    public const string MediatingClientId = "spa-token-mediator";
    public static readonly TimeSpan AccessTokenLifetime = TimeSpan.FromSeconds(5);

    private readonly List<ChildProcess> _processes = [];
    private ChildProcess? _bffHost;
    private string[] _tesseraArgs = [];

    public string WorkDirectory { get; } = Directory.CreateTempSubdirectory("tessera-bff-e2e-").FullName;
    public string TesseraUrl { get; private set; } = "";
    public string ApiUrl { get; private set; } = "";
    public string BffUrl { get; private set; } = "";
    public string MediatingUrl { get; private set; } = "";
    public IPlaywright Playwright { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // Fail (never skip) at once when the browser is missing, with what to do about it.
        Chromium.EnsureInstalled();

        TesseraUrl = $"http://localhost:{ChildProcess.FreePort()}";
        ApiUrl = $"http://127.0.0.1:{ChildProcess.FreePort()}";
        BffUrl = $"http://127.0.0.1:{ChildProcess.FreePort()}";
        MediatingUrl = $"http://127.0.0.1:{ChildProcess.FreePort()}";
        var masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        _tesseraArgs = ["--urls=" + TesseraUrl, "--Tessera:Issuer=" + TesseraUrl, "--Tessera:DataDirectory=" + Path.Combine(WorkDirectory, "tessera"),
            "--Tessera:MasterKey=" + masterKey,
            // No leeway past exp when Tessera checks its own access tokens (introspection), so "expired" means expired.
            "--Tessera:ClockSkew=00:00:00"];

        // One confidential client per backend, each with its own callback and back-channel logout receiver; 5-second access tokens.
        async Task<string> AddBackendClientAsync(string id, string name, string url) => SecretIn(await TesseraCliAsync("clients", "add", id, "--name", name,
            "--grant", "authorization_code", "--grant", "refresh_token", "--redirect-uri", url + "/bff/callback",
            "--backchannel-logout-uri", url + "/bff/backchannel-logout", "--scope", "openid profile offline_access api.read api.write",
            "--first-party", "--resource", ApiUrl, "--access-token-lifetime", "00:00:05"));
        var bffSecret = await AddBackendClientAsync(ClientId, "SPA backend", BffUrl);
        var mediatingSecret = await AddBackendClientAsync(MediatingClientId, "SPA token mediator", MediatingUrl);
        var apiSecret = SecretIn(await TesseraCliAsync("clients", "add", "sample-api", "--grant", "client_credentials", "--scope", "api.read", "--resource", ApiUrl));
        foreach (var user in (string[])["alice", "bob", "eve", "mia"])
            await TesseraCliAsync("users", "add", user, "--password", Password, "--name", char.ToUpperInvariant(user[0]) + user[1..]);

        var tessera = Start("tessera", BuildOutput.TesseraDll, ["serve", .. _tesseraArgs]);
        var api = Start("sample API", BuildOutput.BffHostDll, ["demo-api", "--urls=" + ApiUrl, "--Api:Authority=" + TesseraUrl, "--Api:ClientId=sample-api",
            "--Api:ClientSecret=" + apiSecret, "--Api:Audience=" + ApiUrl, "--Api:AllowedOrigins=" + MediatingUrl]);
        string[] common = ["--Bff:Authority=" + TesseraUrl, "--Bff:Scope=openid profile offline_access api.read api.write", "--Bff:Resource=" + ApiUrl,
            "--Bff:Routes:/api=" + ApiUrl + "/api", "--Logging:LogLevel:Tessera.Bff=Debug"];
        var bff = _bffHost = Start("BFF host", BuildOutput.BffHostDll, ["--urls=" + BffUrl, "--Bff:ClientId=" + ClientId, "--Bff:ClientSecret=" + bffSecret,
            "--Bff:DataDirectory=" + Path.Combine(WorkDirectory, "bff"), .. common]);
        // Cookies ignore ports: on one loopback host the second backend needs its own cookie name.
        var mediating = Start("token-mediating host", BuildOutput.BffHostDll, ["--urls=" + MediatingUrl, "--Bff:ClientId=" + MediatingClientId,
            "--Bff:ClientSecret=" + mediatingSecret, "--Bff:DataDirectory=" + Path.Combine(WorkDirectory, "bff-mediating"), "--Bff:Mode=TokenMediating",
            "--Bff:CookieName=tessera-bff-m", "--Sample:DirectApi=" + ApiUrl + "/api/data", "--Sample:MediatedScope=api.read", .. common]);

        var timeout = TimeSpan.FromSeconds(60);
        await Task.WhenAll(
            tessera.WaitUntilReadyAsync(TesseraUrl + "/healthz", timeout),
            api.WaitUntilReadyAsync(ApiUrl + "/healthz", timeout),
            bff.WaitUntilReadyAsync(BffUrl + "/app-config.json", timeout),
            mediating.WaitUntilReadyAsync(MediatingUrl + "/app-config.json", timeout));
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
    }

    /// <summary>Tessera's command line against the test's database (also while the server runs: SQLite in WAL mode).</summary>
    public Task<string> TesseraCliAsync(params string[] args) =>
        ChildProcess.RunAsync(WorkDirectory, BuildOutput.TesseraDll, [.. args, .. _tesseraArgs], TimeSpan.FromSeconds(60));

    /// <summary>Recent output of the BFF host (BFF mode).</summary>
    public string BffHostLogs => _bffHost?.Output ?? "";

    /// <summary>Recent output of every process, for failure messages.</summary>
    public string Logs => string.Join("\n\n", _processes.Select(p => $"==== {p.Name} ====\n{p.Output}"));

    private ChildProcess Start(string name, string dll, string[] args)
    {
        var p = ChildProcess.Start(name, WorkDirectory, dll, args);
        _processes.Add(p);
        return p;
    }

    private static string SecretIn(string output) =>
        Regex.Match(output, @"Secret \(shown once, stored only as a hash\): (\S+)") is { Success: true } m
            ? m.Groups[1].Value
            : throw new InvalidOperationException("No client secret in the CLI's output:\n" + output);

    public async Task DisposeAsync()
    {
        Playwright?.Dispose();
        foreach (var p in _processes) await p.DisposeAsync();
        try
        {
            Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
            // a process may still hold a file for a moment; the directory is in the temp folder
        }
    }
}

[CollectionDefinition(Name)]
public sealed class StackCollection : ICollectionFixture<TesseraStack>
{
    public const string Name = "Tessera, sample API and BFF hosts";
}
