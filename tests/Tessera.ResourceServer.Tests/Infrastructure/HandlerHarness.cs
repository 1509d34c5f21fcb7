using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>
/// The scheme's token handler and validation parameters exactly as <c>AddTesseraAccessTokens</c> configures them, on a
/// <see cref="FakeTimeProvider"/>, with the issuer's keys given directly: the validation pipeline without HTTP.
/// </summary>
internal sealed class HandlerHarness : IDisposable
{
    private readonly ServiceProvider _services;

    public HandlerHarness(LocalIssuer issuer, FakeTimeProvider time, Action<TesseraAccessTokenOptions>? configure = null)
    {
        Time = time;
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(time);
        services.AddAuthentication().AddTesseraAccessTokens(o =>
        {
            o.Authority = issuer.Issuer;
            o.Audience = ProtectedApi.Audience;
            o.RequireHttpsMetadata = false;
            configure?.Invoke(o);
        });
        _services = services.BuildServiceProvider();
        var bearer = _services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(TesseraAccessTokenDefaults.Scheme);
        Handler = (TesseraTokenHandler)bearer.TokenHandlers.Single();
        Parameters = WithKeys(bearer.TokenValidationParameters, new ECDsaSecurityKey(issuer.EcKey) { KeyId = "k1" }, new RsaSecurityKey(issuer.RsaKey) { KeyId = "r1" });
        Revocations = _services.GetRequiredService<TesseraRevocationRegistry>().For(TesseraAccessTokenDefaults.Scheme);
    }

    public FakeTimeProvider Time { get; }
    public TesseraTokenHandler Handler { get; }
    public TokenValidationParameters Parameters { get; }
    public RevocationState Revocations { get; }

    public static TokenValidationParameters WithKeys(TokenValidationParameters parameters, params SecurityKey[] keys)
    {
        var p = parameters.Clone();
        p.IssuerSigningKeys = keys;
        return p;
    }

    public Task<TokenValidationResult> ValidateAsync(string token, TokenValidationParameters? parameters = null) =>
        Handler.ValidateTokenAsync(token, parameters ?? Parameters);

    public void Dispose() => _services.Dispose();
}
