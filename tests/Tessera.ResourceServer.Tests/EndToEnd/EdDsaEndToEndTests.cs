using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Tessera.ResourceServer.Tests.Infrastructure;

namespace Tessera.ResourceServer.Tests.EndToEnd;

/// <summary>
/// A real Tessera (`dotnet tessera.dll`, a client made with `clients add --signing-alg EdDSA`) and two APIs using the
/// library against its discovery document and JWKS: one that allow-lists EdDSA accepts the client's tokens, the other
/// (library defaults) refuses them, while both accept an ES256 client's tokens.
/// </summary>
public sealed partial class EdDsaEndToEndTests : IAsyncLifetime
{
    private const string Audience = "https://api.example.test";
    private readonly List<WebApplication> _apis = [];
    private readonly ProcessWorkspace _ws = new("tessera-rs-eddsa-");
    private string _tesseraUrl = "";
    private string _edSecret = "";
    private string _esSecret = "";

    public async Task InitializeAsync()
    {
        _tesseraUrl = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        _ws.TesseraArgs = ["--urls=" + _tesseraUrl, "--Tessera:Issuer=" + _tesseraUrl, "--Tessera:DataDirectory=" + Path.Combine(_ws.Work, "tessera"),
            "--Tessera:MasterKey=" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), "--Logging:LogLevel:Default=Warning"];
        _edSecret = ProcessWorkspace.SecretIn(await _ws.CliAsync("clients", "add", "ed-svc", "--scope", "api.read", "--resource", Audience, "--signing-alg", "EdDSA"));
        _esSecret = ProcessWorkspace.SecretIn(await _ws.CliAsync("clients", "add", "es-svc", "--scope", "api.read", "--resource", Audience));
        var tessera = _ws.Start("tessera", BuildOutput.TesseraDll, ["serve", .. _ws.TesseraArgs]);
        await tessera.WaitUntilReadyAsync(_tesseraUrl + "/healthz", TimeSpan.FromSeconds(30));
    }

    private async Task<HttpClient> StartApiAsync(Action<TesseraAccessTokenOptions>? configure = null)
    {
        var url = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddAuthentication(TesseraAccessTokenDefaults.Scheme).AddTesseraAccessTokens(o =>
        {
            o.Authority = _tesseraUrl;
            o.Audience = Audience;
            o.RequireHttpsMetadata = false;
            configure?.Invoke(o);
        });
        builder.Services.AddAuthorization();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/api/hello", (HttpContext http) => Results.Text(http.User.FindFirst("client_id")?.Value)).RequireScope("api.read");
        await app.StartAsync();
        _apis.Add(app);
        return new HttpClient { BaseAddress = new Uri(url + "/") };
    }

    private async Task<string> TokenAsync(string clientId, string secret)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, _tesseraUrl + "/connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}")));
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var body = JsonDocument.Parse(text);
        return body.RootElement.GetProperty("access_token").GetString()!;
    }

    private static async Task<(HttpStatusCode Status, string Body, string Challenge)> CallAsync(HttpClient api, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/hello");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await api.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task An_API_that_allow_lists_EdDSA_accepts_Tesseras_EdDSA_tokens_and_one_that_does_not_refuses_them()
    {
        using var accepting = await StartApiAsync(o => o.ValidAlgorithms.Add("EdDSA"));
        using var defaults = await StartApiAsync();
        var ed = await TokenAsync("ed-svc", _edSecret);
        var es = await TokenAsync("es-svc", _esSecret);
        Assert.Equal("EdDSA", new JsonWebToken(ed).Alg);
        Assert.Equal("ES256", new JsonWebToken(es).Alg);

        var ok = await CallAsync(accepting, ed);
        Assert.True(ok.Status == HttpStatusCode.OK, $"{(int)ok.Status} {ok.Challenge}\n{_ws.Logs}");
        Assert.Equal("ed-svc", ok.Body);
        Assert.Equal(HttpStatusCode.OK, (await CallAsync(accepting, es)).Status);

        // Another EdDSA token's signature over this payload: the key is found, the signature is not its own.
        var mine = ed.Split('.');
        var other = (await TokenAsync("ed-svc", _edSecret)).Split('.');
        var spliced = await CallAsync(accepting, $"{mine[0]}.{other[1]}.{mine[2]}");
        Assert.Equal(HttpStatusCode.Unauthorized, spliced.Status);
        Assert.Contains("The signature is invalid.", spliced.Challenge, StringComparison.Ordinal);

        var refused = await CallAsync(defaults, ed);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Contains("error=\"invalid_token\"", refused.Challenge, StringComparison.Ordinal);
        Assert.Contains("The token's signing algorithm is not accepted.", refused.Challenge, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await CallAsync(defaults, es)).Status);
    }





    public async Task DisposeAsync()
    {
        foreach (var api in _apis)
        {
            await api.StopAsync();
            await api.DisposeAsync();
        }
        await _ws.DisposeAsync();
    }
}
