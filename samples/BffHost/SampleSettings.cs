namespace Tessera.Samples.BffHost;

/// <summary>The sample page's own settings (the library's are under <c>Bff:</c>).</summary>
public sealed class SampleSettings(IConfiguration config)
{
    /// <summary>The API path the page calls through the proxy.</summary>
    public string ProxiedApiPath { get; } = config["Sample:ProxiedApi"] ?? "/api/data";

    /// <summary>Token-mediating page: the API URL the page calls directly with its access token.</summary>
    public string? DirectApiUrl { get; } = config["Sample:DirectApi"];

    /// <summary>Token-mediating page: the scopes it asks for (never more than it needs).</summary>
    public string MediatedScope { get; } = config["Sample:MediatedScope"] ?? "api.read";

    public string? DirectApiOrigin => DirectApiUrl is null ? null : new Uri(DirectApiUrl).GetLeftPart(UriPartial.Authority);
}

/// <summary>A strict CSP: scripts only from this origin; fetch only to this origin and, on the token-mediating page, the API.</summary>
public sealed class SecurityHeaders(RequestDelegate next, SampleSettings sample)
{
    public Task InvokeAsync(HttpContext http)
    {
        var connect = sample.DirectApiOrigin is { } api ? "'self' " + api : "'self'";
        http.Response.OnStarting(() =>
        {
            var h = http.Response.Headers;
            h.ContentSecurityPolicy = $"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; " +
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
            h.XContentTypeOptions = "nosniff";
            h["Referrer-Policy"] = "no-referrer";
            h.XFrameOptions = "DENY";
            return Task.CompletedTask;
        });
        return next(http);
    }
}
