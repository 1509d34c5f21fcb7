using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using Tessera.ResourceServer.Tests.Infrastructure;

namespace Tessera.ResourceServer.Tests.Unit;

/// <summary>
/// The access-token rules over real HTTP: a good token passes, and each hostile token (RFC 8725's catalogue of JWT
/// attacks, plus RFC 9068's profile) gets 401 with an RFC 6750 <c>invalid_token</c> challenge.
/// </summary>
public sealed class ValidationRuleTests(IssuerAndApi fixture) : IClassFixture<IssuerAndApi>
{
    private LocalIssuer Issuer => fixture.Issuer;
    private ProtectedApi Api => fixture.Api;

    private Dictionary<string, object> Claims(string scope = "api.read") => Issuer.AccessTokenClaims(ProtectedApi.Audience, scope);

    private async Task AssertInvalidTokenAsync(string token, string? description = null)
    {
        using var response = await Api.GetAsync("api/hello", token);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        // RFC 9449 §7.2: the scheme the request used (Bearer) carries the error; the DPoP challenge only offers itself.
        var challenge = Challenges.Bearer(response);
        Challenges.AssertBareDpop(response);
        Assert.Contains("error=\"invalid_token\"", challenge.Parameter, StringComparison.Ordinal);
        if (description is not null) Assert.True(challenge.Parameter!.Contains(description, StringComparison.Ordinal), challenge.Parameter);
        Assert.DoesNotContain(token, challenge.Parameter ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_good_ES256_token_is_accepted_and_its_claims_reach_the_endpoint()
    {
        var claims = Claims();
        using var response = await Api.GetAsync("api/hello", Issuer.SignEs256(LocalIssuer.Header(), claims));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("user-1", body.RootElement.GetProperty("sub").GetString());
        Assert.Equal(claims["sid"], body.RootElement.GetProperty("sid").GetString());
    }

    [Fact]
    public async Task A_good_RS256_token_is_accepted()
    {
        using var response = await Api.GetAsync("api/hello", Issuer.SignRs256(LocalIssuer.Header("RS256", "r1"), Claims()));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task The_media_type_form_of_the_typ_is_accepted()
    {
        using var response = await Api.GetAsync("api/hello", Issuer.SignEs256(LocalIssuer.Header(typ: "application/at+jwt"), Claims()));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public Task Alg_none_is_refused() => AssertInvalidTokenAsync(LocalIssuer.Unsigned(LocalIssuer.Header("none"), Claims()));

    [Fact]
    public Task Alg_none_with_a_signature_of_the_real_key_appended_is_refused()
    {
        var good = Issuer.SignEs256(LocalIssuer.Header(), Claims());
        var header = Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(LocalIssuer.Header("none")));
        return AssertInvalidTokenAsync(header + good[good.IndexOf('.', StringComparison.Ordinal)..]);
    }

    public static TheoryData<string> PublicKeyEncodings => ["jwk-json", "spki-der", "spki-pem", "raw-xy"];

    /// <summary>The classic key-confusion attack: HMAC "signed" with the public key as the shared secret.</summary>
    [Theory]
    [MemberData(nameof(PublicKeyEncodings))]
    public Task HS256_signed_with_the_public_key_is_refused(string encoding)
    {
        var p = Issuer.EcKey.ExportParameters(false);
        var secret = encoding switch
        {
            "jwk-json" => JsonSerializer.SerializeToUtf8Bytes(LocalIssuer.Jwk(Issuer.EcKey, "k1")),
            "spki-der" => Issuer.EcKey.ExportSubjectPublicKeyInfo(),
            "spki-pem" => Encoding.ASCII.GetBytes(Issuer.EcKey.ExportSubjectPublicKeyInfoPem()),
            _ => [.. p.Q.X!, .. p.Q.Y!],
        };
        return AssertInvalidTokenAsync(LocalIssuer.SignHs256(LocalIssuer.Header("HS256"), Claims(), secret));
    }

    [Fact]
    public Task HS256_signed_with_the_RSA_public_key_is_refused() =>
        AssertInvalidTokenAsync(LocalIssuer.SignHs256(LocalIssuer.Header("HS256", "r1"), Claims(), Issuer.RsaKey.ExportSubjectPublicKeyInfo()));

    [Fact]
    public Task A_token_carrying_its_own_key_in_a_jwk_header_is_refused()
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var header = LocalIssuer.Header(kid: "attacker");
        header["jwk"] = LocalIssuer.Jwk(attacker, "attacker");
        return AssertInvalidTokenAsync(Issuer.SignEs256(header, Claims(), attacker));
    }

    [Fact]
    public Task A_token_pointing_at_its_own_key_set_with_jku_is_refused()
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var header = LocalIssuer.Header(kid: "attacker");
        header["jku"] = "https://attacker.example/jwks.json";
        return AssertInvalidTokenAsync(Issuer.SignEs256(header, Claims(), attacker));
    }

    /// <summary>The header rule holds on its own: even a token the issuer's key really signed is refused when it names a key source.</summary>
    [Theory]
    [InlineData("jwk")]
    [InlineData("jku")]
    [InlineData("x5u")]
    [InlineData("x5c")]
    [InlineData("crit")]
    public Task A_header_naming_a_key_source_is_refused_even_with_a_good_signature(string name)
    {
        var header = LocalIssuer.Header();
        header[name] = name switch
        {
            "jwk" => LocalIssuer.Jwk(Issuer.EcKey, "k1"),
            "x5c" => new[] { Convert.ToBase64String(Issuer.EcKey.ExportSubjectPublicKeyInfo()) },
            "crit" => new[] { "exp" },
            _ => Issuer.Issuer + "/.well-known/jwks.json",
        };
        return AssertInvalidTokenAsync(Issuer.SignEs256(header, Claims()));
    }

    [Theory]
    [InlineData("JWT")]
    [InlineData("jwt")]
    [InlineData("AT+JWT")]
    [InlineData(null)]
    public Task A_token_without_typ_at_jwt_is_refused(string? typ) => AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(typ: typ), Claims()));

    [Theory]
    [InlineData("https://other.example")]
    [InlineData("trailing-slash")]
    [InlineData("case")]
    public Task A_token_from_another_issuer_is_refused(string which)
    {
        var claims = Claims();
        claims["iss"] = which switch
        {
            "trailing-slash" => Issuer.Issuer + "/",
            "case" => Issuer.Issuer.ToUpperInvariant(),
            _ => which,
        };
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims), "The issuer is invalid");
    }

    [Fact]
    public async Task Nothing_from_the_token_is_echoed_into_the_challenge()
    {
        var claims = Claims();
        claims["iss"] = "x\", evil=\"1";
        claims["aud"] = "y\", evil=\"2";
        using var response = await Api.GetAsync("api/hello", Issuer.SignEs256(LocalIssuer.Header(), claims));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = response.Headers.WwwAuthenticate.ToString();
        Assert.DoesNotContain("evil", challenge, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1", challenge, StringComparison.Ordinal);
    }

    [Fact]
    public Task A_token_for_another_audience_is_refused()
    {
        var claims = Claims();
        claims["aud"] = "https://other-api.example.test";
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims), "The audience is invalid");
    }

    [Fact]
    public Task A_token_without_an_audience_is_refused()
    {
        var claims = Claims();
        claims.Remove("aud");
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims));
    }

    [Fact]
    public Task An_expired_token_is_refused()
    {
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience, now: DateTimeOffset.UtcNow.AddMinutes(-10), lifetime: TimeSpan.FromMinutes(5));
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims), "expired");
    }

    [Fact]
    public async Task A_token_expired_by_less_than_the_clock_skew_is_still_accepted()
    {
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience, now: DateTimeOffset.UtcNow.AddSeconds(-70), lifetime: TimeSpan.FromSeconds(60));
        using var response = await Api.GetAsync("api/hello", Issuer.SignEs256(LocalIssuer.Header(), claims));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public Task A_token_expired_by_more_than_the_clock_skew_is_refused()
    {
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience, now: DateTimeOffset.UtcNow.AddSeconds(-100), lifetime: TimeSpan.FromSeconds(60));
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims), "expired");
    }

    [Fact]
    public Task A_token_without_exp_is_refused()
    {
        var claims = Claims();
        claims.Remove("exp");
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims));
    }

    [Fact]
    public Task A_token_not_yet_valid_is_refused()
    {
        var claims = Claims();
        claims["nbf"] = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims), "The token is not valid yet.");
    }

    [Fact]
    public Task A_token_issued_in_the_future_is_refused()
    {
        var claims = Claims();
        claims.Remove("nbf");
        claims["iat"] = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims));
    }

    [Fact]
    public Task A_token_signed_by_another_EC_key_with_the_same_kid_is_refused()
    {
        using var impostor = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(kid: "k1"), Claims(), impostor));
    }

    [Fact]
    public Task A_token_signed_by_another_EC_key_without_kid_is_refused()
    {
        using var impostor = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(kid: null), Claims(), impostor));
    }

    [Fact]
    public Task A_token_whose_payload_was_changed_after_signing_is_refused()
    {
        var good = Issuer.SignEs256(LocalIssuer.Header(), Claims()).Split('.');
        var claims = Claims("api.read api.write api.admin");
        return AssertInvalidTokenAsync(good[0] + "." + Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(claims)) + "." + good[2]);
    }

    [Theory]
    [InlineData("sub")]
    [InlineData("client_id")]
    [InlineData("iat")]
    [InlineData("jti")]
    public Task A_token_missing_a_claim_RFC_9068_requires_is_refused(string claim)
    {
        var claims = Claims();
        claims.Remove(claim);
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims));
    }

    [Fact]
    public Task A_DPoP_bound_token_presented_as_a_bearer_token_is_refused()
    {
        var claims = Claims();
        claims["cnf"] = new Dictionary<string, string> { ["jkt"] = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" };
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims), "bound to a key");
    }

    [Theory]
    [InlineData("not-a-jwt")]
    [InlineData("a.b.c")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9..")]
    [InlineData("a.b.c.d.e")]
    public Task Garbage_is_refused(string token) => AssertInvalidTokenAsync(token);

    [Fact]
    public Task A_huge_token_is_refused_before_it_is_parsed()
    {
        var claims = Claims();
        claims["padding"] = new string('x', 14_000);
        return AssertInvalidTokenAsync(Issuer.SignEs256(LocalIssuer.Header(), claims));
    }

    // ---- RFC 6750 answers ----------------------------------------------------------------------------------------

    [Fact]
    public async Task No_token_gets_401_with_bare_Bearer_and_DPoP_challenges()
    {
        using var response = await Api.GetAsync("api/hello", null);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        // RFC 6750 §3.1 and RFC 9449 §7.2 (Figure 17): a request without authentication gets no error code.
        Assert.Null(Challenges.Bearer(response).Parameter);
        Challenges.AssertBareDpop(response);
        Assert.Equal(2, response.Headers.WwwAuthenticate.Count);
    }

    [Fact]
    public async Task A_token_in_the_query_string_is_ignored()
    {
        var token = Issuer.SignEs256(LocalIssuer.Header(), Claims());
        using var response = await Api.Http.GetAsync("api/hello?access_token=" + Uri.EscapeDataString(token));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.DoesNotContain("error=", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_in_a_form_body_is_ignored()
    {
        var token = Issuer.SignEs256(LocalIssuer.Header(), Claims());
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/hello")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["access_token"] = token }),
        };
        using var response = await Api.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task The_scheme_name_is_case_insensitive_but_other_schemes_are_not_bearer()
    {
        var token = Issuer.SignEs256(LocalIssuer.Header(), Claims());
        using var lower = new HttpRequestMessage(HttpMethod.Get, "api/hello");
        lower.Headers.TryAddWithoutValidation("Authorization", "bearer " + token);
        using (var response = await Api.Http.SendAsync(lower)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        using var dpop = new HttpRequestMessage(HttpMethod.Get, "api/hello");
        dpop.Headers.TryAddWithoutValidation("Authorization", "DPoP " + token);
        using (var response = await Api.Http.SendAsync(dpop)) Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task A_token_without_the_required_scope_gets_403_insufficient_scope_naming_the_scope()
    {
        using var response = await Api.GetAsync("api/write", Issuer.SignEs256(LocalIssuer.Header(), Claims("api.read")));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate);
        Assert.Equal("Bearer", challenge.Scheme);
        Assert.Equal("error=\"insufficient_scope\", scope=\"api.write\"", challenge.Parameter);
    }

    [Fact]
    public async Task Every_missing_scope_is_named_and_all_are_required()
    {
        using (var response = await Api.GetAsync("api/admin", Issuer.SignEs256(LocalIssuer.Header(), Claims("api.read"))))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("error=\"insufficient_scope\", scope=\"api.admin api.read\"", Assert.Single(response.Headers.WwwAuthenticate).Parameter);
        }
        using (var response = await Api.GetAsync("api/admin", Issuer.SignEs256(LocalIssuer.Header(), Claims("api.admin api.read"))))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_scope_is_matched_whole_not_by_prefix()
    {
        using var response = await Api.GetAsync("api/write", Issuer.SignEs256(LocalIssuer.Header(), Claims("api.writer api.write.x")));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        using var ok = await Api.GetAsync("api/write", Issuer.SignEs256(LocalIssuer.Header(), Claims("openid api.write")));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task An_invalid_token_on_a_scoped_endpoint_gets_401_not_403()
    {
        var claims = Claims("api.write");
        claims["aud"] = "https://elsewhere.example";
        using var response = await Api.GetAsync("api/write", Issuer.SignEs256(LocalIssuer.Header(), claims));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("error=\"invalid_token\"", Challenges.Bearer(response).Parameter, StringComparison.Ordinal);
    }
}
