using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using Tessera.ResourceServer.Tests.Infrastructure;

namespace Tessera.ResourceServer.Tests.Unit;

/// <summary>
/// RFC 9449 at the API, over real HTTP: a DPoP-bound token (<c>cnf.jkt</c>) with <c>Authorization: DPoP</c> and a
/// good proof gets in; every bad proof of §4.3, a wrong <c>ath</c> or key (§7.1), and the scheme mix-ups of §7.2 get
/// 401 with the DPoP challenge carrying the error (<c>invalid_dpop_proof</c>, or <c>invalid_token</c> for the token's
/// binding), the algorithms it accepts, and a bare Bearer challenge beside it.
/// </summary>
public sealed class DpopProofTests(IssuerAndApi fixture) : IClassFixture<IssuerAndApi>
{
    private const string Path = "api/hello";

    private LocalIssuer Issuer => fixture.Issuer;
    private ProtectedApi Api => fixture.Api;
    private string Htu => Api.UrlOf(Path);

    /// <summary>An access token bound to <paramref name="key"/>, as Tessera's token endpoint issues one for a DPoP request.</summary>
    private string BoundToken(DpopKey key, string scope = "api.read")
    {
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience, scope);
        claims["cnf"] = new Dictionary<string, string> { ["jkt"] = key.Thumbprint };
        return Issuer.SignEs256(LocalIssuer.Header(), claims);
    }

    private Task<HttpResponseMessage> DpopAsync(string token, params string[] proofs) => Api.SendAsync(Path, "DPoP", token, proofs);

    private static async Task AssertRefusedAsync(HttpResponseMessage response, string error, string? description = null)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{(int)response.StatusCode}: {body}");
            var dpop = Challenges.Dpop(response).Parameter!;
            Assert.Contains($"error=\"{error}\"", dpop, StringComparison.Ordinal);
            Assert.Contains("algs=\"ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512\"", dpop, StringComparison.Ordinal);
            if (description is not null) Assert.True(dpop.Contains(description, StringComparison.Ordinal), dpop);
            // §7.2: the mechanism used was DPoP, so only its challenge carries the error; Bearer is offered bare.
            Assert.Null(Challenges.Bearer(response).Parameter);
        }
    }

    private static Task AssertBadProofAsync(HttpResponseMessage response, string? description = null) => AssertRefusedAsync(response, "invalid_dpop_proof", description);

    // ---- accepted ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_bound_token_with_a_good_proof_is_accepted_and_its_claims_reach_the_endpoint()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        using var response = await DpopAsync(token, key.Proof("GET", Htu, token));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("user-1", body.RootElement.GetProperty("sub").GetString());
        Assert.False(response.Headers.Contains("DPoP-Nonce"));
    }

    [Fact]
    public async Task An_RSA_PS256_proof_key_is_accepted()
    {
        using var key = DpopKey.Rsa();
        var token = BoundToken(key);
        using var response = await DpopAsync(token, key.Proof("GET", Htu, token));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task The_scheme_name_is_case_insensitive()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        using var response = await Api.SendAsync(Path, "dpop", token, [key.Proof("GET", Htu, token)]);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    /// <summary>§4.3: "servers SHOULD employ syntax-based normalization (Section 6.2.2 of [RFC3986]) and scheme-based normalization (Section 6.2.3 of [RFC3986]) before comparing the htu claim."</summary>
    [Theory]
    [InlineData("HTTP://127.0.0.1:{port}/api/hello")]
    [InlineData("http://127.0.0.1:{port}/api/%68ello")]
    [InlineData("http://127.0.0.1:{port}/api/./hello")]
    [InlineData("http://127.0.0.1:{port}/x/../api/hello")]
    [InlineData("http://127.0.0.1:{port}/api/hello?page=2")]
    [InlineData("http://127.0.0.1:{port}/api/hello#top")]
    public async Task An_htu_equal_after_RFC_3986_normalization_is_accepted(string htu)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        using var response = await DpopAsync(token, key.Proof("GET", htu.Replace("{port}", new Uri(Api.Url).Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal), token));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task The_request_query_is_ignored_when_comparing_htu()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        using var response = await Api.SendAsync(Path + "?page=2&sort=name", "DPoP", token, [key.Proof("GET", Htu, token)]);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    // ---- §4.3 (1), (2): one DPoP header, one well-formed JWT --------------------------------------------------------

    [Fact]
    public async Task A_bound_token_without_a_proof_is_refused()
    {
        using var key = DpopKey.Es256();
        await AssertBadProofAsync(await DpopAsync(BoundToken(key)), "A DPoP proof is required");
    }

    [Fact]
    public async Task Two_DPoP_header_lines_are_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var answer = await RawHttp.SendAsync(Api.Url, "GET", "/" + Path,
            [("Authorization", "DPoP " + token), ("DPoP", key.Proof("GET", Htu, token)), ("DPoP", key.Proof("GET", Htu, token))]);
        Assert.Equal(401, answer.Status);
        var dpop = Assert.Single(answer.All("WWW-Authenticate"), c => c.StartsWith("DPoP", StringComparison.Ordinal));
        Assert.Contains("error=\"invalid_dpop_proof\"", dpop, StringComparison.Ordinal);
        Assert.Contains("exactly one DPoP header", dpop, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_proofs_folded_into_one_DPoP_header_are_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token), key.Proof("GET", Htu, token)));
    }

    [Theory]
    [InlineData("not-a-jwt")]
    [InlineData("a.b.c")]
    [InlineData("..")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9.e30.")]
    [InlineData("a.b.c.d.e")]
    [InlineData("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjoiIn0.e30.AAAA")]
    public async Task Garbage_in_the_DPoP_header_is_refused_not_a_500(string proof)
    {
        using var key = DpopKey.Es256();
        await AssertBadProofAsync(await DpopAsync(BoundToken(key), proof));
    }

    [Fact]
    public async Task A_huge_proof_is_refused_before_it_is_parsed()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, claims: c => c["padding"] = new string('x', 9000))));
    }

    // ---- §4.3 (4)-(7): typ, alg, signature, public key ----------------------------------------------------------------

    [Theory]
    [InlineData("JWT")]
    [InlineData("at+jwt")]
    [InlineData("DPOP+JWT")]
    [InlineData(null)]
    public async Task A_proof_without_typ_dpop_jwt_is_refused(string? typ)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, header: h => { if (typ is null) h.Remove("typ"); else h["typ"] = typ; })), "typ");
    }

    [Fact]
    public async Task An_unsigned_alg_none_proof_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var header = key.Header();
        header["alg"] = "none";
        await AssertBadProofAsync(await DpopAsync(token, LocalIssuer.Unsigned(header, DpopKey.Claims("GET", Htu, token))), "algorithm");
    }

    [Fact]
    public async Task An_alg_none_header_on_a_real_signature_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var good = key.Proof("GET", Htu, token);
        var header = key.Header();
        header["alg"] = "none";
        await AssertBadProofAsync(await DpopAsync(token, Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(header)) + good[good.IndexOf('.', StringComparison.Ordinal)..]));
    }

    /// <summary>HMAC "signed" with the embedded public key as the secret: the key-confusion attack, on a proof.</summary>
    [Theory]
    [InlineData("HS256")]
    [InlineData("HS512")]
    public async Task An_HMAC_proof_keyed_with_the_public_jwk_is_refused(string alg)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var header = key.Header();
        header["alg"] = alg;
        var secret = JsonSerializer.SerializeToUtf8Bytes(key.PublicJwk);
        await AssertBadProofAsync(await DpopAsync(token, LocalIssuer.Assemble(header, DpopKey.Claims("GET", Htu, token),
            input => alg == "HS256" ? HMACSHA256.HashData(secret, input) : HMACSHA512.HashData(secret, input))), "algorithm");
    }

    [Fact]
    public async Task A_proof_carrying_the_private_key_in_its_jwk_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, header: h => h["jwk"] = key.PrivateJwk)), "private key");
    }

    [Fact]
    public async Task A_proof_signed_by_another_key_than_its_jwk_is_refused()
    {
        using var key = DpopKey.Es256();
        using var other = DpopKey.Es256();
        var token = BoundToken(key);
        // The header names the bound key (so the thumbprint would match); the signature is another key's.
        await AssertBadProofAsync(await DpopAsync(token, other.Sign(key.Header(), DpopKey.Claims("GET", Htu, token))), "signature");
    }

    [Fact]
    public async Task A_proof_whose_claims_were_changed_after_signing_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var parts = key.Proof("POST", Htu, token).Split('.');
        var changed = Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(DpopKey.Claims("GET", Htu, token)));
        await AssertBadProofAsync(await DpopAsync(token, parts[0] + "." + changed + "." + parts[2]), "signature");
    }

    /// <summary>
    /// The bound key's public members with the attacker's certificate beside them (x5c), signed by the attacker: the
    /// thumbprint would match cnf.jkt, so the signature must be checked with exactly the members the thumbprint covers.
    /// </summary>
    [Fact]
    public async Task A_proof_whose_jwk_carries_another_keys_certificate_is_refused()
    {
        using var key = DpopKey.Rsa();
        var token = BoundToken(key);
        using var attacker = RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=attacker", attacker, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var header = key.Header();
        var jwk = key.PublicJwk;
        header["jwk"] = new Dictionary<string, object> { ["kty"] = "RSA", ["n"] = jwk["n"], ["e"] = jwk["e"], ["x5c"] = new[] { Convert.ToBase64String(certificate.RawData) } };
        var proof = LocalIssuer.Assemble(header, DpopKey.Claims("GET", Htu, token), input => attacker.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pss));
        await AssertBadProofAsync(await DpopAsync(token, proof), "signature");
    }

    public static TheoryData<string> BadJwks => ["none", "string", "oct", "wrong-curve", "off-curve", "small-rsa", "no-x"];

    [Theory]
    [MemberData(nameof(BadJwks))]
    public async Task A_proof_whose_jwk_is_not_a_usable_public_key_for_its_alg_is_refused(string which)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var jwk = key.PublicJwk;
        object? value = which switch
        {
            "none" => null,
            "string" => "not an object",
            "oct" => new Dictionary<string, string> { ["kty"] = "oct", ["k"] = "c2VjcmV0" },
            "wrong-curve" => new Dictionary<string, string>(jwk) { ["crv"] = "P-384" },
            "off-curve" => new Dictionary<string, string>(jwk) { ["y"] = Base64UrlEncoder.Encode(new byte[32]) },
            "small-rsa" => SmallRsaJwk(),
            _ => new Dictionary<string, string>(jwk.Where(p => p.Key != "x").ToDictionary()),
        };
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, header: h =>
        {
            if (value is null) h.Remove("jwk");
            else h["jwk"] = value;
            if (which == "small-rsa") h["alg"] = "RS256";
        })));
    }

    private static Dictionary<string, string> SmallRsaJwk()
    {
        using var rsa = RSA.Create(1024);
        var p = rsa.ExportParameters(false);
        return new() { ["kty"] = "RSA", ["n"] = Base64UrlEncoder.Encode(p.Modulus!), ["e"] = Base64UrlEncoder.Encode(p.Exponent!) };
    }

    [Fact]
    public async Task A_proof_with_a_critical_header_extension_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, header: h => { h["crit"] = new[] { "x" }; h["x"] = 1; })), "critical");
    }

    // ---- §4.3 (3), (8), (9), (11): claims ----------------------------------------------------------------------------------

    [Theory]
    [InlineData("jti")]
    [InlineData("htm")]
    [InlineData("htu")]
    [InlineData("iat")]
    public async Task A_proof_missing_a_required_claim_is_refused(string claim)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, claims: c => c.Remove(claim))));
    }

    [Fact]
    public async Task A_proof_with_an_unnecessarily_large_jti_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, claims: c => c["jti"] = new string('j', 300))), "jti");
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("get")]
    [InlineData("HEAD")]
    public async Task A_proof_for_another_method_is_refused(string htm)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof(htm, Htu, token)), "htm");
    }

    [Theory]
    [InlineData("http://127.0.0.1:{port}/api/write")]
    [InlineData("http://127.0.0.1:{port}/api/Hello")]
    [InlineData("http://127.0.0.1:{port}/api/hello/")]
    [InlineData("https://127.0.0.1:{port}/api/hello")]
    [InlineData("http://localhost:{port}/api/hello")]
    [InlineData("http://127.0.0.1:1/api/hello")]
    [InlineData("http://user@127.0.0.1:{port}/api/hello")]
    [InlineData("/api/hello")]
    [InlineData("http://127.0.0.1:{port}/api/%2568ello")]
    [InlineData("http://127.0.0.1:{port}/api%2Fhello")]
    [InlineData("not a uri")]
    public async Task A_proof_for_another_URI_is_refused(string htu)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var port = new Uri(Api.Url).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", htu.Replace("{port}", port, StringComparison.Ordinal), token)), "htu");
    }

    [Theory]
    [InlineData(-120)]
    [InlineData(-65)]
    [InlineData(60)]
    [InlineData(3600)]
    public async Task A_proof_too_old_or_from_the_future_is_refused(int seconds)
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, iat: DateTimeOffset.UtcNow.AddSeconds(seconds))), seconds < 0 ? "too old" : "in the future");
    }

    [Fact]
    public async Task A_proof_made_a_little_while_ago_is_still_accepted()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        using var response = await DpopAsync(token, key.Proof("GET", Htu, token, iat: DateTimeOffset.UtcNow.AddSeconds(-30)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_replayed_proof_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var proof = key.Proof("GET", Htu, token);
        using (var first = await DpopAsync(token, proof)) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        await AssertBadProofAsync(await DpopAsync(token, proof), "already used");
        // A new proof (new jti) for the same request is fine.
        using var next = await DpopAsync(token, key.Proof("GET", Htu, token));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task A_jti_reused_in_a_new_proof_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        using (var first = await DpopAsync(token, key.Proof("GET", Htu, token, claims: c => c["jti"] = "reused-jti"))) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, iat: DateTimeOffset.UtcNow.AddSeconds(-1), claims: c => c["jti"] = "reused-jti")), "already used");
    }

    [Fact]
    public async Task One_clients_jti_does_not_block_another_clients_proof()
    {
        using var alice = DpopKey.Es256();
        using var mallory = DpopKey.Es256();
        var aliceToken = BoundToken(alice);
        var malloryToken = BoundToken(mallory);
        using (var first = await DpopAsync(malloryToken, mallory.Proof("GET", Htu, malloryToken, claims: c => c["jti"] = "shared-jti"))) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await DpopAsync(aliceToken, alice.Proof("GET", Htu, aliceToken, claims: c => c["jti"] = "shared-jti"));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
    }

    // ---- §4.3 (12) and §7.1: ath and the key binding -------------------------------------------------------------------

    [Fact]
    public async Task A_proof_without_ath_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, accessToken: null)), "ath");
    }

    [Fact]
    public async Task A_proof_made_for_another_access_token_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var otherToken = BoundToken(key);
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, otherToken)), "ath");
    }

    [Fact]
    public async Task An_ath_over_another_encoding_of_the_token_is_refused()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var hex = Convert.ToHexString(SHA256.HashData(Encoding.ASCII.GetBytes(token)));
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("GET", Htu, token, claims: c => c["ath"] = hex)), "ath");
    }

    /// <summary>§7.1 Figure 16: a failed key binding is answered with invalid_token ("Invalid DPoP key binding").</summary>
    [Fact]
    public async Task A_good_proof_by_a_key_the_token_is_not_bound_to_is_refused_as_invalid_token()
    {
        using var key = DpopKey.Es256();
        using var thief = DpopKey.Es256();
        var token = BoundToken(key);
        await AssertRefusedAsync(await DpopAsync(token, thief.Proof("GET", Htu, token)), "invalid_token", "not signed with the key the token is bound to");
    }

    [Fact]
    public async Task A_token_bound_by_an_unsupported_confirmation_method_is_refused()
    {
        using var key = DpopKey.Es256();
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience);
        claims["cnf"] = new Dictionary<string, string> { ["jkt"] = key.Thumbprint, ["x5t#S256"] = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" };
        var token = Issuer.SignEs256(LocalIssuer.Header(), claims);
        await AssertRefusedAsync(await DpopAsync(token, key.Proof("GET", Htu, token)), "invalid_token", "confirmation method");
    }

    // ---- §7.2: schemes -------------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_bound_token_presented_as_a_bearer_token_is_refused_even_with_a_good_proof()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        using var response = await Api.SendAsync(Path, "Bearer", token, [key.Proof("GET", Htu, token)]);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var bearer = Challenges.Bearer(response).Parameter!;
        Assert.Contains("error=\"invalid_token\"", bearer, StringComparison.Ordinal);
        Assert.Contains("bound to a key", bearer, StringComparison.Ordinal);
        Challenges.AssertBareDpop(response);
    }

    /// <summary>§7.1 defines the DPoP scheme for DPoP-bound tokens; §4.3 (12)'s key match cannot succeed for an unbound one.</summary>
    [Fact]
    public async Task An_unbound_token_presented_with_the_DPoP_scheme_is_refused_even_with_a_good_proof()
    {
        using var key = DpopKey.Es256();
        var token = Issuer.SignEs256(LocalIssuer.Header(), Issuer.AccessTokenClaims(ProtectedApi.Audience));
        await AssertRefusedAsync(await DpopAsync(token, key.Proof("GET", Htu, token)), "invalid_token", "not bound to a DPoP key");
    }

    [Fact]
    public async Task An_invalid_token_with_the_DPoP_scheme_gets_invalid_token_in_the_DPoP_challenge()
    {
        using var key = DpopKey.Es256();
        var claims = Issuer.AccessTokenClaims(ProtectedApi.Audience);
        claims["cnf"] = new Dictionary<string, string> { ["jkt"] = key.Thumbprint };
        claims["aud"] = "https://elsewhere.example";
        var token = Issuer.SignEs256(LocalIssuer.Header(), claims);
        await AssertRefusedAsync(await DpopAsync(token, key.Proof("GET", Htu, token)), "invalid_token", "The audience is invalid");
    }

    /// <summary>RFC 9449 §7.2 Figure 19: the token in two Authorization headers is 400 invalid_request in both challenges.</summary>
    [Fact]
    public async Task Two_Authorization_headers_are_a_bad_request()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key);
        var answer = await RawHttp.SendAsync(Api.Url, "GET", "/" + Path,
            [("Authorization", "Bearer " + token), ("Authorization", "DPoP " + token), ("DPoP", key.Proof("GET", Htu, token))]);
        Assert.Equal(400, answer.Status);
        var challenges = answer.All("WWW-Authenticate").ToList();
        Assert.Equal(2, challenges.Count);
        Assert.All(challenges, c => Assert.Contains("error=\"invalid_request\"", c, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_bound_token_without_the_required_scope_gets_403_insufficient_scope_in_the_DPoP_challenge()
    {
        using var key = DpopKey.Es256();
        var token = BoundToken(key, "api.read");
        var htu = Api.UrlOf("api/write");
        using var response = await Api.SendAsync("api/write", "DPoP", token, [key.Proof("GET", htu, token)]);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate);
        Assert.Equal("DPoP", challenge.Scheme);
        Assert.StartsWith("error=\"insufficient_scope\", scope=\"api.write\", algs=\"ES256", challenge.Parameter, StringComparison.Ordinal);
    }

    // ---- the validated-token cache never stands in for a proof ------------------------------------------------------------

    [Fact]
    public async Task A_cached_bound_token_still_needs_a_new_good_proof_on_every_request()
    {
        using var key = DpopKey.Es256();
        using var thief = DpopKey.Es256();
        var token = BoundToken(key);
        var proof = key.Proof("GET", Htu, token);
        using (var first = await DpopAsync(token, proof)) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.True(Api.Handler.Cache.Count > 0);

        await AssertBadProofAsync(await DpopAsync(token), "A DPoP proof is required");
        await AssertBadProofAsync(await DpopAsync(token, proof), "already used");
        await AssertBadProofAsync(await DpopAsync(token, key.Proof("POST", Htu, token)), "htm");
        await AssertRefusedAsync(await DpopAsync(token, thief.Proof("GET", Htu, token)), "invalid_token");
        using (var bearer = await Api.SendAsync(Path, "Bearer", token, [key.Proof("GET", Htu, token)]))
            Assert.Equal(HttpStatusCode.Unauthorized, bearer.StatusCode);

        using var again = await DpopAsync(token, key.Proof("GET", Htu, token));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }
}
