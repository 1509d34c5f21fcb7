namespace Tessera.Server.Hosting;

/// <summary>Security headers on every answer; HSTS only over https (RFC 6797 §7.2 forbids it over http).</summary>
public sealed class SecurityHeadersMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext http)
    {
        http.Response.OnStarting(() =>
        {
            var h = http.Response.Headers;
            h.XContentTypeOptions = "nosniff";
            h["Referrer-Policy"] = "no-referrer";
            // No form-action: browsers apply it to the redirects after a form POST, and sign-in ends in a redirect
            // to the client's own origin. Forms here only post to this origin anyway.
            h.ContentSecurityPolicy = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";
            h.XFrameOptions = "DENY";
            if (http.Request.IsHttps) h.StrictTransportSecurity = "max-age=31536000; includeSubDomains";
            return Task.CompletedTask;
        });
        return next(http);
    }
}
