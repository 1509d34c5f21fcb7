using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>Turns <see cref="TesseraAccessTokenOptions"/> into the JwtBearer options of the same scheme.</summary>
internal sealed class ConfigureTesseraJwtBearer(
    IEnumerable<TesseraSchemeMarker> schemes,
    IOptionsMonitor<TesseraAccessTokenOptions> tesseraOptions,
    TesseraRevocationRegistry registry,
    TimeProvider time,
    ILoggerFactory loggers,
    IHttpContextAccessor requests) : IConfigureNamedOptions<JwtBearerOptions>
{
    public void Configure(JwtBearerOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, JwtBearerOptions options)
    {
        if (name is null || !schemes.Any(s => s.Scheme == name)) return;
        var t = tesseraOptions.Get(name);
        var problems = t.Problems().ToList();
        if (problems.Count > 0) throw new OptionsValidationException(name, typeof(TesseraAccessTokenOptions), problems);

        var algorithms = t.ValidAlgorithms.Distinct(StringComparer.Ordinal).ToArray();
        options.Authority = t.Authority;
        options.MetadataAddress = t.MetadataAddress;
        options.RequireHttpsMetadata = t.RequireHttpsMetadata;
        options.Audience = t.Audience;
        options.MapInboundClaims = false;
        options.SaveToken = false;
        options.IncludeErrorDetails = true;
        options.RefreshOnIssuerKeyNotFound = true;
        options.TimeProvider = time;

        var p = options.TokenValidationParameters;
        p.ValidIssuer = t.Issuer;
        p.ValidIssuers = null;
        p.ValidateIssuer = true;
        p.ValidAudience = t.Audience;
        p.ValidAudiences = null;
        p.ValidateAudience = true;
        p.ValidateLifetime = true;
        p.RequireExpirationTime = true;
        p.RequireSignedTokens = true;
        p.RequireAudience = true;
        p.ClockSkew = t.ClockSkew;
        p.ValidTypes = TesseraAccessTokenDefaults.AccessTokenTypes;
        p.ValidAlgorithms = algorithms;
        p.TryAllIssuerSigningKeys = true;
        if (algorithms.Contains(Tessera.EdDsa.EdDsaAlgorithms.EdDsa)) p.IssuerSigningKeyResolverUsingConfiguration = EdDsaKeyResolver.Resolve;
        p.LifetimeValidator = TesseraTokenHandler.Lifetime(time, t.ClockSkew);
        p.NameClaimType = "sub";
        p.RoleClaimType = "roles";
        p.AuthenticationType = name;
        p.SaveSigninToken = false;

        options.TokenHandlers.Clear();
        options.TokenHandlers.Add(new TesseraTokenHandler(t, algorithms, registry.For(name), time, loggers.CreateLogger<TesseraTokenHandler>(), requests));

        options.Events = TesseraBearerEvents.Create(t);
    }

    internal static string Describe(Exception failure) => failure switch
    {
        AggregateException { InnerExceptions.Count: > 0 } all => Describe(all.InnerExceptions[0]),
        TesseraTokenRejectedException rejected => rejected.Message,
        SecurityTokenInvalidAudienceException => "The audience is invalid.",
        SecurityTokenInvalidIssuerException => "The issuer is invalid.",
        SecurityTokenExpiredException => "The token is expired.",
        SecurityTokenNotYetValidException => "The token is not valid yet.",
        SecurityTokenNoExpirationException => "The token has no expiration.",
        SecurityTokenInvalidLifetimeException => "The token's lifetime is invalid.",
        SecurityTokenInvalidTypeException => "The token is not an access token (typ must be at+jwt).",
        SecurityTokenInvalidAlgorithmException => "The token's signing algorithm is not accepted.",
        SecurityTokenSignatureKeyNotFoundException => "The signature key was not found.",
        SecurityTokenInvalidSignatureException => "The signature is invalid.",
        _ => "The token is invalid.",
    };
}
