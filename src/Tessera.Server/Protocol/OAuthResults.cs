using System.Text.Json;
using Tessera.Core.Protocol;

namespace Tessera.Server.Protocol;

/// <summary>
/// The one place where an OAuth error becomes an HTTP answer (RFC 6749 §5.2): JSON, 400 by default, 401 with
/// WWW-Authenticate for invalid_client when the client tried HTTP Basic.
/// </summary>
public static class OAuthResults
{
    public static Task WriteErrorAsync(HttpContext http, OAuthFailure failure, bool basicAuthUsed = false)
    {
        var status = failure.Status ?? failure.Error switch
        {
            OAuthErrors.InvalidClient => StatusCodes.Status401Unauthorized,
            OAuthErrors.ServerError => StatusCodes.Status500InternalServerError,
            _ => StatusCodes.Status400BadRequest,
        };
        if (failure.Error == OAuthErrors.InvalidClient)
        {
            // RFC 6749 §5.2: "If the client attempted to authenticate via the Authorization request header field,
            // the authorization server MUST respond with an HTTP 401 ... and include the WWW-Authenticate".
            if (basicAuthUsed) http.Response.Headers.WWWAuthenticate = "Basic realm=\"tessera\", charset=\"UTF-8\"";
        }
        if (status == StatusCodes.Status429TooManyRequests)
        {
            // RFC 9110 §10.2.3: delay-seconds, a whole number; rounded up so a client that waits exactly that long is let in.
            var seconds = failure.RetryAfter is { } wait ? Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)) : 60;
            http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return WriteJsonAsync(http, status, new Dictionary<string, object?>
        {
            ["error"] = failure.Error,
            ["error_description"] = failure.Description,
        });
    }

    /// <summary>Token-endpoint style JSON: never cached (RFC 6749 §5.1).</summary>
    public static async Task WriteJsonAsync(HttpContext http, int status, object body)
    {
        http.Response.StatusCode = status;
        NoStore(http);
        http.Response.ContentType = "application/json;charset=UTF-8";
        // Serialised whole first, so the answer carries a Content-Length and goes out with its headers in one write
        // instead of as chunks. Token-endpoint answers are small.
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, body.GetType(), JsonOptions);
        http.Response.ContentLength = bytes.Length;
        await http.Response.Body.WriteAsync(bytes);
    }

    public static void NoStore(HttpContext http)
    {
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers.Pragma = "no-cache";
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
