using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tessera.Tests.Infrastructure;
using static Tessera.Tests.Server.ServerTestKit;

namespace Tessera.Tests.Server;

/// <summary>RFC 6749 §3.2 and §5.2: what the token endpoint says to requests that are malformed before any grant runs.</summary>
public sealed class TokenEndpointErrorTests(SharedServer shared) : IClassFixture<SharedServer>, IAsyncLifetime
{
    private readonly TesseraTestServer _server = shared.Server;
    private readonly OAuthDriver _driver = shared.Driver;
    private string _clientId = null!;
    private string _secret = null!;

    public async Task InitializeAsync()
    {
        var (client, secret) = await _server.AddClientAsync(TestClients.Confidential(SharedServer.Unique("web")), confidential: true);
        (_clientId, _secret) = (client.Id, secret!);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private AuthenticationHeaderValue Auth => Basic(_clientId, _secret);

    [Theory]
    [InlineData("GET")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task Token_Returns405InvalidRequestWithAllowPost_WhenMethodIsNotPost(string method)
    {
        var answer = await PostRawAsync(_server, "connect/token", Encoding.UTF8.GetBytes("grant_type=client_credentials"),
            "application/x-www-form-urlencoded", Auth, new HttpMethod(method));

        AssertError(answer, HttpStatusCode.MethodNotAllowed, "invalid_request");
        Assert.Equal(["POST"], answer.Response.Content.Headers.Allow);
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("text/plain")]
    [InlineData("multipart/form-data; boundary=xyz")]
    [InlineData(null)]
    public async Task Token_Returns400InvalidRequest_WhenContentTypeIsNotFormUrlEncoded(string? contentType)
    {
        var body = contentType == "application/json" ? "{\"grant_type\":\"client_credentials\"}" : "grant_type=client_credentials";
        var answer = await PostRawAsync(_server, "connect/token", Encoding.UTF8.GetBytes(body), contentType, Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_AcceptsFormContentTypeWithCharset()
    {
        var answer = await PostRawAsync(_server, "connect/token", Encoding.UTF8.GetBytes("grant_type=client_credentials"),
            "application/x-www-form-urlencoded; charset=UTF-8", Auth);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
    }

    [Theory]
    [InlineData("grant_type=client_credentials&grant_type=client_credentials")]
    [InlineData("grant_type=client_credentials&scope=api.read&scope=api.write")]
    [InlineData("grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com&resource=https%3A%2F%2Fapi.example.com")]
    public async Task Token_Returns400InvalidRequest_WhenAParameterIsRepeated(string form)
    {
        var answer = await PostFormTextAsync(_server, form, Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenClientIdIsRepeatedInThePost()
    {
        var answer = await PostFormAsync(_server,
        [
            new("grant_type", "client_credentials"), new("client_id", _clientId), new("client_id", _clientId), new("client_secret", _secret),
        ]);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns413OrBadRequestButNever500_WhenTheBodyIsOneMegabyte()
    {
        var body = Encoding.ASCII.GetBytes("grant_type=client_credentials&junk=" + new string('a', 1024 * 1024));
        var answer = await PostRawAsync(_server, "connect/token", body, "application/x-www-form-urlencoded", Auth);

        Assert.True(answer.Status is HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.BadRequest, $"got {(int)answer.Status}");
        AssertError(answer, answer.Status, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns413OrBadRequestButNever500_WhenAChunkedBodyWithoutLengthIsOneMegabyte()
    {
        using var http = _server.CreateClient();
        var bytes = Encoding.ASCII.GetBytes("grant_type=client_credentials&junk=" + new string('a', 1024 * 1024));
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token") { Content = new StreamContent(new MemoryStream(bytes)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
        request.Headers.TransferEncodingChunked = true;
        request.Headers.Authorization = Auth;
        var answer = await ReadAnswerAsync(await http.SendAsync(request));

        Assert.True(answer.Status is HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.BadRequest, $"got {(int)answer.Status}");
        AssertError(answer, answer.Status, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenManyParametersAreSent()
    {
        var form = "grant_type=client_credentials" + string.Concat(Enumerable.Range(0, 200).Select(i => $"&p{i}=x"));
        var answer = await PostFormTextAsync(_server, form, Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenAValueHasRawInvalidUtf8Bytes()
    {
        var body = Encoding.ASCII.GetBytes("grant_type=client_credentials&scope=api.read")
            .Concat(new byte[] { 0xFF, 0xFE, 0xC3 }).ToArray();
        var answer = await PostRawAsync(_server, "connect/token", body, "application/x-www-form-urlencoded", Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Theory]
    [InlineData("grant_type=client_credentials&scope=api.read%FF")]
    [InlineData("grant_type=client_credentials&scope=%C3%28")]
    [InlineData("grant_type=client_credentials&scope=%ED%A0%80")]
    public async Task Token_Returns400InvalidRequest_WhenAValueIsPercentEncodedInvalidUtf8(string form)
    {
        var answer = await PostFormTextAsync(_server, form, Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenAParameterNameIsInvalidUtf8()
    {
        var answer = await PostFormTextAsync(_server, "grant_type=client_credentials&%FF%FE=1", Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenAValueHasControlCharacters()
    {
        var answer = await PostFormTextAsync(_server, "grant_type=client_credentials&scope=api.read%00", Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenGrantTypeIsMissing()
    {
        var answer = await PostFormTextAsync(_server, "scope=api.read", Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Token_Returns400InvalidRequest_WhenGrantTypeIsEmpty()
    {
        var answer = await PostFormTextAsync(_server, "grant_type=&scope=api.read", Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Theory]
    [InlineData("urn:example:unknown")]
    [InlineData("CLIENT_CREDENTIALS")]
    [InlineData("implicit")]
    [InlineData("token")]
    public async Task Token_Returns400UnsupportedGrantType_WhenGrantTypeIsUnknown(string grantType)
    {
        var answer = await PostFormAsync(_server, [new("grant_type", grantType)], Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "unsupported_grant_type");
    }

    [Fact]
    public async Task Token_Returns400UnsupportedGrantType_ForThePasswordGrantEvenWithRealCredentials()
    {
        var answer = await PostFormAsync(_server,
            [new("grant_type", "password"), new("username", SharedServer.User), new("password", SharedServer.Password), new("scope", "openid")], Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "unsupported_grant_type");
        Assert.Null(answer.AccessToken);
    }

    [Fact]
    public async Task Token_Returns401InvalidClient_WhenTheBodyIsEmptyAndNoClientAuthenticates()
    {
        var answer = await PostFormTextAsync(_server, "");

        AssertError(answer, HttpStatusCode.Unauthorized, "invalid_client");
        Assert.False(HasWwwAuthenticate(answer.Response));
    }

    [Fact]
    public async Task Token_SendsNoStoreAndNoCache_OnSuccess()
    {
        var answer = await _driver.TokenAsync(new() { ["grant_type"] = "client_credentials" }, _clientId, _secret);

        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("application/json", answer.Response.Content.Headers.ContentType?.MediaType);
        AssertNoStore(answer.Response);
    }

    [Fact]
    public async Task Token_ErrorDescriptionsDoNotEchoUnsafeParameterNames()
    {
        var answer = await PostFormTextAsync(_server, "grant_type=client_credentials&%3Cscript%3E=1&%3Cscript%3E=2", Auth);

        AssertError(answer, HttpStatusCode.BadRequest, "invalid_request");
        Assert.DoesNotContain("<", answer.Str("error_description") ?? "");
    }
}
