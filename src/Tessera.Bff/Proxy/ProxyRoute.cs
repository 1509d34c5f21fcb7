namespace Tessera.Bff.Proxy;

/// <summary>One allow-listed route: requests under <see cref="Prefix"/> go to <see cref="Destination"/> and nowhere else.</summary>
public sealed record ProxyRoute(string Prefix, Uri Destination)
{
    internal static IEnumerable<string> Check(string prefix, string destination)
    {
        if (string.IsNullOrEmpty(prefix) || prefix[0] != '/' || prefix.Length < 2 || prefix.EndsWith('/')
            || prefix.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '_' or '.')) || prefix.Contains("//", StringComparison.Ordinal)
            || prefix.Split('/').Any(s => s is "." or ".."))
            yield return $"Route prefix '{prefix}' must be a plain local path such as /api (letters, digits, - _ . /, no trailing slash).";
        else if (prefix.Equals("/bff", StringComparison.OrdinalIgnoreCase) || prefix.StartsWith("/bff/", StringComparison.OrdinalIgnoreCase))
            yield return $"Route prefix '{prefix}' is inside /bff, which the backend's own endpoints use.";
        if (!Uri.TryCreate(destination, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)
            || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
            yield return $"Route destination '{destination}' must be an absolute http(s) URL without query, fragment or user info.";
    }

    internal static IReadOnlyList<ProxyRoute> From(IDictionary<string, string> routes) =>
        routes.Select(kv => new ProxyRoute(kv.Key, new Uri(kv.Value, UriKind.Absolute)))
            .OrderByDescending(r => r.Prefix.Length) // the most specific prefix wins
            .ToList();
}

/// <summary>
/// Decides, from the raw request target exactly as the browser sent it, whether and where a request is proxied.
/// Kestrel removes dot segments before routing, so the decoded path alone could hide a trick like
/// <c>/api/../admin</c>; the raw target is checked instead, and anything unusual is refused rather than repaired.
/// </summary>
public static class ProxyPathGuard
{
    public enum Verdict { Forward, NotAllowListed, Refused }

    public readonly record struct Decision(Verdict Verdict, Uri? Destination, string? Reason);

    public static Decision Resolve(string rawTarget, IReadOnlyList<ProxyRoute> routes)
    {
        // Origin-form only (RFC 9112 §3.2.1): an absolute-form target could name a foreign host.
        if (string.IsNullOrEmpty(rawTarget) || rawTarget[0] != '/')
            return Refuse("the request target is not a local path");
        var q = rawTarget.IndexOf('?');
        var path = q < 0 ? rawTarget : rawTarget[..q];
        var query = q < 0 ? "" : rawTarget[q..];
        if (Problem(path) is { } problem) return Refuse(problem);
        if (query.Any(c => char.IsControl(c) || c == '#')) return Refuse("the query holds control characters");

        foreach (var route in routes)
        {
            if (!path.StartsWith(route.Prefix, StringComparison.Ordinal)) continue;
            if (path.Length != route.Prefix.Length && path[route.Prefix.Length] != '/') continue; // "/apix" is not under "/api"
            var rest = path[route.Prefix.Length..];
            var baseUrl = route.Destination.AbsoluteUri.TrimEnd('/');
            return new Decision(Verdict.Forward, new Uri(baseUrl + rest + query, UriKind.Absolute), null);
        }
        return new Decision(Verdict.NotAllowListed, null, "the path is not on the proxy's allow-list");
    }

    /// <summary>True when the raw path starts with one of the route prefixes (before any normalisation).</summary>
    public static bool LooksProxied(string rawTarget, IReadOnlyList<ProxyRoute> routes)
    {
        var path = rawTarget.Split('?', 2)[0];
        return routes.Any(r => path.StartsWith(r.Prefix, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Why a raw path is refused, or null when it is plain.</summary>
    public static string? Problem(string path)
    {
        if (path.Contains('\\')) return "backslash in the path";
        if (path.Contains("//", StringComparison.Ordinal)) return "empty path segment";
        foreach (var c in path)
        {
            if (char.IsControl(c) || c > 0x7e || c == ' ') return "control or non-ASCII character in the path";
        }
        // Encoded '/', '\', '.', '%' and NUL: an upstream that decodes again would see a different path than we checked.
        var lower = path.ToLowerInvariant();
        foreach (var encoded in (string[])["%2f", "%5c", "%2e", "%25", "%00"])
        {
            if (lower.Contains(encoded, StringComparison.Ordinal)) return "encoded '" + encoded + "' in the path";
        }
        foreach (var segment in path.Split('/'))
        {
            if (segment is "." or "..") return "dot segment in the path";
        }
        return null;
    }

    private static Decision Refuse(string reason) => new(Verdict.Refused, null, reason);
}
