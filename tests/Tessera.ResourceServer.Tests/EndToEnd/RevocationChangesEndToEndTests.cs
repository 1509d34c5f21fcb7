using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tessera.ResourceServer.Tests.Infrastructure;
using Tessera.ResourceServer.Tests.Unit;

namespace Tessera.ResourceServer.Tests.EndToEnd;

/// <summary>Tessera (`dotnet tessera.dll serve`) and the sample API following its feed, as real processes, for a test class.</summary>
public sealed partial class TesseraAndSampleApi : IAsyncLifetime
{
    public const string RedirectUri = "https://app.example.test/callback";
    public const string Password = "end-to-end-test-password";

    private readonly ProcessWorkspace _ws = new("tessera-rs-e2e-");

    public string TesseraUrl { get; private set; } = "";
    public string ApiUrl { get; private set; } = "";
    public string WebSecret { get; private set; } = "";
    public string ServiceSecret { get; private set; } = "";

    public async Task InitializeAsync()
    {
        TesseraUrl = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        ApiUrl = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        _ws.TesseraArgs = ["--urls=" + TesseraUrl, "--Tessera:Issuer=" + TesseraUrl, "--Tessera:DataDirectory=" + Path.Combine(_ws.Work, "tessera"),
            "--Tessera:MasterKey=" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), "--Logging:LogLevel:Default=Warning"];
        WebSecret = ProcessWorkspace.SecretIn(await _ws.CliAsync("clients", "add", "web", "--grant", "authorization_code", "--grant", "refresh_token",
            "--redirect-uri", RedirectUri, "--scope", "openid offline_access api.read", "--first-party", "--resource", ApiUrl));
        ServiceSecret = ProcessWorkspace.SecretIn(await _ws.CliAsync("clients", "add", "reports", "--grant", "client_credentials", "--scope", "api.read", "--resource", ApiUrl));
        var feedSecret = ProcessWorkspace.SecretIn(await _ws.CliAsync("clients", "add", "sample-api-feed", "--scope", "tessera.revocations"));
        await _ws.CliAsync("users", "add", "alice", "--password", Password);

        var tessera = _ws.Start("tessera", BuildOutput.TesseraDll, ["serve", .. _ws.TesseraArgs]);
        await tessera.WaitUntilReadyAsync(TesseraUrl + "/healthz", TimeSpan.FromSeconds(30));
        var api = _ws.Start("sample API", BuildOutput.SampleApiDll, ["--urls=" + ApiUrl, "--Authority=" + TesseraUrl, "--Audience=" + ApiUrl,
            "--FeedClientId=sample-api-feed", "--FeedClientSecret=" + feedSecret, "--Logging:LogLevel:Default=Warning"]);
        await api.WaitUntilReadyAsync(ApiUrl + "/healthz", TimeSpan.FromSeconds(30));
    }

    /// <summary>Tessera's command line against the same database, while the server runs (what an operator does).</summary>
    public Task<string> CliAsync(params string[] args) => _ws.CliAsync(args);

    public string Logs => _ws.Logs;

    public static string SecretIn(string cliOutput) => ProcessWorkspace.SecretIn(cliOutput);

    public async Task DisposeAsync()
    {
        await _ws.DisposeAsync();
    }
}

/// <summary>
/// Issue 6 on the real clock, with real processes: "sign out everywhere" followed at once by a new sign-in, and a client
/// secret rotated from the command line while Tessera runs, as seen by the sample API through the feed.
/// </summary>
[Collection(MeasuredAlone.Name)]
public sealed class RevocationChangesEndToEndTests(TesseraAndSampleApi stack) : IClassFixture<TesseraAndSampleApi>
{
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(5);

    private async Task<HttpStatusCode> StatusAsync(string token)
    {
        using var api = new HttpClient { BaseAddress = new Uri(stack.ApiUrl + "/"), Timeout = TimeSpan.FromSeconds(5) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/hello");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await api.SendAsync(request);
        return response.StatusCode;
    }

    private async Task RefusedSoonAsync(string token, string what)
    {
        var clock = Stopwatch.StartNew();
        while (await StatusAsync(token) != HttpStatusCode.Unauthorized)
        {
            Assert.True(clock.Elapsed < GiveUpAfter, $"the API still accepted {what} after {clock.Elapsed.TotalSeconds:F1} s\n{stack.Logs}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Signing_in_again_right_after_sign_out_everywhere_works_at_the_API_and_every_earlier_token_is_refused()
    {
        using var flow = new CodeFlow(stack.TesseraUrl, "web", stack.WebSecret, TesseraAndSampleApi.RedirectUri);
        // A few rounds: on the real clock the new sign-in falls in the sign-out's own second most of the time.
        for (var round = 0; round < 3; round++)
        {
            await flow.SignInAsync("alice", TesseraAndSampleApi.Password);
            var old = (await flow.GetTokensAsync("openid offline_access api.read")).GetProperty("access_token").GetString()!;
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(old));

            await flow.SignOutEverywhereAsync();
            await flow.SignInAsync("alice", TesseraAndSampleApi.Password);
            var fresh = (await flow.GetTokensAsync("openid offline_access api.read")).GetProperty("access_token").GetString()!;

            // Tessera publishes the user's watermark before the sessions: once the old token is refused, the API knows both.
            await RefusedSoonAsync(old, $"round {round}: a token from before sign out everywhere");
            Assert.True(await StatusAsync(fresh) == HttpStatusCode.OK, $"round {round}: the new session's token was refused\n{stack.Logs}");
        }
    }

    [Fact]
    public async Task A_client_secret_rotated_from_the_command_line_stops_the_tokens_of_the_old_secret_at_the_API()
    {
        var old = await ClientCredentialsAsync(stack.ServiceSecret);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(old!));

        var newSecret = TesseraAndSampleApi.SecretIn(await stack.CliAsync("clients", "rotate-secret", "reports"));

        Assert.Null(await ClientCredentialsAsync(stack.ServiceSecret));
        await RefusedSoonAsync(old!, "a token of the old secret");
        // A token issued in the rotation's own second is refused too (the safe side); one from a later second is not.
        await Task.Delay(TimeSpan.FromMilliseconds(1100));
        var fresh = await ClientCredentialsAsync(newSecret);
        Assert.True(await StatusAsync(fresh!) == HttpStatusCode.OK, $"the new secret's token was refused\n{stack.Logs}");
    }

    /// <summary>A client_credentials token of "reports", or null when the secret is refused (401 invalid_client).</summary>
    private async Task<string?> ClientCredentialsAsync(string secret)
    {
        using var http = new HttpClient { BaseAddress = new Uri(stack.TesseraUrl + "/") };
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("reports:" + Uri.EscapeDataString(secret))));
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode == HttpStatusCode.Unauthorized) return null;
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"client_credentials answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString();
    }
}
