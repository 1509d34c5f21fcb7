using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Server;

/// <summary>Small raw-HTTP helpers for the black-box server tests: hand-built requests the driver would never send.</summary>
internal static class ServerTestKit
{
    public static AuthenticationHeaderValue Basic(string clientId, string secret) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(clientId)}:{Uri.EscapeDataString(secret)}")));

    /// <summary>POSTs exactly these bytes to the token endpoint with this content type (null: no Content-Type).</summary>
    public static async Task<TokenAnswer> PostRawAsync(TesseraTestServer server, string path, byte[] body, string? contentType,
        AuthenticationHeaderValue? authorization = null, HttpMethod? method = null)
    {
        using var http = server.CreateClient();
        using var request = new HttpRequestMessage(method ?? HttpMethod.Post, path);
        if (method != HttpMethod.Get)
        {
            request.Content = new ByteArrayContent(body);
            if (contentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        if (authorization is not null) request.Headers.Authorization = authorization;
        var response = await http.SendAsync(request);
        return await ReadAnswerAsync(response);
    }

    public static Task<TokenAnswer> PostFormTextAsync(TesseraTestServer server, string formText, AuthenticationHeaderValue? authorization = null, string path = "connect/token") =>
        PostRawAsync(server, path, Encoding.UTF8.GetBytes(formText), "application/x-www-form-urlencoded", authorization);

    /// <summary>A form POST built by hand, so repeated keys and odd values reach the server as written.</summary>
    public static Task<TokenAnswer> PostFormAsync(TesseraTestServer server, IEnumerable<KeyValuePair<string, string>> form,
        AuthenticationHeaderValue? authorization = null, string path = "connect/token") =>
        PostFormTextAsync(server, string.Join("&", form.Select(kv => Uri.EscapeDataString(kv.Key) + "=" + Uri.EscapeDataString(kv.Value))), authorization, path);

    public static async Task<TokenAnswer> ReadAnswerAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        var body = default(JsonElement);
        if (text.Length > 0 && (response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.Ordinal) ?? false))
            body = JsonDocument.Parse(text).RootElement.Clone();
        return new TokenAnswer(response.StatusCode, body, response);
    }

    /// <summary>RFC 6749 §5.1: "Cache-Control: no-store" and "Pragma: no-cache" on every token-endpoint answer.</summary>
    public static void AssertNoStore(HttpResponseMessage response)
    {
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.Equal("no-cache", response.Headers.Pragma.ToString());
    }

    /// <summary>An RFC 6749 §5.2 error: exact status, exact code, JSON, never cached.</summary>
    public static void AssertError(TokenAnswer answer, HttpStatusCode status, string error)
    {
        Assert.True(answer.Status == status && answer.Error == error,
            $"expected {(int)status} {error}, got {(int)answer.Status} {answer.Body}");
        Assert.Equal("application/json", answer.Response.Content.Headers.ContentType?.MediaType);
        AssertNoStore(answer.Response);
    }

    public static bool HasWwwAuthenticate(HttpResponseMessage response) => response.Headers.WwwAuthenticate.Count > 0;

    /// <summary>The query of a redirect's Location, which must be an absolute URL starting with <paramref name="prefix"/>.</summary>
    public static Dictionary<string, string> RedirectQuery(HttpResponseMessage response, string prefix = OAuthDriver.RedirectUri)
    {
        Assert.True(response.StatusCode is HttpStatusCode.Found or HttpStatusCode.SeeOther, $"expected a redirect, got {(int)response.StatusCode}");
        var location = response.Headers.Location?.ToString();
        Assert.NotNull(location);
        Assert.StartsWith(prefix + "?", location, StringComparison.Ordinal);
        return QueryHelpers.ParseQuery(new Uri(location).Query).ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
    }

    /// <summary>The raw Set-Cookie lines for one cookie name.</summary>
    public static List<string> SetCookies(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues("Set-Cookie", out var values)
            ? values.Where(v => v.StartsWith(name + "=", StringComparison.Ordinal)).ToList()
            : [];

    public static string CookieValue(string setCookie) => setCookie[(setCookie.IndexOf('=') + 1)..].Split(';')[0];
}

/// <summary>
/// One real server (Kestrel + SQLite file) per test class, with the user "alice" registered once. Each test registers
/// its own clients under unique ids, so tests in a class share nothing but the process.
/// </summary>
public sealed class SharedServer : IAsyncLifetime
{
    public const string User = "alice";
    public const string Password = "alice-password-1";

    public TesseraTestServer Server { get; private set; } = null!;
    public OAuthDriver Driver { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await TesseraTestServer.StartAsync();
        Driver = new OAuthDriver(Server);
        await Server.AddUserAsync(User, Password);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public static string Unique(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..10];
}
