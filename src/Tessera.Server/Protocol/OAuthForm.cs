using System.Text;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Tessera.Core.Protocol;

namespace Tessera.Server.Protocol;

/// <summary>Reads an OAuth form POST strictly: right content type, bounded size, no repeated parameters.</summary>
public static class OAuthForm
{
    public const long MaxBodyBytes = 16 * 1024;
    private const int MaxParameters = 64;
    private const int MaxKeyLength = 256;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

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
        byte[]? body;
        try
        {
            body = await ReadBodyAsync(http.Request.Body, http.RequestAborted);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            body = null;
        }
        catch (Exception e) when (e is BadHttpRequestException or IOException)
        {
            return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The request body is not a valid form."));
        }
        if (body is null)
            return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The request body is too large.", Status: StatusCodes.Status413PayloadTooLarge));
        // Parsed here rather than by ReadFormAsync: its decoder keeps a percent-encoded invalid UTF-8 sequence ("%FF")
        // as literal text, and RFC 6749 Appendix B says the form is UTF-8 whatever charset the Content-Type claims.
        var form = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var pairs = 0;
        foreach (var segment in Split(body, (byte)'&'))
        {
            if (segment.Length == 0) continue;
            if (++pairs > MaxParameters)
                return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The request has too many parameters."));
            var eq = segment.AsSpan().IndexOf((byte)'=');
            string key, value;
            try
            {
                key = Decode(eq < 0 ? segment : segment[..eq]);
                value = eq < 0 ? "" : Decode(segment[(eq + 1)..]);
            }
            catch (DecoderFallbackException)
            {
                return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "The request body is not valid UTF-8 text."));
            }
            if (key.Length > MaxKeyLength || key.Contains('\uFFFD') || HasControl(key))
                return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, "A parameter name is not valid."));
            if (!form.TryGetValue(key, out var list)) form[key] = list = [];
            list.Add(value);
        }
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in form)
        {
            // RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than once."
            if (value.Count != 1)
                return new(empty, new OAuthFailure(OAuthErrors.InvalidRequest, $"The parameter '{Safe(key)}' is repeated."));
            var v = value[0];
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

    /// <summary>The whole body, or null when it is larger than <see cref="MaxBodyBytes"/>.</summary>
    private static async Task<byte[]?> ReadBodyAsync(Stream body, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int n;
        while ((n = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > MaxBodyBytes) return null;
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private static IEnumerable<byte[]> Split(byte[] body, byte separator)
    {
        var start = 0;
        for (var i = 0; i <= body.Length; i++)
        {
            if (i < body.Length && body[i] != separator) continue;
            yield return body[start..i];
            start = i + 1;
        }
    }

    /// <summary>application/x-www-form-urlencoded: '+' is a space, %XX a byte; the bytes must be valid UTF-8 (throws otherwise).</summary>
    private static string Decode(byte[] encoded)
    {
        var bytes = new byte[encoded.Length];
        var n = 0;
        for (var i = 0; i < encoded.Length; i++)
        {
            var b = encoded[i];
            if (b == (byte)'+') b = (byte)' ';
            else if (b == (byte)'%' && i + 2 < encoded.Length && IsHex(encoded[i + 1]) && IsHex(encoded[i + 2]))
            {
                b = (byte)(HexValue(encoded[i + 1]) * 16 + HexValue(encoded[i + 2]));
                i += 2;
            }
            bytes[n++] = b;
        }
        return StrictUtf8.GetString(bytes, 0, n);
    }

    private static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';

    private static int HexValue(byte b) => b <= (byte)'9' ? b - '0' : (b | 0x20) - 'a' + 10;

    private static bool HasControl(string v)
    {
        foreach (var c in v)
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return true;
        return false;
    }

    /// <summary>Parameter names echoed in errors are shortened and stripped of anything but plain characters.</summary>
    private static string Safe(string key) => new(key.Take(40).Where(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-').ToArray());
}
