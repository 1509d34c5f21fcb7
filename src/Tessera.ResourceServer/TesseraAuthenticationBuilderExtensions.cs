using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Tessera.ResourceServer;

public static class TesseraAuthenticationBuilderExtensions
{
    /// <summary>Accepts Tessera's access tokens under the scheme "Tessera". See <see cref="AddTesseraAccessTokens(AuthenticationBuilder, string, Action{TesseraAccessTokenOptions})"/>.</summary>
    public static AuthenticationBuilder AddTesseraAccessTokens(this AuthenticationBuilder builder, Action<TesseraAccessTokenOptions> configure) =>
        builder.AddTesseraAccessTokens(TesseraAccessTokenDefaults.Scheme, configure);

    /// <summary>
    /// Accepts Tessera's RFC 9068 access tokens from the <c>Authorization</c> header (never the query string), with
    /// ASP.NET Core's JwtBearer handler: discovery and keys from the authority, <c>typ: at+jwt</c>, asymmetric
    /// algorithms only, no key material in the header, exact issuer and audience, lifetime with a small skew; unbound
    /// tokens with <c>Bearer</c> and DPoP-bound ones (<c>cnf.jkt</c>) with <c>DPoP</c> and a proof checked on every
    /// request (RFC 9449, see <see cref="TesseraAccessTokenOptions.Dpop"/>); a cache of validated tokens; and, when
    /// <see cref="TesseraAccessTokenOptions.FeedClientId"/> is set, a background poller of Tessera's revocation feed so
    /// tokens of revoked sessions are refused before they expire.
    /// </summary>
    public static AuthenticationBuilder AddTesseraAccessTokens(this AuthenticationBuilder builder, string scheme, Action<TesseraAccessTokenOptions> configure)
    {
        ArgumentException.ThrowIfNullOrEmpty(scheme);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        services.AddOptions<TesseraAccessTokenOptions>(scheme).Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TesseraAccessTokenOptions>, TesseraAccessTokenOptionsValidator>());
        services.AddSingleton(new TesseraSchemeMarker(scheme));
        services.TryAddSingleton(TimeProvider.System);
        // The token handler reads the request (its Authorization scheme and DPoP proof) through it: RFC 9449 proofs are per request.
        services.AddHttpContextAccessor();
        services.TryAddSingleton<TesseraRevocationRegistry>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<JwtBearerOptions>, ConfigureTesseraJwtBearer>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, RevocationFeedPoller>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAuthorizationHandler, ScopeAuthorizationHandler>());
        return builder.AddJwtBearer(scheme, _ => { });
    }
}

/// <summary>Remembers which JwtBearer schemes are Tessera's.</summary>
internal sealed record TesseraSchemeMarker(string Scheme);

internal sealed class TesseraAccessTokenOptionsValidator(IEnumerable<TesseraSchemeMarker> schemes) : IValidateOptions<TesseraAccessTokenOptions>
{
    public ValidateOptionsResult Validate(string? name, TesseraAccessTokenOptions options)
    {
        if (name is null || !schemes.Any(s => s.Scheme == name)) return ValidateOptionsResult.Skip;
        var problems = options.Problems().Select(p => $"Tessera access tokens ({name}): {p}").ToList();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

/// <summary>The revocation state of each Tessera scheme, shared by its token handler and its feed poller.</summary>
internal sealed class TesseraRevocationRegistry(TimeProvider time)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RevocationState> _states = new(StringComparer.Ordinal);

    public RevocationState For(string scheme) => _states.GetOrAdd(scheme, _ => new RevocationState(time));
}
