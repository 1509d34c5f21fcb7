using System.Security.Cryptography;
using System.Text.Json;
using Tessera.ResourceServer.Tests.Infrastructure;
using Tessera.ResourceServer.Tests.Unit;
using Xunit.Abstractions;

namespace Tessera.ResourceServer.Tests.EndToEnd;

/// <summary>
/// DPoP end to end with an implementation that is not ours: real processes on loopback — Tessera (`dotnet tessera.dll
/// serve`), the sample API (`dotnet SampleApi.dll`, the ResourceServer library with its defaults) and a second sample
/// API that requires server nonces — and the <c>oauth4webapi</c> npm package as the client (EndToEnd/oauth4webapi).
/// It gets a DPoP-bound token with client_credentials and calls the APIs with proofs it makes itself; the library must
/// accept those, and refuse the replayed, downgraded, wrong-key and wrong-method requests with challenges that
/// oauth4webapi's own parser understands.
/// </summary>
[Collection(MeasuredAlone.Name)]
public sealed partial class DpopInteropTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly ProcessWorkspace _ws = new("tessera-rs-dpop-");
    private string _tesseraUrl = "";
    private string _apiUrl = "";
    private string _nonceApiUrl = "";
    private string _secret = "";

    public async Task InitializeAsync()
    {
        // Fail (never skip) at once when node or npm is missing, with what to do about it; install the client meanwhile.
        NodeClient.EnsureAvailable();
        var install = NodeClient.InstallAsync();

        _tesseraUrl = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        _apiUrl = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        _nonceApiUrl = $"http://127.0.0.1:{LocalIssuer.FreePort()}";
        _ws.TesseraArgs = ["--urls=" + _tesseraUrl, "--Tessera:Issuer=" + _tesseraUrl, "--Tessera:DataDirectory=" + Path.Combine(_ws.Work, "tessera"),
            "--Tessera:MasterKey=" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), "--Logging:LogLevel:Default=Warning"];

        // A confidential client that must use DPoP at the token endpoint (RFC 9449 §5.2 dpop_bound_access_tokens).
        _secret = ProcessWorkspace.SecretIn(await _ws.CliAsync("clients", "add", "interop-client", "--name", "oauth4webapi", "--grant", "client_credentials",
            "--scope", "api.read", "--resource", _apiUrl, "--require-dpop"));

        var tessera = _ws.Start("tessera", BuildOutput.TesseraDll, ["serve", .. _ws.TesseraArgs]);
        // Both APIs take tokens for the same audience, so one token serves both.
        string[] api = ["--Authority=" + _tesseraUrl, "--Audience=" + _apiUrl, "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Tessera.ResourceServer=Debug"];
        var plain = _ws.Start("sample API", BuildOutput.SampleApiDll, ["--urls=" + _apiUrl, .. api]);
        var nonces = _ws.Start("sample API (nonces)", BuildOutput.SampleApiDll, ["--urls=" + _nonceApiUrl, "--Dpop:RequireNonce=true", .. api]);
        var timeout = TimeSpan.FromSeconds(60);
        await Task.WhenAll(tessera.WaitUntilReadyAsync(_tesseraUrl + "/healthz", timeout), plain.WaitUntilReadyAsync(_apiUrl + "/healthz", timeout),
            nonces.WaitUntilReadyAsync(_nonceApiUrl + "/healthz", timeout), install);
    }

    [Fact]
    public async Task An_oauth4webapi_client_gets_a_DPoP_bound_token_from_Tessera_and_the_library_accepts_its_proofs_and_refuses_misuse()
    {
        var stdout = await NodeClient.RunScriptAsync("client.mjs", new Dictionary<string, string>
        {
            ["TESSERA_ISSUER"] = _tesseraUrl, ["CLIENT_ID"] = "interop-client", ["CLIENT_SECRET"] = _secret, ["API_URL"] = _apiUrl, ["NONCE_API_URL"] = _nonceApiUrl,
        }, TimeSpan.FromMinutes(2));
        output.WriteLine(stdout);
        using var document = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        var r = document.RootElement;
        var context = stdout + "\n" + _ws.Logs;

        Assert.Contains("ES256", r.GetProperty("dpopAlgsAdvertised").EnumerateArray().Select(a => a.GetString()));
        Assert.True(string.Equals(r.GetProperty("tokenType").GetString(), "DPoP", StringComparison.OrdinalIgnoreCase), context);

        // Accepted: the first call validates the token, the second finds it in the cache; both with oauth4webapi's proofs.
        foreach (var name in (string[])["first", "second", "beforeReplay"])
        {
            var call = r.GetProperty(name);
            Assert.True(call.GetProperty("status").GetInt32() == 200, $"{name}: {call}\n{context}");
            Assert.Equal("interop-client", call.GetProperty("body").GetProperty("sub").GetString());
        }

        // §11.1: the same request and proof again.
        var replay = r.GetProperty("replay");
        Assert.True(replay.GetProperty("status").GetInt32() == 401, context);
        Assert.Contains("error=\"invalid_dpop_proof\"", replay.GetProperty("wwwAuthenticate").GetString(), StringComparison.Ordinal);

        // §7.2: the bound token as a bearer token; the Bearer challenge carries the error, DPoP is offered beside it.
        AssertRefused(r.GetProperty("asBearer"), "bearer", "invalid_token", context);
        // §7.1 Figure 16: a proof by another key.
        AssertRefused(r.GetProperty("otherKey"), "dpop", "invalid_token", context);
        // §4.3 (8): a proof made for POST.
        AssertRefused(r.GetProperty("wrongMethod"), "dpop", "invalid_dpop_proof", context);

        // §9: use_dpop_nonce with a DPoP-Nonce, which oauth4webapi keeps and sends in its next proof.
        var nonceFirst = r.GetProperty("nonceFirst");
        Assert.True(nonceFirst.GetProperty("nonceError").GetBoolean(), $"{nonceFirst}\n{context}");
        AssertRefused(nonceFirst, "dpop", "use_dpop_nonce", context);
        var nonceRetry = r.GetProperty("nonceRetry");
        Assert.True(nonceRetry.GetProperty("status").GetInt32() == 200, $"{nonceRetry}\n{context}");
    }

    /// <summary>A 401 whose challenges, as oauth4webapi parsed them, offer both schemes, with the error in the one the request used.</summary>
    private static void AssertRefused(JsonElement call, string carrier, string error, string context)
    {
        Assert.True(call.GetProperty("status").GetInt32() == 401, $"{call}\n{context}");
        var challenges = call.GetProperty("challenges").EnumerateArray().ToList();
        Assert.True(challenges.Count == 2, $"{call}");
        var carrying = Assert.Single(challenges, c => c.GetProperty("scheme").GetString() == carrier);
        Assert.Equal(error, carrying.GetProperty("error").GetString());
        var dpop = Assert.Single(challenges, c => c.GetProperty("scheme").GetString() == "dpop");
        Assert.StartsWith("ES256 ", dpop.GetProperty("algs").GetString(), StringComparison.Ordinal);
        var other = Assert.Single(challenges, c => c.GetProperty("scheme").GetString() != carrier);
        Assert.Equal(JsonValueKind.Null, other.GetProperty("error").ValueKind);
    }






    public async Task DisposeAsync()
    {
        await _ws.DisposeAsync();
    }
}
