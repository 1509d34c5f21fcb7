using System.Net;
using System.Text.Json;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Server;

/// <summary>RFC 8414 / OpenID Connect Discovery 1.0 and the RFC 7517 key set.</summary>
public sealed class DiscoveryTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private readonly TesseraTestServer _server = shared.Server;

    private async Task<(HttpStatusCode Status, string Text, JsonElement Json)> GetJsonAsync(string path)
    {
        using var http = _server.CreateClient();
        var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (response.StatusCode, text, JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task Discovery_ServesTheSameDocumentAtBothWellKnownPaths_WithTheServersIssuer()
    {
        var oidc = await GetJsonAsync(".well-known/openid-configuration");
        var oauth = await GetJsonAsync(".well-known/oauth-authorization-server");

        Assert.Equal(HttpStatusCode.OK, oidc.Status);
        Assert.Equal(HttpStatusCode.OK, oauth.Status);
        Assert.Equal(oidc.Text, oauth.Text);
        Assert.Equal(_server.Issuer, oidc.Json.GetProperty("issuer").GetString());
        Assert.Equal(_server.Issuer, oauth.Json.GetProperty("issuer").GetString());
    }

    [Fact]
    public async Task Discovery_AdvertisesOnlyTheCodeFlowWithS256_AndEndpointsUnderTheIssuer()
    {
        var doc = (await GetJsonAsync(".well-known/openid-configuration")).Json;

        Assert.Equal(_server.Issuer + "/connect/authorize", doc.GetProperty("authorization_endpoint").GetString());
        Assert.Equal(_server.Issuer + "/connect/token", doc.GetProperty("token_endpoint").GetString());
        Assert.Equal(_server.Issuer + "/.well-known/jwks.json", doc.GetProperty("jwks_uri").GetString());
        Assert.Equal(["code"], Strings(doc, "response_types_supported"));
        Assert.Equal(["S256"], Strings(doc, "code_challenge_methods_supported"));
        var grants = Strings(doc, "grant_types_supported");
        Assert.Contains("authorization_code", grants);
        Assert.Contains("refresh_token", grants);
        Assert.Contains("client_credentials", grants);
        Assert.DoesNotContain("password", grants);
        Assert.DoesNotContain("implicit", grants);
        var authMethods = Strings(doc, "token_endpoint_auth_methods_supported");
        Assert.Contains("client_secret_basic", authMethods);
        Assert.Contains("client_secret_post", authMethods);
        Assert.Contains("none", authMethods);
        Assert.True(doc.GetProperty("authorization_response_iss_parameter_supported").GetBoolean());
    }

    [Fact]
    public async Task Jwks_ServesOnlyPublicEcKeys_EachWithOneAlgAndKid()
    {
        var doc = (await GetJsonAsync(".well-known/openid-configuration")).Json;
        var jwksUri = new Uri(doc.GetProperty("jwks_uri").GetString()!);
        Assert.Equal(new Uri(_server.Issuer).Authority, jwksUri.Authority);

        var (status, _, jwks) = await GetJsonAsync(jwksUri.AbsolutePath.TrimStart('/'));
        Assert.Equal(HttpStatusCode.OK, status);
        var keys = jwks.GetProperty("keys").EnumerateArray().ToList();
        Assert.NotEmpty(keys);
        var kids = new List<string>();
        foreach (var key in keys)
        {
            // Private or symmetric material of any kind: d (EC/RSA/OKP private), p/q/dp/dq/qi (RSA), k (oct).
            foreach (var secret in new[] { "d", "p", "q", "dp", "dq", "qi", "k" })
                Assert.False(key.TryGetProperty(secret, out _), $"JWKS key exposes '{secret}'");
            Assert.Equal("EC", key.GetProperty("kty").GetString());
            Assert.Equal("P-256", key.GetProperty("crv").GetString());
            Assert.Equal("ES256", key.GetProperty("alg").GetString());
            Assert.Equal(JsonValueKind.String, key.GetProperty("alg").ValueKind);
            var kid = key.GetProperty("kid").GetString();
            Assert.False(string.IsNullOrEmpty(kid));
            kids.Add(kid!);
            Assert.False(string.IsNullOrEmpty(key.GetProperty("x").GetString()));
            Assert.False(string.IsNullOrEmpty(key.GetProperty("y").GetString()));
        }
        Assert.Equal(kids.Count, kids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task Jwks_IsTheSameKeyAcrossRequests_SoTheSigningKeyIsKept()
    {
        var first = (await GetJsonAsync(".well-known/jwks.json")).Text;
        var second = (await GetJsonAsync(".well-known/jwks.json")).Text;
        Assert.Equal(first, second);
    }

    private static List<string> Strings(JsonElement doc, string name) =>
        doc.GetProperty(name).EnumerateArray().Select(e => e.GetString()!).ToList();
}
