using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Tessera.Samples.BffHost;

/// <summary>
/// A tiny API for the demo and the end-to-end tests: <c>GET /api/data</c> needs a Tessera access token for its
/// audience with the <c>api.read</c> scope. It asks Tessera's introspection endpoint (RFC 7662) about every token,
/// so a session ended at Tessera is refused at once. CORS only for the origins configured, for the token-mediating page.
/// </summary>
public static class DemoApi
{
    public static async Task RunAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.UseUrls((builder.Configuration["urls"] ?? "http://127.0.0.1:5091").Split(';')[0]);
        var c = builder.Configuration;
        string Need(string key) => c[key] is { Length: > 0 } v ? v : throw new InvalidOperationException($"demo-api needs --{key}=…");
        var authority = Need("Api:Authority").TrimEnd('/');
        var clientId = Need("Api:ClientId");
        var secret = Need("Api:ClientSecret");
        var audience = Need("Api:Audience");
        var requiredScope = c["Api:RequiredScope"] ?? "api.read";
        var origins = (c["Api:AllowedOrigins"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);

        var app = builder.Build();
        using var http = new HttpClient();
        var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.EscapeDataString(clientId) + ":" + Uri.EscapeDataString(secret)));

        app.Use(async (ctx, next) =>
        {
            var origin = ctx.Request.Headers.Origin.ToString();
            if (origin.Length > 0 && origins.Contains(origin))
            {
                ctx.Response.Headers.AccessControlAllowOrigin = origin;
                ctx.Response.Headers.Vary = "Origin";
                if (HttpMethods.IsOptions(ctx.Request.Method))
                {
                    ctx.Response.Headers.AccessControlAllowMethods = "GET";
                    ctx.Response.Headers.AccessControlAllowHeaders = "Authorization";
                    ctx.Response.Headers.AccessControlMaxAge = "600";
                    ctx.Response.StatusCode = StatusCodes.Status204NoContent;
                    return;
                }
            }
            await next(ctx);
        });

        app.MapGet("/api/data", async (HttpContext ctx) =>
        {
            var header = ctx.Request.Headers.Authorization.ToString();
            if (!header.StartsWith("Bearer ", StringComparison.Ordinal)) return Unauthorized(ctx, "no bearer token");
            using var request = new HttpRequestMessage(HttpMethod.Post, authority + "/connect/introspect")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = header[7..], ["token_type_hint"] = "access_token" }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", basic);
            using var response = await http.SendAsync(request, ctx.RequestAborted);
            if (!response.IsSuccessStatusCode)
                return Results.Json(new { error = "introspection_failed" }, statusCode: StatusCodes.Status503ServiceUnavailable);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ctx.RequestAborted));
            var t = doc.RootElement;
            if (!t.TryGetProperty("active", out var active) || active.ValueKind != JsonValueKind.True)
                return Unauthorized(ctx, "the token is not active");
            var aud = t.GetProperty("aud");
            var audiences = aud.ValueKind == JsonValueKind.Array ? aud.EnumerateArray().Select(a => a.GetString()).ToList() : [aud.GetString()];
            if (!audiences.Contains(audience)) return Unauthorized(ctx, "the token is for another audience");
            var scope = t.TryGetProperty("scope", out var s) ? s.GetString() ?? "" : "";
            if (!scope.Split(' ').Contains(requiredScope))
            {
                ctx.Response.Headers.WWWAuthenticate = $"Bearer error=\"insufficient_scope\", scope=\"{requiredScope}\"";
                return Results.Json(new { error = "insufficient_scope" }, statusCode: StatusCodes.Status403Forbidden);
            }
            return Results.Json(new
            {
                message = "Hello from the sample API",
                sub = t.GetProperty("sub").GetString(),
                scope,
                jti = t.GetProperty("jti").GetString(),
                issuedAt = t.GetProperty("iat").GetInt64(),
                expiresAt = t.GetProperty("exp").GetInt64(),
            });
        });
        app.MapGet("/healthz", () => "ok");
        await app.RunAsync();
    }

    private static IResult Unauthorized(HttpContext ctx, string why)
    {
        ctx.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        return Results.Json(new { error = "invalid_token", error_description = why }, statusCode: StatusCodes.Status401Unauthorized);
    }
}
