using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Clients;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Admin;

/// <summary>
/// One server for the class. Every test makes its own users, clients and sessions (unique names), so no test depends
/// on what another left behind; time only moves forward.
/// </summary>
public sealed class AdminServerFixture : IAsyncLifetime
{
    public const string Password = "correct horse battery";
    public TesseraTestServer Server { get; private set; } = null!;
    public OAuthDriver Driver { get; private set; } = null!;
    public string AdminSecret { get; private set; } = null!;
    public string ReportsSecret { get; private set; } = null!;
    public string WebSecret { get; private set; } = null!;
    public string ApiAudienceAdminSecret { get; private set; } = null!;
    private int _counter;

    public async Task InitializeAsync()
    {
        Server = await TesseraTestServer.StartAsync();
        Driver = new OAuthDriver(Server);
        // The admin client: client_credentials, the admin scope, no Resources, so its tokens are for the issuer.
        AdminSecret = (await Server.AddClientAsync(new Client
        {
            Id = "admin", DisplayName = "Operator tool", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["tessera.admin"],
        }, confidential: true)).Secret!;
        // A normal service client: also audience = issuer, but without the admin scope.
        ReportsSecret = (await Server.AddClientAsync(new Client
        {
            Id = "reports", DisplayName = "Reports", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["api.read"],
        }, confidential: true)).Secret!;
        // Has the admin scope, but its tokens are for another audience: not for the admin API.
        ApiAudienceAdminSecret = (await Server.AddClientAsync(new Client
        {
            Id = "admin-for-api", DisplayName = "Misdirected", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["tessera.admin"],
            Resources = [TestClients.Api],
        }, confidential: true)).Secret!;
        // The users' application; no Resources, so user access tokens are for the issuer too.
        WebSecret = (await Server.AddClientAsync(TestClients.Confidential("web") with { Resources = [] }, confidential: true)).Secret!;
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public string Unique(string prefix) => $"{prefix}-{Interlocked.Increment(ref _counter)}";
}

/// <summary>
/// Issue 6, "Shown by": the admin HTTP API over real HTTP. Authorization (RFC 6750 401/403), users, clients, sessions,
/// audit, RFC 9457 problem details, and the OpenAPI document.
/// </summary>
public sealed class AdminApiTests(AdminServerFixture f) : IClassFixture<AdminServerFixture>
{
    private TesseraTestServer Server => f.Server;

    private sealed record Answer(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response, string Text)
    {
        public string? MediaType => Response.Content.Headers.ContentType?.MediaType;
        public string? Str(string name) => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
    }

    private async Task<string> ClientCredentialsTokenAsync(string clientId, string secret)
    {
        var answer = await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, clientId, secret);
        Assert.True(answer.Status == HttpStatusCode.OK, $"client_credentials for {clientId} failed: {answer.Body}");
        return answer.AccessToken!;
    }

    private Task<string> AdminTokenAsync() => ClientCredentialsTokenAsync("admin", f.AdminSecret);

    private async Task<Answer> SendAsync(HttpMethod method, string path, string? token, string? json = null, string contentType = "application/json")
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(method, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, contentType);
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = default(JsonElement);
        if (text.Length > 0 && (response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.Ordinal) ?? false))
            body = JsonDocument.Parse(text).RootElement.Clone();
        return new Answer(response.StatusCode, body, response, text);
    }

    private async Task<Answer> AdminAsync(HttpMethod method, string path, object? body = null) =>
        await SendAsync(method, path, await AdminTokenAsync(), body is null ? null : body as string ?? JsonSerializer.Serialize(body));

    private static void AssertStatus(HttpStatusCode expected, Answer a) =>
        Assert.True(a.Status == expected, $"expected {(int)expected}, got {(int)a.Status}: {a.Text}");

    /// <summary>RFC 9457: application/problem+json with the HTTP status repeated in the body.</summary>
    private static void AssertProblem(HttpStatusCode expected, Answer a)
    {
        AssertStatus(expected, a);
        Assert.Equal("application/problem+json", a.MediaType);
        Assert.Equal((int)expected, a.Body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(a.Body.GetProperty("title").GetString()));
    }

    /// <summary>RFC 9457 validation problem: 400 with an <c>errors</c> member naming the field at fault.</summary>
    private static void AssertValidationProblem(Answer a, string field)
    {
        AssertProblem(HttpStatusCode.BadRequest, a);
        var errors = a.Body.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out var messages), $"no errors.{field} in {a.Text}");
        Assert.True(messages.GetArrayLength() > 0);
    }

    private async Task<(string Id, string Username)> CreateUserAsync(IReadOnlyList<string>? scopes = null)
    {
        var username = f.Unique("user");
        var created = await AdminAsync(HttpMethod.Post, "admin/users", new { username, password = AdminServerFixture.Password, name = "Test " + username, scopes });
        AssertStatus(HttpStatusCode.Created, created);
        return (created.Str("id")!, username);
    }

    private Task<TokenAnswer> LoginAsync(string username, string scope = "openid offline_access api.read", string clientId = "web", string? secret = null) =>
        f.Driver.LoginAndExchangeAsync(clientId, secret ?? f.WebSecret, username, AdminServerFixture.Password, scope);

    private Task<TokenAnswer> RefreshAsync(string refreshToken, string clientId = "web", string? secret = null) =>
        f.Driver.RefreshAsync(clientId, secret ?? f.WebSecret, refreshToken);

    private static string Sid(string accessToken) => new JsonWebToken(accessToken).GetClaim("sid").Value;

    private static List<JsonElement> Items(Answer a) => a.Body.GetProperty("items").EnumerateArray().ToList();

    private async Task<bool> IntrospectActiveAsync(string token)
    {
        using var http = Server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/introspect") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("web:" + Uri.EscapeDataString(f.WebSecret))));
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("active").GetBoolean();
    }

    private async Task<HttpStatusCode> BrowserSignInStatusAsync(string username, string password)
    {
        using var browser = Server.CreateClient(new CookieContainer());
        var page = await (await browser.GetAsync("login?returnUrl=%2Faccount")).Content.ReadAsStringAsync();
        var post = await browser.PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page), ["username"] = username, ["password"] = password, ["returnUrl"] = "/account",
        }));
        return post.StatusCode;
    }

    // ---- Authorization (RFC 6750) -------------------------------------------------------------------------------

    [Fact]
    public async Task NoToken_Is401_WithABearerChallenge_AndNoData()
    {
        var a = await SendAsync(HttpMethod.Get, "admin/users", token: null);

        AssertProblem(HttpStatusCode.Unauthorized, a);
        var challenge = a.Response.Headers.WwwAuthenticate.ToString();
        Assert.StartsWith("Bearer", challenge, StringComparison.Ordinal);
        Assert.DoesNotContain("error=", challenge, StringComparison.Ordinal);
        Assert.DoesNotContain("items", a.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not-a-jwt")]
    [InlineData("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJhZG1pbiIsInNjb3BlIjoidGVzc2VyYS5hZG1pbiJ9.")]
    public async Task GarbageOrUnsignedToken_Is401InvalidToken(string token)
    {
        var a = await SendAsync(HttpMethod.Get, "admin/users", token);

        AssertProblem(HttpStatusCode.Unauthorized, a);
        var challenge = a.Response.Headers.WwwAuthenticate.ToString();
        Assert.StartsWith("Bearer", challenge, StringComparison.Ordinal);
        Assert.Contains("error=\"invalid_token\"", challenge, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NormalClientsClientCredentialsToken_Is403InsufficientScope()
    {
        var token = await ClientCredentialsTokenAsync("reports", f.ReportsSecret);
        Assert.Contains(Server.Issuer, new JsonWebToken(token).Audiences);

        var a = await SendAsync(HttpMethod.Get, "admin/users", token);

        AssertProblem(HttpStatusCode.Forbidden, a);
        var challenge = a.Response.Headers.WwwAuthenticate.ToString();
        Assert.Contains("error=\"insufficient_scope\"", challenge, StringComparison.Ordinal);
        Assert.Contains("scope=\"tessera.admin\"", challenge, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UsersAccessToken_Is403InsufficientScope_AndCannotChangeAnything()
    {
        var (id, username) = await CreateUserAsync();
        var tokens = await LoginAsync(username);
        Assert.Contains(Server.Issuer, new JsonWebToken(tokens.AccessToken).Audiences);

        var read = await SendAsync(HttpMethod.Get, "admin/users", tokens.AccessToken);
        var write = await SendAsync(HttpMethod.Patch, $"admin/users/{id}", tokens.AccessToken, """{"disabled":true}""");

        AssertProblem(HttpStatusCode.Forbidden, read);
        AssertProblem(HttpStatusCode.Forbidden, write);
        Assert.Contains("error=\"insufficient_scope\"", write.Response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        var user = await AdminAsync(HttpMethod.Get, $"admin/users/{id}");
        Assert.False(user.Body.GetProperty("disabled").GetBoolean());
    }

    [Fact]
    public async Task AdminScopedToken_ForAnotherAudience_Is401()
    {
        var token = await ClientCredentialsTokenAsync("admin-for-api", f.ApiAudienceAdminSecret);
        Assert.DoesNotContain(Server.Issuer, new JsonWebToken(token).Audiences);

        var a = await SendAsync(HttpMethod.Get, "admin/users", token);

        AssertProblem(HttpStatusCode.Unauthorized, a);
        Assert.Contains("error=\"invalid_token\"", a.Response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExpiredAdminToken_Is401()
    {
        var token = await AdminTokenAsync();
        Server.Time.Advance(TimeSpan.FromMinutes(10));

        var a = await SendAsync(HttpMethod.Get, "admin/users", token);

        AssertProblem(HttpStatusCode.Unauthorized, a);
    }

    // ---- Users -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task CreateUser_Is201WithLocation_AndGetReturnsIt_WithoutThePasswordHash()
    {
        var username = f.Unique("carol");

        var created = await AdminAsync(HttpMethod.Post, "admin/users", new { username, password = "a long passphrase 1", name = "Carol", email = "carol@example.com" });

        AssertStatus(HttpStatusCode.Created, created);
        var id = created.Str("id")!;
        Assert.Equal($"/admin/users/{id}", created.Response.Headers.Location?.ToString());
        Assert.Equal(username, created.Str("username"));
        Assert.DoesNotContain("argon2", created.Text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("a long passphrase 1", created.Text, StringComparison.Ordinal);

        var got = await AdminAsync(HttpMethod.Get, $"admin/users/{id}");
        AssertStatus(HttpStatusCode.OK, got);
        Assert.Equal(username, got.Str("username"));
        Assert.Equal("Carol", got.Str("name"));
        Assert.Equal("carol@example.com", got.Str("email"));
        Assert.False(got.Body.GetProperty("disabled").GetBoolean());
        Assert.DoesNotContain("argon2", got.Text, StringComparison.OrdinalIgnoreCase);

        // The new user can sign in with that password.
        Assert.Equal(HttpStatusCode.SeeOther, await BrowserSignInStatusAsync(username, "a long passphrase 1"));
        // And is listed.
        var list = await AdminAsync(HttpMethod.Get, "admin/users?limit=1000");
        Assert.Contains(Items(list), u => u.GetProperty("id").GetString() == id);
    }

    [Fact]
    public async Task CreateUser_DuplicateUsername_Is409ProblemDetails()
    {
        var (_, username) = await CreateUserAsync();

        var again = await AdminAsync(HttpMethod.Post, "admin/users", new { username, password = "another passphrase 2" });

        AssertProblem(HttpStatusCode.Conflict, again);
        Assert.Contains(username, again.Body.GetProperty("title").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("short12")]       // 7 characters
    [InlineData("password123")]   // on the shipped common list
    [InlineData("PassWord123")]   // the list is checked case-insensitively
    [InlineData("qwertyuiop")]
    public async Task CreateUser_WeakOrCommonPassword_Is400ValidationProblem(string password)
    {
        var username = f.Unique("weak");

        var a = await AdminAsync(HttpMethod.Post, "admin/users", new { username, password });

        AssertValidationProblem(a, "password");
        var list = await AdminAsync(HttpMethod.Get, "admin/users?limit=1000");
        Assert.DoesNotContain(Items(list), u => u.GetProperty("username").GetString() == username);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public async Task CreateUser_WithoutUsername_Is400ValidationProblem(string username)
    {
        var a = await AdminAsync(HttpMethod.Post, "admin/users", new { username, password = "a fine passphrase" });

        AssertValidationProblem(a, "username");
    }

    [Fact]
    public async Task UnknownUser_Is404ProblemDetails()
    {
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Get, "admin/users/no-such-user"));
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Patch, "admin/users/no-such-user", new { disabled = true }));
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Post, "admin/users/no-such-user/revoke-sessions"));
    }

    [Fact]
    public async Task DisableUser_TheirRefreshStopsWorking_AndTheirSessionsShowRevoked()
    {
        var (id, username) = await CreateUserAsync();
        var first = await LoginAsync(username);
        var second = await LoginAsync(username);
        var firstRt = (await RefreshAsync(first.RefreshToken!)).RefreshToken;
        Assert.NotNull(firstRt);

        var patched = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { disabled = true });

        AssertStatus(HttpStatusCode.OK, patched);
        Assert.True(patched.Body.GetProperty("disabled").GetBoolean());
        Assert.Equal("invalid_grant", (await RefreshAsync(firstRt!)).Error);
        Assert.Equal("invalid_grant", (await RefreshAsync(second.RefreshToken!)).Error);
        Assert.False(await IntrospectActiveAsync(second.AccessToken!));
        var sessions = Items(await AdminAsync(HttpMethod.Get, $"admin/sessions?userId={id}"));
        Assert.Equal(2, sessions.Count);
        Assert.All(sessions, s =>
        {
            Assert.False(s.GetProperty("active").GetBoolean());
            Assert.Equal(JsonValueKind.String, s.GetProperty("revokedAt").ValueKind);
            Assert.Equal("user_disabled", s.GetProperty("revokedReason").GetString());
        });
        // A disabled user cannot sign in either; the answer is the same as for a wrong password.
        Assert.Equal(HttpStatusCode.BadRequest, await BrowserSignInStatusAsync(username, AdminServerFixture.Password));

        // Enabling again lets them sign in anew, but what was revoked stays revoked.
        var enabled = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { disabled = false });
        Assert.False(enabled.Body.GetProperty("disabled").GetBoolean());
        Server.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.SeeOther, await BrowserSignInStatusAsync(username, AdminServerFixture.Password));
        Assert.Equal("invalid_grant", (await RefreshAsync(second.RefreshToken!)).Error);
    }

    [Fact]
    public async Task LockAndUnlock_LockStopsRefreshAndSignIn_UnlockAllowsSignInAgain()
    {
        var (id, username) = await CreateUserAsync();
        var tokens = await LoginAsync(username);
        var until = Server.Time.GetUtcNow() + TimeSpan.FromHours(1);

        var locked = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { lockedUntil = until });

        AssertStatus(HttpStatusCode.OK, locked);
        Assert.Equal(until.ToUnixTimeSeconds(), locked.Body.GetProperty("lockedUntil").GetDateTimeOffset().ToUnixTimeSeconds());
        Assert.Equal("invalid_grant", (await RefreshAsync(tokens.RefreshToken!)).Error);
        Assert.False(await IntrospectActiveAsync(tokens.AccessToken!));
        Assert.Equal(HttpStatusCode.BadRequest, await BrowserSignInStatusAsync(username, AdminServerFixture.Password));

        var unlocked = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { unlock = true });

        AssertStatus(HttpStatusCode.OK, unlocked);
        Assert.Equal(JsonValueKind.Null, unlocked.Body.GetProperty("lockedUntil").ValueKind);
        Assert.Equal(HttpStatusCode.SeeOther, await BrowserSignInStatusAsync(username, AdminServerFixture.Password));
        var fresh = await LoginAsync(username);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(fresh.RefreshToken!)).Status);
    }

    [Fact]
    public async Task ResetPassword_OldPasswordFails_NewWorks_AndOldSessionsEnd()
    {
        var (id, username) = await CreateUserAsync();
        var tokens = await LoginAsync(username);

        var weak = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { password = "1234567" });
        AssertValidationProblem(weak, "password");
        var still = await RefreshAsync(tokens.RefreshToken!); // a refused reset changes nothing
        Assert.Equal(HttpStatusCode.OK, still.Status);
        var rt = still.RefreshToken!;
        var reset = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { password = "brand new passphrase" });

        AssertStatus(HttpStatusCode.OK, reset);
        Assert.Equal(JsonValueKind.String, reset.Body.GetProperty("revokedBefore").ValueKind);
        Assert.Equal("invalid_grant", (await RefreshAsync(rt)).Error);
        Server.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.BadRequest, await BrowserSignInStatusAsync(username, AdminServerFixture.Password));
        Assert.Equal(HttpStatusCode.SeeOther, await BrowserSignInStatusAsync(username, "brand new passphrase"));
    }

    [Fact]
    public async Task SetScopes_TheNextRefreshNarrowsTheToken_AndAllScopesWidensItAgain()
    {
        var (id, username) = await CreateUserAsync();
        var tokens = await LoginAsync(username, "openid offline_access api.read api.write");
        Assert.Equal(["api.read", "api.write", "offline_access", "openid"], tokens.Str("scope")!.Split(' ').Order());

        var patched = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { scopes = new[] { "api.read" } });

        AssertStatus(HttpStatusCode.OK, patched);
        Assert.Equal(["api.read"], patched.Body.GetProperty("scopes").EnumerateArray().Select(e => e.GetString()));
        var narrowed = await RefreshAsync(tokens.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, narrowed.Status);
        Assert.Equal(["api.read", "offline_access", "openid"], narrowed.Str("scope")!.Split(' ').Order());
        Assert.Equal(["api.read", "offline_access", "openid"], new JsonWebToken(narrowed.AccessToken).GetClaim("scope").Value.Split(' ').Order());

        var all = await AdminAsync(HttpMethod.Patch, $"admin/users/{id}", new { allScopes = true });

        Assert.Equal(JsonValueKind.Null, all.Body.GetProperty("scopes").ValueKind);
        var widened = await RefreshAsync(narrowed.RefreshToken!);
        Assert.Equal(["api.read", "api.write", "offline_access", "openid"], widened.Str("scope")!.Split(' ').Order());
    }

    [Fact]
    public async Task RevokeUserSessions_EndsEverySessionOfThatUserOnly()
    {
        var (id, username) = await CreateUserAsync();
        var (_, bystander) = await CreateUserAsync();
        var a = await LoginAsync(username);
        var b = await LoginAsync(username);
        var other = await LoginAsync(bystander);

        var revoked = await AdminAsync(HttpMethod.Post, $"admin/users/{id}/revoke-sessions");

        AssertStatus(HttpStatusCode.OK, revoked);
        Assert.Equal(2, revoked.Body.GetProperty("revoked").GetInt32());
        Assert.Equal("invalid_grant", (await RefreshAsync(a.RefreshToken!)).Error);
        Assert.Equal("invalid_grant", (await RefreshAsync(b.RefreshToken!)).Error);
        Assert.False(await IntrospectActiveAsync(a.AccessToken!));
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(other.RefreshToken!)).Status);
        Assert.All(Items(await AdminAsync(HttpMethod.Get, $"admin/sessions?userId={id}")),
            s => Assert.Equal("revoked_by_admin", s.GetProperty("revokedReason").GetString()));
    }

    [Fact]
    public async Task DeleteUser_Is204_EndsTheirSessions_AndThenIs404()
    {
        var (id, username) = await CreateUserAsync();
        var tokens = await LoginAsync(username);

        var deleted = await AdminAsync(HttpMethod.Delete, $"admin/users/{id}");

        AssertStatus(HttpStatusCode.NoContent, deleted);
        Assert.Equal("invalid_grant", (await RefreshAsync(tokens.RefreshToken!)).Error);
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Get, $"admin/users/{id}"));
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Delete, $"admin/users/{id}"));
    }

    // ---- Clients ---------------------------------------------------------------------------------------------

    private static object ServiceClient(string id, string name = "Service", bool confidential = true, string[]? scopes = null) => new
    {
        id, name, confidential, grantTypes = new[] { "client_credentials" }, scopes = scopes ?? ["api.read"],
    };

    private static object WebClient(string id) => new
    {
        id, name = "Web " + id, confidential = true, redirectUris = new[] { OAuthDriver.RedirectUri },
        grantTypes = new[] { "authorization_code", "refresh_token" }, scopes = new[] { "openid", "offline_access", "api.read" }, firstParty = true,
    };

    private async Task<string> CreateClientAsync(object body)
    {
        var created = await AdminAsync(HttpMethod.Post, "admin/clients", body);
        AssertStatus(HttpStatusCode.Created, created);
        return created.Str("secret")!;
    }

    [Fact]
    public async Task CreateConfidentialClient_ReturnsTheSecretOnce_GetNeverShowsIt()
    {
        var id = f.Unique("svc");

        var created = await AdminAsync(HttpMethod.Post, "admin/clients", ServiceClient(id, "Nightly job"));

        AssertStatus(HttpStatusCode.Created, created);
        Assert.Equal($"/admin/clients/{id}", created.Response.Headers.Location?.ToString());
        var secret = created.Str("secret");
        Assert.False(string.IsNullOrEmpty(secret));
        Assert.True(created.Body.GetProperty("confidential").GetBoolean());
        // The secret works at the token endpoint.
        Assert.NotNull(await ClientCredentialsTokenAsync(id, secret!));

        var got = await AdminAsync(HttpMethod.Get, $"admin/clients/{id}");
        AssertStatus(HttpStatusCode.OK, got);
        Assert.Equal("Nightly job", got.Str("name"));
        Assert.Null(got.Str("secret"));
        Assert.DoesNotContain(secret!, got.Text, StringComparison.Ordinal);
        var list = await AdminAsync(HttpMethod.Get, "admin/clients?limit=1000");
        Assert.Contains(Items(list), c => c.GetProperty("id").GetString() == id);
        Assert.DoesNotContain(secret!, list.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreatePublicClient_HasNoSecret()
    {
        var id = f.Unique("spa");

        var created = await AdminAsync(HttpMethod.Post, "admin/clients", new
        {
            id, name = "SPA", confidential = false, redirectUris = new[] { OAuthDriver.RedirectUri },
            grantTypes = new[] { "authorization_code", "refresh_token" }, scopes = new[] { "openid", "api.read" },
        });

        AssertStatus(HttpStatusCode.Created, created);
        Assert.Null(created.Str("secret"));
        Assert.False(created.Body.GetProperty("confidential").GetBoolean());
    }

    [Fact]
    public async Task CreateClient_InvalidRequests_AreValidationProblems_AndDuplicatesConflict()
    {
        var id = f.Unique("bad");
        AssertValidationProblem(await AdminAsync(HttpMethod.Post, "admin/clients", new { id, confidential = false, grantTypes = new[] { "client_credentials" } }), "grantTypes");
        AssertValidationProblem(await AdminAsync(HttpMethod.Post, "admin/clients", new { id, confidential = true, grantTypes = new[] { "password" } }), "grantTypes");
        AssertValidationProblem(await AdminAsync(HttpMethod.Post, "admin/clients", new { id, confidential = true, grantTypes = new[] { "authorization_code" } }), "redirectUris");
        AssertValidationProblem(await AdminAsync(HttpMethod.Post, "admin/clients", new { id = "has space", confidential = true, grantTypes = new[] { "client_credentials" } }), "id");
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Get, $"admin/clients/{id}"));

        await CreateClientAsync(ServiceClient(id));
        AssertProblem(HttpStatusCode.Conflict, await AdminAsync(HttpMethod.Post, "admin/clients", ServiceClient(id)));
    }

    [Fact]
    public async Task UpdateClient_ChangesIt_KeepsTheSecret_AndShowsNoSecret()
    {
        var id = f.Unique("svc");
        var secret = await CreateClientAsync(ServiceClient(id, "Before"));

        var updated = await AdminAsync(HttpMethod.Put, $"admin/clients/{id}", ServiceClient(id, "After", scopes: ["api.read", "api.write"]));

        AssertStatus(HttpStatusCode.OK, updated);
        Assert.Null(updated.Str("secret"));
        var got = await AdminAsync(HttpMethod.Get, $"admin/clients/{id}");
        Assert.Equal("After", got.Str("name"));
        Assert.Equal(["api.read", "api.write"], got.Body.GetProperty("scopes").EnumerateArray().Select(e => e.GetString()));
        var token = await ClientCredentialsTokenAsync(id, secret);
        Assert.Equal(["api.read", "api.write"], new JsonWebToken(token).GetClaim("scope").Value.Split(' ').Order());

        AssertValidationProblem(await AdminAsync(HttpMethod.Put, $"admin/clients/{id}", ServiceClient(id + "-other")), "id");
        var missing = f.Unique("missing");
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Put, $"admin/clients/{missing}", ServiceClient(missing)));
    }

    [Fact]
    public async Task RotateSecret_OldSecretIsInvalidClient_NewOneWorks()
    {
        var id = f.Unique("svc");
        var old = await CreateClientAsync(ServiceClient(id));

        var rotated = await AdminAsync(HttpMethod.Post, $"admin/clients/{id}/rotate-secret");

        AssertStatus(HttpStatusCode.OK, rotated);
        var fresh = rotated.Str("secret")!;
        Assert.NotEqual(old, fresh);
        var withOld = await f.Driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, id, old);
        Assert.Equal(HttpStatusCode.Unauthorized, withOld.Status);
        Assert.Equal("invalid_client", withOld.Error);
        Assert.NotNull(await ClientCredentialsTokenAsync(id, fresh));
        Assert.Null((await AdminAsync(HttpMethod.Get, $"admin/clients/{id}")).Str("secret"));
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Post, $"admin/clients/{f.Unique("missing")}/rotate-secret"));
    }

    [Fact]
    public async Task RotateSecret_OfAPublicClient_IsRefused()
    {
        var id = f.Unique("spa");
        await AdminAsync(HttpMethod.Post, "admin/clients", new
        {
            id, confidential = false, redirectUris = new[] { OAuthDriver.RedirectUri }, grantTypes = new[] { "authorization_code" }, scopes = new[] { "openid" },
        });

        var a = await AdminAsync(HttpMethod.Post, $"admin/clients/{id}/rotate-secret");

        AssertValidationProblem(a, "id");
    }

    /// <summary>A client registered (by the configuration or the command line) with a JWK Set for private_key_jwt.</summary>
    private async Task<(string Id, ECDsa Key)> AddPrivateKeyJwtClientAsync()
    {
        var id = f.Unique("keyed");
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(ECDsa.Create(key.ExportParameters(false))) { KeyId = "k1" });
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = jwk.Kid, use = "sig", alg = "ES256" } } });
        await Server.Store.Clients.SaveAsync(new Client
        {
            Id = id, DisplayName = "Keyed", Jwks = jwks, GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["api.read"], LogoutRevokesSession = false,
        }, default);
        return (id, key);
    }

    private Task<TokenAnswer> PrivateKeyJwtTokenAsync(string clientId, ECDsa key)
    {
        var now = Server.Time.GetUtcNow();
        var assertion = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = clientId, Audience = Server.Issuer, IssuedAt = now.UtcDateTime, NotBefore = now.UtcDateTime, Expires = now.AddMinutes(1).UtcDateTime,
            Claims = new Dictionary<string, object> { ["sub"] = clientId, ["jti"] = Guid.NewGuid().ToString("N") },
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha256),
        });
        return f.Driver.TokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", ["client_assertion"] = assertion,
        });
    }

    [Fact]
    public async Task UpdateClient_KeepsAPrivateKeyJwtRegistration_AndCreatesNoSecret()
    {
        var (id, key) = await AddPrivateKeyJwtClientAsync();
        using var _ = key;
        Assert.Equal(HttpStatusCode.OK, (await PrivateKeyJwtTokenAsync(id, key)).Status);
        var shown = await AdminAsync(HttpMethod.Get, $"admin/clients/{id}");
        Assert.True(shown.Body.GetProperty("confidential").GetBoolean());

        // The operator changes the name and sends the rest back as shown.
        var updated = await AdminAsync(HttpMethod.Put, $"admin/clients/{id}", ServiceClient(id, "Renamed"));

        AssertStatus(HttpStatusCode.OK, updated);
        Assert.Null(updated.Str("secret"));
        Assert.Equal("Renamed", (await AdminAsync(HttpMethod.Get, $"admin/clients/{id}")).Str("name"));
        Assert.Equal(HttpStatusCode.OK, (await PrivateKeyJwtTokenAsync(id, key)).Status);
        var stored = await Server.Store.Clients.FindAsync(id, default);
        Assert.NotNull(stored!.Jwks);
        Assert.Null(stored.SecretHash);
        // What the API's model cannot express is kept, not reset to a default.
        Assert.False(stored.LogoutRevokesSession);
    }

    [Fact]
    public async Task RotateSecret_OfAPrivateKeyJwtClient_IsRefused_AndAddsNoSecret()
    {
        var (id, key) = await AddPrivateKeyJwtClientAsync();
        using var _ = key;

        var a = await AdminAsync(HttpMethod.Post, $"admin/clients/{id}/rotate-secret");

        AssertValidationProblem(a, "id");
        var stored = await Server.Store.Clients.FindAsync(id, default);
        Assert.Null(stored!.SecretHash);
        Assert.Equal(HttpStatusCode.OK, (await PrivateKeyJwtTokenAsync(id, key)).Status);
    }

    [Fact]
    public async Task DeleteClient_RevokesItsSessions_AndItCanNoLongerAuthenticate()
    {
        var id = f.Unique("app");
        var secret = await CreateClientAsync(WebClient(id));
        var (_, username) = await CreateUserAsync();
        var tokens = await LoginAsync(username, clientId: id, secret: secret);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(tokens.RefreshToken!, id, secret)).Status);

        var deleted = await AdminAsync(HttpMethod.Delete, $"admin/clients/{id}");

        AssertStatus(HttpStatusCode.NoContent, deleted);
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Get, $"admin/clients/{id}"));
        var sessions = Items(await AdminAsync(HttpMethod.Get, $"admin/sessions?clientId={id}"));
        Assert.Single(sessions);
        Assert.False(sessions[0].GetProperty("active").GetBoolean());
        Assert.Equal("revoked_by_admin", sessions[0].GetProperty("revokedReason").GetString());
        var store = await Server.Store.Sessions.FindAsync(Sid(tokens.AccessToken!), default);
        Assert.NotNull(store!.RevokedAt);
        Assert.Equal("invalid_client", (await RefreshAsync(tokens.RefreshToken!, id, secret)).Error);
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Delete, $"admin/clients/{id}"));
    }

    [Fact]
    public async Task RevokeClientSessions_EndsThatClientsSessionsOnly()
    {
        var id = f.Unique("app");
        var secret = await CreateClientAsync(WebClient(id));
        var (_, username) = await CreateUserAsync();
        var one = await LoginAsync(username, clientId: id, secret: secret);
        var two = await LoginAsync(username, clientId: id, secret: secret);
        var onWeb = await LoginAsync(username);

        var revoked = await AdminAsync(HttpMethod.Post, $"admin/clients/{id}/revoke-sessions");

        AssertStatus(HttpStatusCode.OK, revoked);
        Assert.Equal(2, revoked.Body.GetProperty("revoked").GetInt32());
        Assert.Equal("invalid_grant", (await RefreshAsync(one.RefreshToken!, id, secret)).Error);
        Assert.Equal("invalid_grant", (await RefreshAsync(two.RefreshToken!, id, secret)).Error);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(onWeb.RefreshToken!)).Status);
        // The client itself still works: only its sessions ended.
        Assert.Equal(HttpStatusCode.OK, (await AdminAsync(HttpMethod.Get, $"admin/clients/{id}")).Status);
    }

    // ---- Sessions --------------------------------------------------------------------------------------------

    [Fact]
    public async Task Sessions_ListByUserAndByClient_WithPagination()
    {
        var id = f.Unique("app");
        var secret = await CreateClientAsync(WebClient(id));
        var (userId, username) = await CreateUserAsync();
        var sids = new List<string>();
        for (var i = 0; i < 3; i++) sids.Add(Sid((await LoginAsync(username, clientId: id, secret: secret)).AccessToken!));
        var onWeb = Sid((await LoginAsync(username)).AccessToken!);

        var byUser = Items(await AdminAsync(HttpMethod.Get, $"admin/sessions?userId={userId}"));
        Assert.Equal(sids.Append(onWeb).Order(), byUser.Select(s => s.GetProperty("id").GetString()).Order());
        Assert.All(byUser, s =>
        {
            Assert.Equal(userId, s.GetProperty("userId").GetString());
            Assert.True(s.GetProperty("active").GetBoolean());
            Assert.Equal("127.0.0.1", s.GetProperty("ipAddress").GetString());
        });
        var byClient = Items(await AdminAsync(HttpMethod.Get, $"admin/sessions?clientId={id}"));
        Assert.Equal(sids.Order(), byClient.Select(s => s.GetProperty("id").GetString()).Order());
        Assert.All(byClient, s => Assert.Equal(id, s.GetProperty("clientId").GetString()));

        var page1 = await AdminAsync(HttpMethod.Get, $"admin/sessions?clientId={id}&limit=2");
        Assert.Equal(2, Items(page1).Count);
        Assert.Equal(2, page1.Body.GetProperty("nextOffset").GetInt32());
        var page2 = await AdminAsync(HttpMethod.Get, $"admin/sessions?clientId={id}&limit=2&offset=2");
        Assert.Single(Items(page2));
        Assert.Equal(JsonValueKind.Null, page2.Body.GetProperty("nextOffset").ValueKind);
        var paged = Items(page1).Concat(Items(page2)).Select(s => s.GetProperty("id").GetString()).ToList();
        Assert.Equal(sids.Order(), paged.Order());
        Assert.Empty(Items(await AdminAsync(HttpMethod.Get, $"admin/sessions?clientId={id}&offset=10")));
    }

    [Fact]
    public async Task Sessions_NeedExactlyOneOfUserIdOrClientId()
    {
        AssertValidationProblem(await AdminAsync(HttpMethod.Get, "admin/sessions"), "userId");
        AssertValidationProblem(await AdminAsync(HttpMethod.Get, "admin/sessions?userId=a&clientId=b"), "userId");
    }

    [Fact]
    public async Task RevokeOneSession_EndsThatOneOnly()
    {
        var (userId, username) = await CreateUserAsync();
        var target = await LoginAsync(username);
        var keep = await LoginAsync(username);
        var sid = Sid(target.AccessToken!);

        var revoked = await AdminAsync(HttpMethod.Delete, $"admin/sessions/{sid}");

        AssertStatus(HttpStatusCode.NoContent, revoked);
        Assert.Equal("invalid_grant", (await RefreshAsync(target.RefreshToken!)).Error);
        Assert.False(await IntrospectActiveAsync(target.AccessToken!));
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(keep.RefreshToken!)).Status);
        var sessions = Items(await AdminAsync(HttpMethod.Get, $"admin/sessions?userId={userId}"));
        var ended = sessions.Single(s => s.GetProperty("id").GetString() == sid);
        Assert.False(ended.GetProperty("active").GetBoolean());
        Assert.Equal("revoked_by_admin", ended.GetProperty("revokedReason").GetString());
        AssertProblem(HttpStatusCode.NotFound, await AdminAsync(HttpMethod.Delete, "admin/sessions/no-such-session"));
    }

    // ---- Audit -----------------------------------------------------------------------------------------------

    private static string Q(DateTimeOffset t) => Uri.EscapeDataString(t.ToString("O", System.Globalization.CultureInfo.InvariantCulture));

    private static List<long> Ids(Answer a) => Items(a).Select(e => e.GetProperty("id").GetInt64()).ToList();

    [Fact]
    public async Task Audit_FiltersByUserClientSessionTypeAndTime_NewestFirst_WithNextBefore()
    {
        var t0 = Server.Time.GetUtcNow();
        var (userId, username) = await CreateUserAsync();                  // user.changed at t0
        Server.Time.Advance(TimeSpan.FromMinutes(1));
        var t1 = Server.Time.GetUtcNow();
        var tokens = await LoginAsync(username);                             // login.succeeded, token.issued at t1
        var sid = Sid(tokens.AccessToken!);
        Server.Time.Advance(TimeSpan.FromMinutes(1));
        var t2 = Server.Time.GetUtcNow();
        AssertStatus(HttpStatusCode.NoContent, await AdminAsync(HttpMethod.Delete, $"admin/sessions/{sid}")); // session.revoked at t2
        var (otherId, otherName) = await CreateUserAsync();
        await LoginAsync(otherName);

        // By user: only theirs, newest first.
        var byUser = await AdminAsync(HttpMethod.Get, $"admin/audit?userId={userId}");
        AssertStatus(HttpStatusCode.OK, byUser);
        var events = Items(byUser);
        Assert.All(events, e => Assert.Equal(userId, e.GetProperty("userId").GetString()));
        Assert.Equal(Ids(byUser).OrderDescending(), Ids(byUser));
        var types = events.Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Contains("user.changed", types);
        Assert.Contains("login.succeeded", types);
        Assert.Contains("token.issued", types);
        Assert.Equal("session.revoked", types[0]);
        Assert.Equal("user.changed", types[^1]);
        Assert.Equal(JsonValueKind.Null, byUser.Body.GetProperty("nextBefore").ValueKind);

        // By session.
        var bySession = Items(await AdminAsync(HttpMethod.Get, $"admin/audit?sessionId={sid}"));
        Assert.NotEmpty(bySession);
        Assert.All(bySession, e => Assert.Equal(sid, e.GetProperty("sessionId").GetString()));
        Assert.Contains(bySession, e => e.GetProperty("type").GetString() == "token.issued");
        Assert.Contains(bySession, e => e.GetProperty("type").GetString() == "session.revoked");

        // By client, combined with user.
        var byClient = Items(await AdminAsync(HttpMethod.Get, $"admin/audit?clientId=web&userId={userId}"));
        Assert.NotEmpty(byClient);
        Assert.All(byClient, e => Assert.Equal("web", e.GetProperty("clientId").GetString()));
        Assert.DoesNotContain(byClient, e => e.GetProperty("type").GetString() == "user.changed");
        var anyWeb = Items(await AdminAsync(HttpMethod.Get, "admin/audit?clientId=web&limit=1000"));
        Assert.Contains(anyWeb, e => e.GetProperty("userId").GetString() == otherId);

        // By type.
        var byType = Items(await AdminAsync(HttpMethod.Get, $"admin/audit?userId={userId}&type=session.revoked"));
        var revokedEvent = Assert.Single(byType);
        Assert.Equal(sid, revokedEvent.GetProperty("sessionId").GetString());
        Assert.Contains("admin API (admin)", revokedEvent.GetProperty("reason").GetString(), StringComparison.Ordinal);

        // By time: from is inclusive, to is exclusive.
        var fromT2 = Items(await AdminAsync(HttpMethod.Get, $"admin/audit?userId={userId}&from={Q(t2)}"));
        Assert.Equal(["session.revoked"], fromT2.Select(e => e.GetProperty("type").GetString()));
        var toT1 = Items(await AdminAsync(HttpMethod.Get, $"admin/audit?userId={userId}&to={Q(t1)}"));
        Assert.Equal(["user.changed"], toT1.Select(e => e.GetProperty("type").GetString()));
        var window = Items(await AdminAsync(HttpMethod.Get, $"admin/audit?userId={userId}&from={Q(t1)}&to={Q(t2)}"));
        Assert.NotEmpty(window);
        Assert.All(window, e =>
        {
            var at = e.GetProperty("at").GetDateTimeOffset();
            Assert.True(at >= t1 - TimeSpan.FromMilliseconds(1) && at < t2, $"{at:O} outside [{t1:O}, {t2:O})");
        });
        Assert.Empty(Items(await AdminAsync(HttpMethod.Get, $"admin/audit?userId={userId}&to={Q(t0 - TimeSpan.FromMinutes(1))}")));

        // Paging backwards with limit and nextBefore reaches every event once, newest first.
        var all = Ids(byUser);
        var seen = new List<long>();
        long? before = null;
        for (var pages = 0; pages < 20; pages++)
        {
            var page = await AdminAsync(HttpMethod.Get, $"admin/audit?userId={userId}&limit=2" + (before is { } b ? $"&before={b}" : ""));
            var ids = Ids(page);
            Assert.True(ids.Count <= 2);
            if (before is { } bb) Assert.All(ids, id => Assert.True(id < bb));
            seen.AddRange(ids);
            var next = page.Body.GetProperty("nextBefore");
            if (next.ValueKind == JsonValueKind.Null) break;
            Assert.Equal(ids[^1], next.GetInt64());
            before = next.GetInt64();
        }
        Assert.Equal(all, seen);
    }

    // ---- Robustness and documentation ------------------------------------------------------------------------

    [Theory]
    [InlineData("POST", "admin/users", "{not json")]
    [InlineData("POST", "admin/users", "{\"username\": 5, \"password\": []}")]
    [InlineData("PATCH", "admin/users/{user}", "{\"disabled\": \"maybe\"}")]
    [InlineData("PATCH", "admin/users/{user}", "[1, 2")]
    [InlineData("POST", "admin/clients", "{\"id\": \"x\", \"grantTypes\": \"client_credentials\"}")]
    [InlineData("PUT", "admin/clients/x", "")]
    public async Task MalformedJsonBody_Is400_Not500(string method, string path, string json)
    {
        var (userId, _) = await CreateUserAsync();

        var a = await SendAsync(new HttpMethod(method), path.Replace("{user}", userId, StringComparison.Ordinal), await AdminTokenAsync(), json);

        AssertStatus(HttpStatusCode.BadRequest, a);
        Assert.Equal("application/problem+json", a.MediaType);
        var user = await AdminAsync(HttpMethod.Get, $"admin/users/{userId}");
        Assert.False(user.Body.GetProperty("disabled").GetBoolean());
    }

    [Fact]
    public async Task OpenApiDocument_IsServed_AndDescribesTheAdminApi()
    {
        using var http = Server.CreateClient();

        var response = await http.GetAsync("admin/openapi/admin.json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.StartsWith("3.", doc.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = doc.GetProperty("paths");
        foreach (var p in new[] { "/admin/users", "/admin/users/{id}", "/admin/users/{id}/revoke-sessions", "/admin/clients", "/admin/clients/{id}",
                     "/admin/clients/{id}/rotate-secret", "/admin/clients/{id}/revoke-sessions", "/admin/sessions", "/admin/sessions/{sid}", "/admin/audit" })
            Assert.True(paths.TryGetProperty(p, out _), $"{p} is not in the OpenAPI document");
        Assert.True(paths.GetProperty("/admin/users").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/admin/users/{id}").TryGetProperty("patch", out _));
    }
}
