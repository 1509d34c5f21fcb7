using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Tessera.Bff.Endpoints;
using Tessera.Bff.Oidc;
using Tessera.Bff.Proxy;
using Tessera.Bff.Sessions;

namespace Tessera.Bff;

public static class TesseraBffExtensions
{
    /// <summary>
    /// Registers the backend-for-frontend: options (validated at start-up), the server-side session store (SQLite,
    /// tokens encrypted with DataProtection: configure DataProtection's key storage so restarts and replicas share
    /// keys), the client for Tessera, single-flight token refresh and YARP's forwarder.
    /// </summary>
    public static IServiceCollection AddTesseraBff(this IServiceCollection services, Action<TesseraBffOptions> configure)
    {
        services.AddOptions<TesseraBffOptions>().Configure(configure).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TesseraBffOptions>, OptionsValidator>();
        services.AddDataProtection();
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient(AuthorityClient.HttpClientName, c => c.Timeout = TimeSpan.FromSeconds(30))
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, UseProxy = false });
        services.TryAddSingleton<IBffSessionStore, SqliteBffSessionStore>();
        services.AddSingleton<AuthorityClient>();
        services.AddSingleton<TokenValidator>();
        services.AddSingleton<BffTokenService>();
        services.AddSingleton<BackchannelLogoutEndpoint>();
        services.AddSingleton<BffProxy>();
        services.AddHttpForwarder();
        return services;
    }

    /// <summary>
    /// Maps <c>/bff/login</c>, <c>/bff/callback</c>, <c>/bff/logout</c>, <c>/bff/user</c>, <c>/bff/backchannel-logout</c>,
    /// <c>/bff/token</c> (token-mediating mode only) and the proxy routes. Call it after <c>UseStaticFiles()</c>
    /// and before a SPA fallback.
    /// </summary>
    public static IEndpointRouteBuilder MapTesseraBff(this IEndpointRouteBuilder endpoints)
    {
        var sp = endpoints.ServiceProvider;
        var o = sp.GetRequiredService<IOptions<TesseraBffOptions>>().Value;
        var proxy = sp.GetRequiredService<BffProxy>();

        if (endpoints is IApplicationBuilder app)
        {
            // Kestrel removes dot segments before routing, so "/api/../admin" would arrive as "/admin". Refuse any
            // raw target that starts like a proxied or backend path but is not plain, before anything else sees it.
            app.Use(async (http, next) =>
            {
                var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
                var path = raw.Split('?', 2)[0];
                if ((path.StartsWith("/bff", StringComparison.OrdinalIgnoreCase) || ProxyPathGuard.LooksProxied(raw, proxy.Routes))
                    && (raw.Length == 0 || raw[0] != '/' || ProxyPathGuard.Problem(path) is not null))
                {
                    await BffHttp.Error(StatusCodes.Status400BadRequest, "invalid_path", "The path is not allowed.").ExecuteAsync(http);
                    return;
                }
                await next(http);
            });
        }

        var bff = endpoints.MapGroup("/bff");
        bff.MapGet("/login", LoginEndpoints.LoginAsync);
        bff.MapGet("/callback", LoginEndpoints.CallbackAsync);
        bff.MapGet("/user", SessionEndpoints.UserAsync);
        bff.MapPost("/logout", SessionEndpoints.LogoutAsync);
        bff.MapPost("/backchannel-logout", (HttpContext http, BackchannelLogoutEndpoint endpoint) => endpoint.HandleAsync(http)).DisableAntiforgery();
        if (o.Mode == BffMode.TokenMediating) bff.MapGet("/token", SessionEndpoints.TokenAsync);

        foreach (var route in proxy.Routes)
        {
            endpoints.Map(route.Prefix, proxy.HandleAsync);
            endpoints.Map(route.Prefix + "/{**rest}", proxy.HandleAsync);
        }
        return endpoints;
    }

    private sealed class OptionsValidator : IValidateOptions<TesseraBffOptions>
    {
        public ValidateOptionsResult Validate(string? name, TesseraBffOptions options)
        {
            var problems = options.Validate().ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems.Select(p => "Tessera BFF: " + p));
        }
    }
}
