using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Keys;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Keys;

public sealed class KeyRotationTests : IAsyncLifetime
{
    private TesseraTestServer _server = null!;
    private OAuthDriver _driver = null!;
    private string _secret = null!;

    public async Task InitializeAsync()
    {
        _server = await TesseraTestServer.StartAsync();
        _driver = new OAuthDriver(_server);
        _secret = (await _server.AddClientAsync(TestClients.Confidential("svc"), confidential: true)).Secret!;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<string> TokenAsync()
    {
        var answer = await _driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "svc", _secret);
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        return answer.AccessToken!;
    }

    private async Task<JsonWebKeySet> JwksAsync()
    {
        using var http = _server.CreateClient();
        return new JsonWebKeySet(await http.GetStringAsync(".well-known/jwks.json"));
    }

    private async Task<bool> ValidatesAsync(string token)
    {
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = _server.Issuer, ValidAudience = TestClients.Api, IssuerSigningKeys = (await JwksAsync()).GetSigningKeys(),
            ValidTypes = ["at+jwt"], ValidAlgorithms = ["ES256"],
            LifetimeValidator = (_, exp, _, _) => exp > _server.Time.GetUtcNow().UtcDateTime,
        });
        return result.IsValid;
    }

    private static string Kid(string token) => new JsonWebToken(token).Kid;

    [Fact]
    public async Task SigningKeys_AreAnnouncedThenActivatedThenRetired_WhileTokensOfEachKeyValidateUntilTheyExpire()
    {
        var ring = _server.Services.GetRequiredService<KeyRing>();
        var first = await TokenAsync();
        var firstKid = Kid(first);
        Assert.Single((await JwksAsync()).Keys);

        // 77 days in: within the 14-day announcement period of the 90-day lifetime, the next key is published but not used.
        _server.Time.Advance(TimeSpan.FromDays(77));
        await ring.EnsureKeyAsync(default);
        var announced = (await JwksAsync()).Keys.Select(k => k.Kid).ToList();
        Assert.Equal(2, announced.Count);
        var nextKid = announced.Single(k => k != firstKid);
        Assert.Equal(firstKid, Kid(await TokenAsync()));

        // One second before the switch: still the old key. Its token must outlive the switch.
        _server.Time.Advance(TimeSpan.FromDays(13) - TimeSpan.FromSeconds(1));
        var lastOfOld = await TokenAsync();
        Assert.Equal(firstKid, Kid(lastOfOld));

        // Activation: new tokens are signed by the announced key; the old key's unexpired token still validates.
        _server.Time.Advance(TimeSpan.FromSeconds(2));
        var firstOfNew = await TokenAsync();
        Assert.Equal(nextKid, Kid(firstOfNew));
        Assert.True(await ValidatesAsync(lastOfOld));
        Assert.True(await ValidatesAsync(firstOfNew));

        // After the retention period (1 day) the old key is gone from the JWKS; by then its tokens had expired.
        _server.Time.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
        var remaining = (await JwksAsync()).Keys.Select(k => k.Kid).ToList();
        Assert.Equal([nextKid], remaining);
        Assert.False(await ValidatesAsync(lastOfOld));
        Assert.Equal(nextKid, Kid(await TokenAsync()));
    }

    [Fact]
    public async Task RotateNow_SignsWithTheNewKeyAtOnce_AndKeepsTheOldOnePublished()
    {
        var ring = _server.Services.GetRequiredService<KeyRing>();
        var before = await TokenAsync();
        var rotated = await ring.RotateNowAsync(default);
        _server.Time.Advance(TimeSpan.FromMilliseconds(1));
        var after = await TokenAsync();
        Assert.Equal(rotated.Kid, Kid(after));
        Assert.NotEqual(Kid(before), Kid(after));
        Assert.True(await ValidatesAsync(before));
        Assert.True(await ValidatesAsync(after));
    }

    [Fact]
    public async Task Jwks_PublishesOnlyPublicKeyMaterial()
    {
        using var http = _server.CreateClient();
        var json = await http.GetStringAsync(".well-known/jwks.json");
        Assert.DoesNotContain("\"d\"", json);
        foreach (var key in (await JwksAsync()).Keys)
        {
            Assert.Equal("ES256", key.Alg);
            Assert.False(string.IsNullOrEmpty(key.Kid));
            Assert.False(key.HasPrivateKey);
        }
    }
}
