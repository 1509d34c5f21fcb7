namespace Tessera.Bench.LoadGen;

/// <summary>How a system under test is reached and driven.</summary>
public enum Flavor
{
    /// <summary>Tessera: login form with antiforgery and Argon2id, first-party client (no consent page).</summary>
    Tessera,
    /// <summary>The OpenIddict peer: passthrough login (a cookie is set without a form).</summary>
    OpenIddict,
    /// <summary>node oidc-provider: its interaction redirects, finished by the peer's handler without a page.</summary>
    OidcProvider,
    /// <summary>The ceiling: no users, no sessions, no database.</summary>
    Ceiling,
}

/// <summary>A system under test: name, base URL, server pid (for /proc), and the one confidential client.</summary>
public sealed record Target(string Name, Flavor Flavor, string BaseUrl, int Pid, string ClientId, string ClientSecret)
{
    public const string RedirectUri = "https://app.example.com/callback";
    public const string Scope = "offline_access api";
    public string Username { get; init; } = "benchuser";
    public string Password { get; init; } = "bench-password-4711";

    public bool SupportsLogin => Flavor != Flavor.Ceiling;

    /// <summary>oidc-provider refuses to introspect JWT ("structured") access tokens: unsupported_token_type.</summary>
    public bool SupportsJwtIntrospection => Flavor != Flavor.OidcProvider;

    public string BasicHeader => "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(
        Uri.EscapeDataString(ClientId) + ":" + Uri.EscapeDataString(ClientSecret)));

    /// <summary>name=flavor@url@pid@clientId@secret</summary>
    public static Target Parse(string spec)
    {
        var eq = spec.IndexOf('=');
        var name = spec[..eq];
        var parts = spec[(eq + 1)..].Split('@');
        if (parts.Length != 5) throw new ArgumentException($"--system {spec}: expected name=flavor@url@pid@clientId@secret");
        var flavor = parts[0].ToLowerInvariant() switch
        {
            "tessera" => Flavor.Tessera,
            "openiddict" => Flavor.OpenIddict,
            "oidc-provider" => Flavor.OidcProvider,
            "ceiling" => Flavor.Ceiling,
            var f => throw new ArgumentException("unknown flavor " + f),
        };
        return new Target(name, flavor, parts[1].TrimEnd('/'), int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture), parts[3], parts[4]);
    }
}
