using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Tessera.ResourceServer;

/// <summary>Met when the access token's <c>scope</c> claim holds every one of <see cref="Scopes"/>.</summary>
public sealed class ScopeRequirement : IAuthorizationRequirement
{
    public ScopeRequirement(IEnumerable<string> scopes)
    {
        Scopes = [.. scopes];
        if (Scopes.Count == 0) throw new ArgumentException("At least one scope is required.", nameof(scopes));
        foreach (var s in Scopes)
        {
            // RFC 6749 §3.3: scope-token = 1*NQCHAR; it is also echoed in a quoted WWW-Authenticate parameter.
            if (string.IsNullOrEmpty(s) || s.Any(c => c < 0x21 || c > 0x7E || c == '"' || c == '\\'))
                throw new ArgumentException($"'{s}' is not a valid scope.", nameof(scopes));
        }
    }

    public IReadOnlyList<string> Scopes { get; }

    public override string ToString() => "scope: " + string.Join(' ', Scopes);
}

/// <summary>Checks <see cref="ScopeRequirement"/>s and notes what was missing, for the 403's <c>WWW-Authenticate</c>.</summary>
internal sealed class ScopeAuthorizationHandler : AuthorizationHandler<ScopeRequirement>
{
    private static readonly object MissingKey = new();

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ScopeRequirement requirement)
    {
        var granted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var claim in context.User.FindAll("scope"))
            granted.UnionWith(claim.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (requirement.Scopes.All(granted.Contains))
        {
            context.Succeed(requirement);
        }
        else if (context.Resource is HttpContext http)
        {
            var missing = http.Items[MissingKey] as SortedSet<string> ?? [];
            missing.UnionWith(requirement.Scopes);
            http.Items[MissingKey] = missing;
        }
        return Task.CompletedTask;
    }

    /// <summary>The scopes the refused request would have needed, space-separated, or null.</summary>
    internal static string? MissingScopes(HttpContext http) =>
        http.Items[MissingKey] is SortedSet<string> { Count: > 0 } missing ? string.Join(' ', missing) : null;
}

public static class TesseraAuthorizationExtensions
{
    /// <summary>Requires every one of <paramref name="scopes"/> in the access token's <c>scope</c> claim.</summary>
    public static AuthorizationPolicyBuilder RequireScope(this AuthorizationPolicyBuilder builder, params string[] scopes)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRequirements(new ScopeRequirement(scopes));
    }

    /// <summary>A named policy: a valid Tessera access token (of <paramref name="scheme"/>) whose scope includes <paramref name="scope"/>.</summary>
    public static AuthorizationOptions AddTesseraScopePolicy(this AuthorizationOptions options, string name, string scope, string scheme = TesseraAccessTokenDefaults.Scheme)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.AddPolicy(name, ScopePolicy(scheme, [scope]));
        return options;
    }

    /// <inheritdoc cref="AddTesseraScopePolicy(AuthorizationOptions, string, string, string)"/>
    public static AuthorizationBuilder AddTesseraScopePolicy(this AuthorizationBuilder builder, string name, string scope, string scheme = TesseraAccessTokenDefaults.Scheme)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddPolicy(name, ScopePolicy(scheme, [scope]));
    }

    /// <summary>The endpoints require a valid Tessera access token (scheme "Tessera") whose scope includes every one of <paramref name="scopes"/>.</summary>
    public static TBuilder RequireScope<TBuilder>(this TBuilder builder, params string[] scopes) where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.RequireAuthorization(ScopePolicy(TesseraAccessTokenDefaults.Scheme, scopes));
    }

    /// <summary>A policy: authenticated by <paramref name="scheme"/>, with every one of <paramref name="scopes"/>.</summary>
    public static AuthorizationPolicy ScopePolicy(string scheme, params string[] scopes) =>
        new AuthorizationPolicyBuilder(scheme).RequireAuthenticatedUser().RequireScope(scopes).Build();
}
