using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tessera.Bench.LoadGen;

/// <summary>The answer of a token or introspection request, as the load generator needs it.</summary>
public readonly record struct Answer(int Status, string? Error, string? AccessToken, string? RefreshToken, bool? Active)
{
    public bool Ok => Status == 200 && Error is null;
    public string ErrorKey => $"{Status} {Error ?? "-"}";
}

/// <summary>One user session a virtual client owns: the newest refresh token and the last access token.</summary>
public sealed class SessionState(string refreshToken, string? accessToken, int node = 0)
{
    public string RefreshToken { get; set; } = refreshToken;
    public string? AccessToken { get; set; } = accessToken;

    /// <summary>The node (index into the target's base URLs) the session's next refresh goes to.</summary>
    private int _node = node;

    /// <summary>The node for this refresh; the next refresh goes to the next node (with several nodes every rotation crosses nodes).</summary>
    public int NextNode(int nodes)
    {
        var n = _node % nodes;
        _node = n + 1;
        return n;
    }
}

/// <summary>Token-endpoint calls and the browser flow (authorize, login form, code, PKCE) over real HTTP.</summary>
/// <remarks>The timed requests go through <see cref="RawHttpEndpoint"/>; the browser flow, which is not timed per request, through HttpClient.</remarks>
public sealed partial class OAuthClient(HttpClient http, Target target) : IDisposable
{
    private static readonly MediaTypeHeaderValue FormType = new("application/x-www-form-urlencoded");
    private readonly RawHttpEndpoint[] _token = target.BaseUrls.Select(u => new RawHttpEndpoint(new Uri(u + "/connect/token"), target.BasicHeader)).ToArray();
    private readonly RawHttpEndpoint[] _introspect = target.BaseUrls.Select(u => new RawHttpEndpoint(new Uri(u + "/connect/introspect"), target.BasicHeader)).ToArray();

    public void Dispose()
    {
        foreach (var e in _token.Concat(_introspect)) e.Dispose();
    }
    private int _next = -1;

    public Target Target => target;

    /// <summary>Round-robin over the nodes for requests that belong to no session (one node: always 0).</summary>
    private int NextNode() => _token.Length == 1 ? 0 : (int)((uint)Interlocked.Increment(ref _next) % (uint)_token.Length);

    /// <summary>Refreshes the session's token on the session's next node (the caller stores the answer's tokens).</summary>
    public Task<Answer> RefreshAsync(SessionState session, CancellationToken ct) =>
        PostAsync(_token[session.NextNode(_token.Length)], "grant_type=refresh_token&refresh_token=" + Uri.EscapeDataString(session.RefreshToken), ct);

    public Task<Answer> ClientCredentialsAsync(CancellationToken ct) =>
        PostAsync(_token[NextNode()], "grant_type=client_credentials&scope=api", ct);

    public Task<Answer> IntrospectAsync(string token, CancellationToken ct) =>
        PostAsync(_introspect[NextNode()], "token=" + Uri.EscapeDataString(token), ct);

    private static async Task<Answer> PostAsync(RawHttpEndpoint endpoint, string form, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var (status, body) = await endpoint.PostAsync(form);
        return Parse(status, body);
    }

    private static Answer Parse(int status, byte[] body)
    {
        string? error = null, access = null, refresh = null;
        bool? active = null;
        if (body.Length > 0 && body[0] is (byte)'{' or (byte)' ' or (byte)'\n' or (byte)'\r')
        {
            try
            {
                var reader = new Utf8JsonReader(body);
                var depth = 0;
                while (reader.Read())
                {
                    if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) depth++;
                    else if (reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray) depth--;
                    else if (reader.TokenType == JsonTokenType.PropertyName && depth == 1)
                    {
                        if (reader.ValueTextEquals("error")) { reader.Read(); error = reader.GetString(); }
                        else if (reader.ValueTextEquals("access_token")) { reader.Read(); access = reader.GetString(); }
                        else if (reader.ValueTextEquals("refresh_token")) { reader.Read(); refresh = reader.GetString(); }
                        else if (reader.ValueTextEquals("active")) { reader.Read(); active = reader.TokenType == JsonTokenType.True; }
                    }
                }
            }
            catch (JsonException)
            {
                error ??= "unparsable_body";
            }
        }
        else if (status != 200)
        {
            error = "non_json_body";
        }
        return new Answer(status, error, access, refresh, active);
    }

    /// <summary>
    /// The whole front channel and the code exchange, the way a browser and a client library would do it:
    /// authorize, follow redirects with a cookie jar, fill in the login form when one is shown (Tessera: antiforgery
    /// token, username, password; Argon2id runs on the server), take the code from the redirect, redeem it with the
    /// PKCE verifier. Peers that log the user in without a form just redirect. With several nodes every request of
    /// the flow goes to the next node (a load balancer without affinity): the redirects, the login form, its POST and
    /// the code exchange each land on another node than the request before.
    /// </summary>
    public async Task<SessionState> LoginAsync(CancellationToken ct)
    {
        if (target.Flavor == Flavor.Ceiling)
            return new SessionState("tsr_" + Base64Url(RandomNumberGenerator.GetBytes(16)) + Base64Url(RandomNumberGenerator.GetBytes(32)), null);
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var state = Base64Url(RandomNumberGenerator.GetBytes(12));
        var url = new Uri($"{target.BaseUrls[NextNode()]}/connect/authorize?response_type=code&client_id={Uri.EscapeDataString(target.ClientId)}" +
            $"&redirect_uri={Uri.EscapeDataString(Target.RedirectUri)}&scope={Uri.EscapeDataString(Target.Scope)}&state={state}" +
            $"&code_challenge={challenge}&code_challenge_method=S256" +
            // oidc-provider keeps offline_access only with prompt=consent (its scopes.js).
            (target.Flavor == Flavor.OidcProvider ? "&prompt=consent" : ""));
        var jar = new CookieJar();
        var response = await SendAsync(HttpMethod.Get, url, null, jar, ct);
        string? code = null;
        try
        {
            for (var hops = 0; hops < 12 && code is null; hops++)
            {
                var status = (int)response.StatusCode;
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    var next = location.IsAbsoluteUri ? location : new Uri(url, location);
                    if (_token.Length > 1 && IsNode(next)) next = new Uri(target.BaseUrls[NextNode()] + next.PathAndQuery);
                    if (next.AbsoluteUri.StartsWith(Target.RedirectUri, StringComparison.Ordinal))
                    {
                        var query = ParseQuery(next.Query);
                        if (!query.TryGetValue("code", out code))
                            throw new FlowException("authorize_" + (query.GetValueOrDefault("error") ?? "no_code"));
                        if (query.GetValueOrDefault("state") != state) throw new FlowException("authorize_state_mismatch");
                        break;
                    }
                    url = next;
                    var previous = response;
                    response = await SendAsync(HttpMethod.Get, url, null, jar, ct);
                    previous.Dispose();
                    continue;
                }
                var html = await response.Content.ReadAsStringAsync(ct);
                if (status == 200 && html.Contains("name=\"password\"", StringComparison.Ordinal))
                {
                    var form = "__RequestVerificationToken=" + Uri.EscapeDataString(Field(AntiforgeryField(), html)) +
                        "&username=" + Uri.EscapeDataString(target.Username) + "&password=" + Uri.EscapeDataString(target.Password) +
                        "&returnUrl=" + Uri.EscapeDataString(Field(ReturnUrlField(), html));
                    url = new Uri(target.BaseUrls[NextNode()] + "/login");
                    var previous = response;
                    response = await SendAsync(HttpMethod.Post, url, form, jar, ct);
                    previous.Dispose();
                    continue;
                }
                throw new FlowException($"authorize_unexpected_{status}");
            }
        }
        finally
        {
            response.Dispose();
        }
        if (code is null) throw new FlowException("authorize_too_many_redirects");
        var exchangeNode = NextNode();
        var answer = await PostAsync(_token[exchangeNode], "grant_type=authorization_code&code=" + Uri.EscapeDataString(code) +
            "&redirect_uri=" + Uri.EscapeDataString(Target.RedirectUri) + "&code_verifier=" + verifier, ct);
        if (!answer.Ok || answer.RefreshToken is null) throw new FlowException("code_exchange_" + answer.ErrorKey.Replace(' ', '_'));
        return new SessionState(answer.RefreshToken, answer.AccessToken, exchangeNode + 1);
    }

    private bool IsNode(Uri url) => target.BaseUrls.Any(b => url.GetLeftPart(UriPartial.Authority).Equals(b, StringComparison.OrdinalIgnoreCase));

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, string? form, CookieJar jar, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, url);
        if (jar.Header(url) is { } cookies) request.Headers.TryAddWithoutValidation("Cookie", cookies);
        if (form is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(form));
            request.Content.Headers.ContentType = FormType;
        }
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        if (response.Headers.TryGetValues("Set-Cookie", out var setCookies))
            foreach (var c in setCookies) jar.Store(url, c);
        return response;
    }

    private static string Field(Regex regex, string html)
    {
        var m = regex.Match(html);
        if (!m.Success) throw new FlowException("login_form_field_missing");
        return WebUtility.HtmlDecode(m.Groups[1].Value);
    }

    private static Dictionary<string, string> ParseQuery(string query)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            var key = Uri.UnescapeDataString((eq < 0 ? pair : pair[..eq]).Replace('+', ' '));
            result[key] = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
        }
        return result;
    }

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    [GeneratedRegex("name=\"returnUrl\" value=\"([^\"]*)\"")]
    private static partial Regex ReturnUrlField();
}

public sealed class FlowException(string code) : Exception(code)
{
    public string Code { get; } = code;
}

/// <summary>A minimal RFC 6265 cookie jar for one host: name + path, default path, deletion by Max-Age/Expires.</summary>
public sealed class CookieJar
{
    private readonly Dictionary<(string Name, string Path), string> _cookies = [];

    public void Store(Uri requestUrl, string setCookie)
    {
        var parts = setCookie.Split(';');
        var eq = parts[0].IndexOf('=');
        if (eq <= 0) return;
        var name = parts[0][..eq].Trim();
        var value = parts[0][(eq + 1)..].Trim();
        var lastSlash = requestUrl.AbsolutePath.LastIndexOf('/');
        var path = lastSlash <= 0 ? "/" : requestUrl.AbsolutePath[..lastSlash];
        var delete = value.Length == 0;
        foreach (var attribute in parts.Skip(1))
        {
            var a = attribute.Trim();
            var aeq = a.IndexOf('=');
            var key = (aeq < 0 ? a : a[..aeq]).ToLowerInvariant();
            var v = aeq < 0 ? "" : a[(aeq + 1)..];
            if (key == "path" && v.StartsWith('/')) path = v;
            else if (key == "max-age" && long.TryParse(v, out var age) && age <= 0) delete = true;
            else if (key == "expires" && DateTimeOffset.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var exp) && exp < DateTimeOffset.UtcNow) delete = true;
        }
        if (delete) _cookies.Remove((name, path));
        else _cookies[(name, path)] = value;
    }

    public string? Header(Uri url)
    {
        var path = url.AbsolutePath;
        var matches = _cookies
            .Where(c => path == c.Key.Path || path.StartsWith(c.Key.Path.EndsWith('/') ? c.Key.Path : c.Key.Path + "/", StringComparison.Ordinal))
            .OrderByDescending(c => c.Key.Path.Length)
            .Select(c => c.Key.Name + "=" + c.Value)
            .ToList();
        return matches.Count == 0 ? null : string.Join("; ", matches);
    }
}
