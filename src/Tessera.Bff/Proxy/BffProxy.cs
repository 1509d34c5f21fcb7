using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tessera.Bff.Endpoints;
using Tessera.Bff.Sessions;
using Yarp.ReverseProxy.Forwarder;

namespace Tessera.Bff.Proxy;

/// <summary>
/// The API proxy, on YARP's forwarder, in the order it runs: CSRF header, path check against the allow-list, the
/// session's access token (refreshed when due), forward with <c>Authorization: Bearer</c> and without the browser's
/// cookies; on the way back drop <c>Set-Cookie</c> and CORS headers, and turn a 401 from a session Tessera ended
/// into <c>{"error":"session_expired"}</c>.
/// </summary>
internal sealed class BffProxy : IDisposable
{
    private readonly IHttpForwarder _forwarder;
    private readonly BffTokenService _tokens;
    private readonly TesseraBffOptions _o;
    private readonly ILogger _logger;
    private readonly HttpMessageInvoker _client;

    public BffProxy(IHttpForwarder forwarder, BffTokenService tokens, IOptions<TesseraBffOptions> options, ILoggerFactory loggers)
    {
        _forwarder = forwarder;
        _tokens = tokens;
        _o = options.Value;
        _logger = loggers.CreateLogger(BffLog.Category);
        Routes = ProxyRoute.From(_o.Routes);
        _client = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(15),
        });
    }

    public IReadOnlyList<ProxyRoute> Routes { get; }

    public async Task HandleAsync(HttpContext http)
    {
        if (!BffHttp.HasCsrfHeader(http.Request))
        {
            await BffHttp.CsrfRefused().ExecuteAsync(http);
            return;
        }
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        var decision = ProxyPathGuard.Resolve(raw, Routes);
        if (decision.Verdict != ProxyPathGuard.Verdict.Forward)
        {
            BffLog.ProxyRefused(_logger, decision.Reason!);
            await (decision.Verdict == ProxyPathGuard.Verdict.Refused
                ? BffHttp.Error(StatusCodes.Status400BadRequest, "invalid_path", "The path is not allowed.")
                : BffHttp.Error(StatusCodes.Status404NotFound, "not_found", "No such API route.")).ExecuteAsync(http);
            return;
        }
        if (BffHttp.SessionKey(http, _o) is not { } key)
        {
            await SessionEndpoints.NotSignedIn(http, _o).ExecuteAsync(http);
            return;
        }
        var token = await _tokens.GetAccessTokenAsync(key, http.RequestAborted);
        if (token.Status != TokenStatus.Ok)
        {
            await (token.Status == TokenStatus.SessionExpired ? SessionEndpoints.Expired(http, _o) : SessionEndpoints.Unavailable()).ExecuteAsync(http);
            return;
        }

        var destination = decision.Destination!;
        var transformer = new Transformer(destination, token.AccessToken!, key, _tokens, _o);
        var error = await _forwarder.SendAsync(http, destination.GetLeftPart(UriPartial.Authority), _client,
            new ForwarderRequestConfig { ActivityTimeout = TimeSpan.FromSeconds(100) }, transformer);
        if (error != ForwarderError.None)
        {
            var detail = http.Features.Get<IForwarderErrorFeature>()?.Exception?.GetType().Name ?? error.ToString();
            BffLog.ProxyFailed(_logger, destination.GetLeftPart(UriPartial.Authority), detail);
            if (!http.Response.HasStarted)
            {
                http.Response.Headers.Clear();
                await BffHttp.Error(StatusCodes.Status502BadGateway, "upstream_unavailable", "The API could not be reached.").ExecuteAsync(http);
            }
        }
    }

    public void Dispose() => _client.Dispose();

    private sealed class Transformer(Uri destination, string accessToken, string sessionKey, BffTokenService tokens, TesseraBffOptions o) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext http, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken ct)
        {
            await base.TransformRequestAsync(http, proxyRequest, destinationPrefix, ct);
            // The checked destination, byte for byte: not one rebuilt from the decoded path.
            proxyRequest.RequestUri = destination;
            proxyRequest.Headers.Host = null;
            // The API gets the token, never the browser's cookies (the session id among them) or its CSRF marker.
            proxyRequest.Headers.Remove("Cookie");
            proxyRequest.Headers.Remove(BffHttp.CsrfHeader);
            proxyRequest.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", accessToken);
        }

        public override async ValueTask<bool> TransformResponseAsync(HttpContext http, HttpResponseMessage? proxyResponse, CancellationToken ct)
        {
            if (proxyResponse?.StatusCode == HttpStatusCode.Unauthorized && !await tokens.ConfirmSessionAsync(sessionKey, ct))
            {
                // The API refused a token whose session Tessera has ended: tell the SPA the session is over.
                await SessionEndpoints.Expired(http, o).ExecuteAsync(http);
                return false;
            }
            var copyBody = await base.TransformResponseAsync(http, proxyResponse, ct);
            var headers = http.Response.Headers;
            // The API must not set cookies on the backend's origin, nor open it to other origins with CORS.
            headers.Remove("Set-Cookie");
            foreach (var name in headers.Keys.Where(k => k.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase)).ToList())
                headers.Remove(name);
            return copyBody;
        }
    }
}
