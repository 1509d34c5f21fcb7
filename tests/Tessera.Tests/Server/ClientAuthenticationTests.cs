using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tessera.Tests.Infrastructure;
using static Tessera.Tests.Server.ServerTestKit;

namespace Tessera.Tests.Server;

/// <summary>RFC 6749 §2.3: client_secret_basic, client_secret_post, none; exactly one method; §5.2 invalid_client.</summary>
public sealed class ClientAuthenticationTests(SharedServer shared) : IClassFixture<SharedServer>, IAsyncLifetime
{
    private const string Password = SharedServer.Password;
    private readonly TesseraTestServer _server = shared.Server;
    private readonly OAuthDriver _driver = shared.Driver;
    private string _confidential = null!;
    private string _secret = null!;
    private string _public = null!;

    public async Task InitializeAsync()
    {
        var (c, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("web")), confidential: true);
        (_confidential, _secret) = (c.Id, secret!);
        _public = (await _server.AddClientAsync(TestClients.Public(SharedServer.Unique("spa")), confidential: false)).Client.Id;
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private static readonly KeyValuePair<string, string> ClientCredentials = new("grant_type", "client_credentials");

    [Fact]
    public async Task Token_AcceptsClientSecretBasic()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials], Basic(_confidential, _secret));

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.NotNull(answer.AccessToken);
    }

    [Fact]
    public async Task Token_AcceptsClientSecretBasic_WithAMatchingClientIdInTheBody()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", _confidential)], Basic(_confidential, _secret));

        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Fact]
    public async Task Token_AcceptsClientSecretPost()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", _confidential), new("client_secret", _secret)]);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.NotNull(answer.AccessToken);
    }

    [Fact]
    public async Task Token_AcceptsAClientIdAndSecretThatNeedFormEncodingInBasic()
    {
        var (odd, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("odd client:1+2/é")), confidential: true);

        var answer = await PostFormAsync(_server, [ClientCredentials], Basic(odd.Id, secret!));

        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenBasicAndPostSecretAreBothUsed()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", _confidential), new("client_secret", _secret)], Basic(_confidential, _secret));

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenBodyClientIdDiffersFromTheBasicOne()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", _public)], Basic(_confidential, _secret));

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns401WithWwwAuthenticate_WhenBasicClientIsUnknown()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials], Basic("no-such-client", _secret));

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.Equal("Basic", answer.Response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task Token_Returns401WithoutWwwAuthenticate_WhenPostedClientIsUnknown()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", "no-such-client"), new("client_secret", _secret)]);

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.False(HasWwwAuthenticate(answer.Response));
    }

    [Fact]
    public async Task Token_Returns401WithoutWwwAuthenticate_WhenAnUnknownClientSendsOnlyItsId()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", "no-such-client")]);

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.False(HasWwwAuthenticate(answer.Response));
    }

    [Fact]
    public async Task Token_Returns401WithWwwAuthenticate_WhenBasicSecretIsWrong()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials], Basic(_confidential, _secret + "x"));

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.Equal("Basic", answer.Response.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Token_Returns401WithoutWwwAuthenticate_WhenPostedSecretIsWrong()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", _confidential), new("client_secret", "tss_wrong")]);

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.False(HasWwwAuthenticate(answer.Response));
    }

    [Fact]
    public async Task Token_Returns401InvalidClient_WhenTheUnknownClientAndTheWrongSecretLookAlike()
    {
        var unknown = await PostFormAsync(_server, [ClientCredentials], Basic("no-such-client", _secret));
        var wrong = await PostFormAsync(_server, [ClientCredentials], Basic(_confidential, _secret + "x"));

        Assert.Equal(unknown.Status, wrong.Status);
        Assert.Equal(unknown.Body.ToString(), wrong.Body.ToString());
    }

    [Fact]
    public async Task Token_Returns401_WhenAConfidentialClientSendsNoSecret()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials, new("client_id", _confidential)]);

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.False(HasWwwAuthenticate(answer.Response));
    }

    [Theory]
    [InlineData("Basic !!!not-base64!!!")]
    [InlineData("Basic ")]
    [InlineData("Basic bm8tY29sb24=")]            // "no-colon"
    [InlineData("Basic OnNlY3JldA==")]            // ":secret" (no client id)
    public async Task Token_Returns401WithWwwAuthenticate_WhenTheBasicHeaderIsMalformed(string header)
    {
        using var http = _server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent([ClientCredentials]),
        };
        request.Headers.TryAddWithoutValidation("Authorization", header);
        var answer = await ReadAnswerAsync(await http.SendAsync(request));

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.Equal("Basic", answer.Response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task Token_Returns401WithWwwAuthenticate_WhenTheBasicSecretIsEmpty()
    {
        var header = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_confidential + ":")));

        var answer = await PostFormAsync(_server, [ClientCredentials], header);

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.Equal("Basic", answer.Response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task Token_Returns401InvalidClient_WhenTheAuthorizationSchemeIsNotBasic()
    {
        var answer = await PostFormAsync(_server, [ClientCredentials], new AuthenticationHeaderValue("Bearer", "abc"));

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
    }

    [Fact]
    public async Task Token_AcceptsAPublicClientWithAuthenticationNone()
    {
        var answer = await _driver.LoginAndExchangeAsync(_public, null, SharedServer.User, Password);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.NotNull(answer.AccessToken);
        Assert.NotNull(answer.RefreshToken);
    }

    [Fact]
    public async Task Token_Returns401InvalidClient_WhenAPublicClientPostsASecret()
    {
        var first = await _driver.LoginAndExchangeAsync(_public, null, SharedServer.User, Password);

        var answer = await PostFormAsync(_server,
            [new("grant_type", "refresh_token"), new("refresh_token", first.RefreshToken!), new("client_id", _public), new("client_secret", "tss_made-up")]);

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.False(HasWwwAuthenticate(answer.Response));
        // The refused request consumed nothing: the refresh token still works.
        var refreshed = await _driver.RefreshAsync(_public, null, first.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
    }

    [Fact]
    public async Task Token_Returns401WithWwwAuthenticate_WhenAPublicClientUsesBasic()
    {
        var answer = await PostFormAsync(_server, [new("grant_type", "refresh_token"), new("refresh_token", "tsr_x")], Basic(_public, "tss_made-up"));

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.Equal("Basic", answer.Response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task Refresh_WithAWrongClientSecret_Returns401AndLeavesTheRefreshTokenUsable()
    {
        var first = await _driver.LoginAndExchangeAsync(_confidential, _secret, SharedServer.User, Password);

        var refused = await _driver.RefreshAsync(_confidential, _secret + "x", first.RefreshToken!);
        AssertError(refused, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.Equal("Basic", refused.Response.Headers.WwwAuthenticate.Single().Scheme);

        var refreshed = await _driver.RefreshAsync(_confidential, _secret, first.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
        Assert.NotEqual(first.RefreshToken, refreshed.RefreshToken);
    }

    [Fact]
    public async Task Refresh_PresentedByAnotherClient_ReturnsInvalidGrantAndLeavesTheRefreshTokenUsable()
    {
        var first = await _driver.LoginAndExchangeAsync(_public, null, SharedServer.User, Password);
        var (other, otherSecret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("other")), confidential: true);

        var refused = await _driver.RefreshAsync(other.Id, otherSecret, first.RefreshToken!);
        AssertError(refused, HttpStatusCode.BadRequest, "invalid_grant");

        var refreshed = await _driver.RefreshAsync(_public, null, first.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
    }

    [Fact]
    public async Task Refresh_WithABroaderScope_ReturnsInvalidScopeAndLeavesTheRefreshTokenUsable()
    {
        var first = await _driver.LoginAndExchangeAsync(_public, null, SharedServer.User, Password, "openid offline_access api.read");

        var refused = await _driver.RefreshAsync(_public, null, first.RefreshToken!, "openid offline_access api.read api.write");
        AssertError(refused, HttpStatusCode.BadRequest, "invalid_scope");

        var refreshed = await _driver.RefreshAsync(_public, null, first.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshed.Status);
    }
}
