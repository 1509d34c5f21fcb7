using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Tessera.Core.Protocol;

namespace Tessera.Server.Protocol;

/// <summary>Reads an OAuth form POST strictly: right content type, bounded size, no repeated parameters.</summary>
public static class OAuthForm
{
    public const long MaxBodyBytes = 16 * 1024;

    public sealed record Result(IReadOnlyDictionary<string, string> Values, OAuthFailure? Failure);

    public static async Task<Result> ReadAsync(HttpContext http)
    {
        var empty = new Dictionary<string, string>();
        if (!HttpMethods.IsPost(http.Request.Method))
            return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "Use POST.", Status: StatusCodes.Status405MethodNotAllowed));
        if (!http.Request.HasFormContentType || !(http.Request.ContentType ?? "").StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
            return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The body must be application/x-www-form-urlencoded."));
        if (http.Request.ContentLength > MaxBodyBytes)
            return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The request body is too large.", Status: StatusCodes.Status413PayloadTooLarge));
        var limit = http.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (limit is { IsReadOnly: false }) limit.MaxRequestBodySize = MaxBodyBytes;
        IFormCollection form;
        try
        {
            form = await http.Request.ReadFormAsync(new FormOptions { ValueCountLimit = 64, KeyLengthLimit = 256, ValueLengthLimit = (int)MaxBodyBytes }, http.RequestAborted);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The request body is too large.", Status: StatusCodes.Status413PayloadTooLarge));
        }
        catch (Exception e) when (e is InvalidDataException or BadHttpRequestException or IOException or System.Text.DecoderFallbackException)
        {
            return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The request body is not a valid form."));
        }
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in form)
        {
            // RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than once."
            if (value.Count != 1)
                return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, $"The parameter '{Safe(key)}' is repeated."));
            var v = value.ToString();
            if (v.Contains('\uFFFD') || HasControl(v))
                return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, $"The parameter '{Safe(key)}' is not valid UTF-8 text."));
            if (v.Length > 0) values[key] = v;
        }
        return new(values, null);
    }

    /// <summary>Query-string parameters with the same rules (for the authorization endpoint's GET).</summary>
    public static (Dictionary<string, string> Values, string? RepeatedKey) FromQuery(IEnumerable<KeyValuePair<string, StringValues>> query)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in query)
        {
            if (value.Count != 1) return (values, key);
            if (!string.IsNullOrEmpty(value)) values[key] = value.ToString();
        }
        return (values, null);
    }

    private static bool HasControl(string v)
    {
        foreach (var c in v)
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return true;
        return false;
    }

    /// <summary>Parameter names echoed in errors are shortened and stripped of anything but plain characters.</summary>
    private static string Safe(string key) => new(key.Take(40).Where(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-').ToArray());
}
