using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Tessera.ResourceServer;

/// <summary>
/// The comparison of a proof's <c>htu</c> with the request's URI. RFC 9449 §4.3 (9): "The htu claim matches the HTTP
/// URI value for the HTTP request in which the JWT was received, ignoring any query and fragment parts", and "To reduce
/// the likelihood of false negatives, servers SHOULD employ syntax-based normalization (Section 6.2.2 of [RFC3986]) and
/// scheme-based normalization (Section 6.2.3 of [RFC3986]) before comparing the htu claim." Both sides go through the
/// same <see cref="Normalize"/>, so the comparison is symmetric; the path stays case-sensitive (RFC 3986 §6.2.2.1).
/// </summary>
internal static class HttpUri
{
    /// <summary>
    /// The request's URI as the client addressed it, without query: <paramref name="publicBase"/> (or the request's
    /// scheme and Host) followed by the request-target exactly as sent, so percent-encodings are compared as written.
    /// </summary>
    public static string RequestUri(HttpRequest request, Uri? publicBase)
    {
        var target = request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        string path;
        if (target is { Length: > 0 } && target[0] == '/')
        {
            var end = target.AsSpan().IndexOfAny('?', '#');
            path = end < 0 ? target : target[..end];
        }
        else
        {
            // Absolute-form or a feature without the raw target: what routing saw, escaped again.
            path = (request.PathBase + request.Path).ToUriComponent();
        }
        var origin = publicBase is null ? request.Scheme + "://" + request.Host.Value : publicBase.GetLeftPart(UriPartial.Path).TrimEnd('/');
        return origin + path;
    }

    /// <summary>Whether <paramref name="htu"/> and <paramref name="requestUri"/> name the same resource after RFC 3986 §6.2.2 and §6.2.3 normalization.</summary>
    public static bool Same(string htu, string requestUri) =>
        Normalize(htu) is { } a && Normalize(requestUri) is { } b && string.Equals(a, b, StringComparison.Ordinal);

    /// <summary>
    /// An http(s) URI in normal form, query and fragment dropped: scheme and host lower-cased, percent-encodings of
    /// unreserved characters decoded and the others' hex digits upper-cased (§6.2.2.1, §6.2.2.2), dot-segments removed
    /// (§6.2.2.3), the default port and an empty port dropped, an empty path made "/" (§6.2.3). Null when it is not an
    /// absolute http(s) URI, carries user information, or has characters a URI cannot hold.
    /// </summary>
    public static string? Normalize(string uri)
    {
        if (uri.Length is 0 or > 4096) return null;
        var colon = uri.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0) return null;
        var scheme = uri[..colon].ToLowerInvariant();
        var defaultPort = scheme switch { "https" => 443, "http" => 80, _ => -1 };
        if (defaultPort < 0 || !uri.AsSpan(colon).StartsWith("://", StringComparison.Ordinal)) return null;

        var rest = uri.AsSpan(colon + 3);
        var end = rest.IndexOfAny('?', '#');
        if (end >= 0) rest = rest[..end];
        var slash = rest.IndexOf('/');
        var authority = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? ReadOnlySpan<char>.Empty : rest[slash..];
        if (authority.Length == 0 || authority.Contains('@')) return null;

        // host [ ":" port ], the host possibly an IP literal in brackets.
        ReadOnlySpan<char> host, port = default;
        if (authority[0] == '[')
        {
            var close = authority.IndexOf(']');
            if (close < 0) return null;
            host = authority[..(close + 1)];
            var after = authority[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':') return null;
                port = after[1..];
            }
        }
        else
        {
            var portColon = authority.LastIndexOf(':');
            host = portColon < 0 ? authority : authority[..portColon];
            if (portColon >= 0) port = authority[(portColon + 1)..];
        }
        if (host.Length == 0) return null;
        var normalizedHost = Percent(host);
        if (normalizedHost is null) return null;

        var result = new StringBuilder(uri.Length + 1).Append(scheme).Append("://").Append(normalizedHost.ToLowerInvariant());
        if (port.Length > 0)
        {
            if (port.Length > 5 || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > 65535) return null;
            if (number != defaultPort) result.Append(':').Append(number.ToString(CultureInfo.InvariantCulture));
        }
        var normalizedPath = Percent(path);
        if (normalizedPath is null) return null;
        return result.Append(RemoveDotSegments(normalizedPath.Length == 0 ? "/" : normalizedPath)).ToString();
    }

    /// <summary>§6.2.2.1 and §6.2.2.2: %XX of an unreserved character becomes the character, any other %XX gets upper-case hex.</summary>
    private static string? Percent(ReadOnlySpan<char> s)
    {
        var b = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '%')
            {
                if (i + 2 >= s.Length || !char.IsAsciiHexDigit(s[i + 1]) || !char.IsAsciiHexDigit(s[i + 2])) return null;
                var value = (char)Convert.ToByte(s.Slice(i + 1, 2).ToString(), 16);
                if (IsUnreserved(value)) b.Append(value);
                else b.Append('%').Append(char.ToUpperInvariant(s[i + 1])).Append(char.ToUpperInvariant(s[i + 2]));
                i += 2;
            }
            else if (c <= ' ' || c >= 0x7F || c is '"' or '<' or '>' or '\\' or '^' or '`' or '{' or '|' or '}')
            {
                return null;
            }
            else
            {
                b.Append(c);
            }
        }
        return b.ToString();
    }

    /// <summary>RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".</summary>
    private static bool IsUnreserved(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~';

    /// <summary>RFC 3986 §5.2.4, for an absolute path.</summary>
    private static string RemoveDotSegments(string path)
    {
        if (!path.Contains('.', StringComparison.Ordinal)) return path;
        var output = new List<string>();
        var segments = path.Split('/');
        // segments[0] is the empty string before the leading "/".
        for (var i = 1; i < segments.Length; i++)
        {
            var segment = segments[i];
            var last = i == segments.Length - 1;
            if (segment == ".")
            {
                if (last) output.Add("");
            }
            else if (segment == "..")
            {
                if (output.Count > 0) output.RemoveAt(output.Count - 1);
                if (last) output.Add("");
            }
            else
            {
                output.Add(segment);
            }
        }
        return "/" + string.Join('/', output);
    }
}
