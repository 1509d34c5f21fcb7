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

/// <summary>
/// A system under test: name, one base URL and server pid per node (for /proc), and the one confidential client.
/// With several nodes the load generator acts as a load balancer without affinity: requests go round-robin over the
/// nodes, and each session's successive refreshes go to successive nodes, so every rotation crosses nodes.
/// </summary>
public sealed record Target(string Name, Flavor Flavor, IReadOnlyList<string> BaseUrls, IReadOnlyList<int> Pids, string ClientId, string ClientSecret)
{
    public const string RedirectUri = "https://app.example.com/callback";
    public const string Scope = "offline_access api";
    public string Username { get; init; } = "benchuser";
    public string Password { get; init; } = "bench-password-4711";

    /// <summary>The database server's main pid (PostgreSQL's postmaster): its CPU and its children's is measured apart.</summary>
    public int? DatabasePid { get; init; }

    /// <summary>The scenarios this system takes part in; null: all that apply.</summary>
    public IReadOnlyList<string>? Scenarios { get; init; }

    public string BaseUrl => BaseUrls[0];
    public int Pid => Pids[0];
    public int Nodes => BaseUrls.Count;

    public bool SupportsLogin => Flavor != Flavor.Ceiling;

    /// <summary>oidc-provider refuses to introspect JWT ("structured") access tokens: unsupported_token_type.</summary>
    public bool SupportsJwtIntrospection => Flavor != Flavor.OidcProvider;

    public string BasicHeader => "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(
        Uri.EscapeDataString(ClientId) + ":" + Uri.EscapeDataString(ClientSecret)));

    /// <summary>
    /// name=flavor@url@pid@clientId@secret[@option...]. Several nodes: url1,url2,url3 and pid1,pid2,pid3 (same order).
    /// Options: db=PID (the database server's main pid), scenarios=a,b,c (only these scenarios).
    /// </summary>
    public static Target Parse(string spec)
    {
        var eq = spec.IndexOf('=');
        var name = spec[..eq];
        var parts = spec[(eq + 1)..].Split('@');
        if (parts.Length < 5) throw new ArgumentException($"--system {spec}: expected name=flavor@url@pid@clientId@secret[@db=PID][@scenarios=a,b]");
        var flavor = parts[0].ToLowerInvariant() switch
        {
            "tessera" => Flavor.Tessera,
            "openiddict" => Flavor.OpenIddict,
            "oidc-provider" => Flavor.OidcProvider,
            "ceiling" => Flavor.Ceiling,
            var f => throw new ArgumentException("unknown flavor " + f),
        };
        var urls = parts[1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(u => u.TrimEnd('/')).ToList();
        var pids = parts[2].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        if (urls.Count == 0 || urls.Count != pids.Count) throw new ArgumentException($"--system {spec}: one pid per URL");
        int? db = null;
        List<string>? scenarios = null;
        foreach (var option in parts.Skip(5))
        {
            var (key, value) = option.IndexOf('=') is var i and > 0 ? (option[..i], option[(i + 1)..]) : (option, "");
            switch (key)
            {
                case "db": db = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                case "scenarios": scenarios = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList(); break;
                default: throw new ArgumentException($"--system {spec}: unknown option {option}");
            }
        }
        return new Target(name, flavor, urls, pids, parts[3], parts[4]) { DatabasePid = db, Scenarios = scenarios };
    }
}
