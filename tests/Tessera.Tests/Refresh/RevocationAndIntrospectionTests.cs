using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Tessera.Core.Clients;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Refresh;

/// <summary>One server for the whole class: every test makes its own sessions, and time only moves forward.</summary>
public sealed class RevocationServerFixture : IAsyncLifetime
{
    public const string Password = "alice-password-1";
    public TesseraTestServer Server { get; private set; } = null!;
    public OAuthDriver Driver { get; private set; } = null!;
    public User Alice { get; private set; } = null!;
    public (Client Client, string Secret) Web { get; private set; }
    public (Client Client, string Secret) Other { get; private set; }
    public Client Spa { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await TesseraTestServer.StartAsync();
        Driver = new OAuthDriver(Server);
        Alice = await Server.AddUserAsync("alice", Password);
        var web = await Server.AddClientAsync(TestClients.Confidential("web"), confidential: true);
        Web = (web.Client, web.Secret!);
        var other = await Server.AddClientAsync(TestClients.Confidential("other"), confidential: true);
        Other = (other.Client, other.Secret!);
        Spa = (await Server.AddClientAsync(TestClients.Public("spa"), confidential: false)).Client;
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Issue 3, "Shown by": RFC 7009 (revocation) and RFC 7662 (introspection) black-box tests over real HTTP, including
/// "other client's token" and garbage.
/// </summary>
public sealed class RevocationAndIntrospectionTests(RevocationServerFixture f) : IClassFixture<RevocationServerFixture>
{
    private const string Inactive = """{"active":false}""";
    private TesseraTestServer Server => f.Server;

    private Task<TokenAnswer> WebLoginAsync(string scope = "openid offline_access api.read") =>
        f.Driver.LoginAndExchangeAsync(f.Web.Client.Id, f.Web.Secret, "alice", RevocationServerFixture.Password, scope);

    private async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> PostAsync(
        string path, Dictionary<string, string> form, string? clientId, string? secret)
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, path);
        if (clientId is not null && secret is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(clientId)}:{Uri.EscapeDataString(secret)}")));
        else if (clientId is not null)
            form["client_id"] = clientId;
        request.Content = new FormUrlEncodedContent(form);
        var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    private Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> RevokeAsync(string? token, string? clientId, string? secret, string? hint = null)
    {
        var form = new Dictionary<string, string>();
        if (token is not null) form["token"] = token;
        if (hint is not null) form["token_type_hint"] = hint;
        return PostAsync("connect/revoke", form, clientId, secret);
    }

    private Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> IntrospectAsync(string? token, string? clientId, string? secret, string? hint = null)
    {
        var form = new Dictionary<string, string>();
        if (token is not null) form["token"] = token;
        if (hint is not null) form["token_type_hint"] = hint;
        return PostAsync("connect/introspect", form, clientId, secret);
    }

    private async Task AssertExactlyInactiveAsync(string token, string? clientId = null, string? secret = null)
    {
        var (status, body, _) = await IntrospectAsync(token, clientId ?? f.Web.Client.Id, secret ?? f.Web.Secret);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(Inactive, body);
    }

    private async Task<JsonElement> AssertActiveAsync(string token, string? clientId = null, string? secret = null)
    {
        var (status, body, _) = await IntrospectAsync(token, clientId ?? f.Web.Client.Id, secret ?? f.Web.Secret);
        Assert.Equal(HttpStatusCode.OK, status);
        var json = JsonDocument.Parse(body).RootElement.Clone();
        Assert.True(json.GetProperty("active").GetBoolean(), body);
        return json;
    }

    private Task<TokenAnswer> WebRefreshAsync(string refreshToken) => f.Driver.RefreshAsync(f.Web.Client.Id, f.Web.Secret, refreshToken);

    private static void AssertError(HttpStatusCode expectedStatus, string expectedError, (HttpStatusCode Status, string Body, HttpResponseMessage Response) answer)
    {
        Assert.Equal(expectedStatus, answer.Status);
        Assert.Equal(expectedError, JsonDocument.Parse(answer.Body).RootElement.GetProperty("error").GetString());
    }

    // ---- RFC 7009 revocation ----------------------------------------------------------------------------------

    [Fact]
    public async Task RevokingOwnRefreshToken_EndsTheSession()
    {
        var tokens = await WebLoginAsync();
        await AssertActiveAsync(tokens.AccessToken!);

        var answer = await RevokeAsync(tokens.RefreshToken, f.Web.Client.Id, f.Web.Secret);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("invalid_grant", (await WebRefreshAsync(tokens.RefreshToken!)).Error);
        await AssertExactlyInactiveAsync(tokens.AccessToken!);
        await AssertExactlyInactiveAsync(tokens.RefreshToken!);
        var sid = new JsonWebToken(tokens.AccessToken).GetClaim("sid").Value;
        Assert.NotNull((await Server.Store.Sessions.FindAsync(sid, default))?.RevokedAt);
    }

    [Fact]
    public async Task RevokingOwnAccessToken_EndsTheSession()
    {
        var tokens = await WebLoginAsync();

        var answer = await RevokeAsync(tokens.AccessToken, f.Web.Client.Id, f.Web.Secret);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("invalid_grant", (await WebRefreshAsync(tokens.RefreshToken!)).Error);
        await AssertExactlyInactiveAsync(tokens.AccessToken!);
    }

    [Fact]
    public async Task APublicClient_RevokesItsOwnRefreshToken()
    {
        var tokens = await f.Driver.LoginAndExchangeAsync(f.Spa.Id, null, "alice", RevocationServerFixture.Password);

        var answer = await RevokeAsync(tokens.RefreshToken, f.Spa.Id, null);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("invalid_grant", (await f.Driver.RefreshAsync(f.Spa.Id, null, tokens.RefreshToken!)).Error);
    }

    [Fact]
    public async Task RevokingAnotherClientsTokens_Answers200_AndChangesNothing()
    {
        var tokens = await WebLoginAsync();

        var refresh = await RevokeAsync(tokens.RefreshToken, f.Other.Client.Id, f.Other.Secret);
        var access = await RevokeAsync(tokens.AccessToken, f.Other.Client.Id, f.Other.Secret);
        var byPublic = await RevokeAsync(tokens.RefreshToken, f.Spa.Id, null);

        Assert.Equal(HttpStatusCode.OK, refresh.Status);
        Assert.Equal(HttpStatusCode.OK, access.Status);
        Assert.Equal(HttpStatusCode.OK, byPublic.Status);
        await AssertActiveAsync(tokens.AccessToken!);
        await AssertActiveAsync(tokens.RefreshToken!);
        var refreshed = await WebRefreshAsync(tokens.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")]
    [InlineData("tsr_unknown")]
    public async Task RevokingGarbage_Answers200(string token)
    {
        var answer = await RevokeAsync(token, f.Web.Client.Id, f.Web.Secret);
        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Fact]
    public async Task RevokingAnUnknownRefreshToken_Answers200()
    {
        var unknown = Handles.NewRefreshToken(Handles.NewFamily());
        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(unknown, f.Web.Client.Id, f.Web.Secret)).Status);
        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(unknown, f.Web.Client.Id, f.Web.Secret, hint: "refresh_token")).Status);
    }

    [Fact]
    public async Task RevocationWithoutAToken_IsInvalidRequest()
    {
        AssertError(HttpStatusCode.BadRequest, "invalid_request", await RevokeAsync(null, f.Web.Client.Id, f.Web.Secret));
        // RFC 6749 §3.1: a parameter without a value is treated as omitted.
        AssertError(HttpStatusCode.BadRequest, "invalid_request", await RevokeAsync("", f.Web.Client.Id, f.Web.Secret));
    }

    [Fact]
    public async Task UnauthenticatedRevocation_Is401InvalidClient_AndChangesNothing()
    {
        var tokens = await WebLoginAsync();

        AssertError(HttpStatusCode.Unauthorized, "invalid_client", await RevokeAsync(tokens.RefreshToken, null, null));
        var wrongSecret = await RevokeAsync(tokens.RefreshToken, f.Web.Client.Id, "tss_wrong");
        AssertError(HttpStatusCode.Unauthorized, "invalid_client", wrongSecret);
        Assert.NotEmpty(wrongSecret.Response.Headers.WwwAuthenticate);
        AssertError(HttpStatusCode.Unauthorized, "invalid_client", await RevokeAsync(tokens.RefreshToken, "nobody", null));

        Assert.Equal(HttpStatusCode.OK, (await WebRefreshAsync(tokens.RefreshToken!)).Status);
    }

    [Fact]
    public async Task AWrongTokenTypeHint_StillRevokes()
    {
        var first = await WebLoginAsync();
        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(first.RefreshToken, f.Web.Client.Id, f.Web.Secret, hint: "access_token")).Status);
        Assert.Equal("invalid_grant", (await WebRefreshAsync(first.RefreshToken!)).Error);

        var second = await WebLoginAsync();
        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(second.AccessToken, f.Web.Client.Id, f.Web.Secret, hint: "refresh_token")).Status);
        Assert.Equal("invalid_grant", (await WebRefreshAsync(second.RefreshToken!)).Error);

        var third = await WebLoginAsync();
        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(third.RefreshToken, f.Web.Client.Id, f.Web.Secret, hint: "no_such_type")).Status);
        Assert.Equal("invalid_grant", (await WebRefreshAsync(third.RefreshToken!)).Error);
    }

    [Fact]
    public async Task RevokingOneSession_LeavesTheUsersOtherSessionsAlone()
    {
        var first = await WebLoginAsync();
        var second = await WebLoginAsync();

        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(first.RefreshToken, f.Web.Client.Id, f.Web.Secret)).Status);

        Assert.Equal(HttpStatusCode.OK, (await WebRefreshAsync(second.RefreshToken!)).Status);
        await AssertActiveAsync(second.AccessToken!);
    }

    // ---- RFC 7662 introspection -------------------------------------------------------------------------------

    [Fact]
    public async Task APublicCaller_MayNotIntrospect()
    {
        var tokens = await WebLoginAsync();
        AssertError(HttpStatusCode.Unauthorized, "invalid_client", await IntrospectAsync(tokens.AccessToken, f.Spa.Id, null));
    }

    [Fact]
    public async Task AnUnauthenticatedCaller_MayNotIntrospect()
    {
        var tokens = await WebLoginAsync();
        AssertError(HttpStatusCode.Unauthorized, "invalid_client", await IntrospectAsync(tokens.AccessToken, null, null));
        AssertError(HttpStatusCode.Unauthorized, "invalid_client", await IntrospectAsync(tokens.AccessToken, f.Web.Client.Id, "tss_wrong"));
    }

    [Fact]
    public async Task IntrospectionWithoutAToken_IsInvalidRequest()
    {
        AssertError(HttpStatusCode.BadRequest, "invalid_request", await IntrospectAsync(null, f.Web.Client.Id, f.Web.Secret));
        AssertError(HttpStatusCode.BadRequest, "invalid_request", await IntrospectAsync("", f.Web.Client.Id, f.Web.Secret));
    }

    [Fact]
    public async Task AnActiveAccessToken_ReportsTheRfc7662Fields()
    {
        var tokens = await WebLoginAsync();
        var jwt = new JsonWebToken(tokens.AccessToken);

        var json = await AssertActiveAsync(tokens.AccessToken!);

        Assert.Equal("Bearer", json.GetProperty("token_type").GetString());
        Assert.Equal(f.Web.Client.Id, json.GetProperty("client_id").GetString());
        Assert.Equal(f.Alice.Id, json.GetProperty("sub").GetString());
        Assert.Equal("openid offline_access api.read", json.GetProperty("scope").GetString());
        Assert.Equal(Server.Issuer, json.GetProperty("iss").GetString());
        Assert.Equal(TestClients.Api, json.GetProperty("aud").GetString());
        Assert.Equal(jwt.Id, json.GetProperty("jti").GetString());
        Assert.Equal(jwt.GetClaim("sid").Value, json.GetProperty("sid").GetString());
        var exp = json.GetProperty("exp").GetInt64();
        var iat = json.GetProperty("iat").GetInt64();
        Assert.Equal(new DateTimeOffset(jwt.ValidTo).ToUnixTimeSeconds(), exp);
        Assert.Equal(new DateTimeOffset(jwt.IssuedAt).ToUnixTimeSeconds(), iat);
        Assert.Equal(300, exp - iat);
    }

    [Fact]
    public async Task AfterRevocation_TheAccessTokenIsExactlyInactive()
    {
        var tokens = await WebLoginAsync();
        Assert.Equal(HttpStatusCode.OK, (await RevokeAsync(tokens.RefreshToken, f.Web.Client.Id, f.Web.Secret)).Status);

        await AssertExactlyInactiveAsync(tokens.AccessToken!);
        // A resource server registered as a client sees the same.
        await AssertExactlyInactiveAsync(tokens.AccessToken!, f.Other.Client.Id, f.Other.Secret);
    }

    [Fact]
    public async Task AnExpiredAccessToken_IsExactlyInactive()
    {
        var tokens = await WebLoginAsync();
        await AssertActiveAsync(tokens.AccessToken!);

        Server.Time.Advance(TimeSpan.FromMinutes(6));

        await AssertExactlyInactiveAsync(tokens.AccessToken!);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")]
    [InlineData("tsr_unknown")]
    public async Task Garbage_IsExactlyInactive(string token)
    {
        await AssertExactlyInactiveAsync(token);
    }

    [Fact]
    public async Task AnUnknownRefreshToken_IsExactlyInactive()
    {
        await AssertExactlyInactiveAsync(Handles.NewRefreshToken(Handles.NewFamily()));
    }

    [Fact]
    public async Task ARefreshToken_IsIntrospectableByItsOwnClient_Only()
    {
        var tokens = await WebLoginAsync();
        var sid = new JsonWebToken(tokens.AccessToken).GetClaim("sid").Value;

        var json = await AssertActiveAsync(tokens.RefreshToken!);
        Assert.Equal("refresh_token", json.GetProperty("token_type").GetString());
        Assert.Equal(f.Web.Client.Id, json.GetProperty("client_id").GetString());
        Assert.Equal(f.Alice.Id, json.GetProperty("sub").GetString());
        Assert.Equal(sid, json.GetProperty("sid").GetString());
        Assert.Equal("openid offline_access api.read", json.GetProperty("scope").GetString());
        Assert.True(json.GetProperty("exp").GetInt64() > Server.Time.GetUtcNow().ToUnixTimeSeconds());

        await AssertExactlyInactiveAsync(tokens.RefreshToken!, f.Other.Client.Id, f.Other.Secret);
        // Introspecting is read-only: the token still refreshes.
        Assert.Equal(HttpStatusCode.OK, (await WebRefreshAsync(tokens.RefreshToken!)).Status);
    }

    [Fact]
    public async Task ARotatedRefreshToken_IsExactlyInactive_AndItsSuccessorActive()
    {
        var tokens = await WebLoginAsync();
        var refreshed = await WebRefreshAsync(tokens.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);

        await AssertExactlyInactiveAsync(tokens.RefreshToken!);
        await AssertActiveAsync(refreshed.RefreshToken!);
        // Introspecting the old token is not a presentation: no reuse, the session lives.
        Assert.Equal(HttpStatusCode.OK, (await WebRefreshAsync(refreshed.RefreshToken!)).Status);
    }

    [Fact]
    public async Task TheHintIsAdvisory_ForIntrospectionToo()
    {
        var tokens = await WebLoginAsync();
        var (_, body, _) = await IntrospectAsync(tokens.AccessToken, f.Web.Client.Id, f.Web.Secret, hint: "refresh_token");
        Assert.True(JsonDocument.Parse(body).RootElement.GetProperty("active").GetBoolean());
        var (_, refreshBody, _) = await IntrospectAsync(tokens.RefreshToken, f.Web.Client.Id, f.Web.Secret, hint: "access_token");
        Assert.True(JsonDocument.Parse(refreshBody).RootElement.GetProperty("active").GetBoolean());
    }
}
