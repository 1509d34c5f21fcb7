using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Server.ClientAuthentication;
using Tessera.Server.Grants;
using Tessera.Server.Protocol;

namespace Tessera.Server.Endpoints;

/// <summary>RFC 6749 §3.2. The pipeline, in the order it runs: read the form, authenticate the client, dispatch the grant, answer.</summary>
public static class TokenEndpoint
{
    public const string Path = "/connect/token";

    public static void Map(WebApplication app) =>
        app.MapMethods(Path, [HttpMethods.Post, HttpMethods.Get, HttpMethods.Put, HttpMethods.Delete, HttpMethods.Patch], HandleAsync);

    private static async Task HandleAsync(HttpContext http, ClientAuthenticator authenticator,
        AuthorizationCodeGrant code, RefreshTokenGrant refresh, ClientCredentialsGrant credentials)
    {
        var ct = http.RequestAborted;
        // 1. A strict form POST: no repeated parameters, bounded size.
        var form = await OAuthForm.ReadAsync(http);
        if (form.Failure is not null)
        {
            if (form.Failure.Status == StatusCodes.Status405MethodNotAllowed) http.Response.Headers.Allow = "POST";
            await OAuthResults.WriteErrorAsync(http, form.Failure);
            return;
        }

        // 2. Client authentication comes first so an unauthenticated caller learns nothing about grants or tokens.
        var auth = await authenticator.AuthenticateAsync(http, form.Values, ct);
        if (auth.Failure is not null)
        {
            await OAuthResults.WriteErrorAsync(http, auth.Failure, auth.BasicUsed);
            return;
        }

        // 3. One handler per grant. No password grant, no implicit grant (OAuth 2.1).
        var request = new TokenRequest(http, form.Values, auth.Client!);
        form.Values.TryGetValue("grant_type", out var grantType);
        var result = grantType switch
        {
            null => GrantResult.Fail(OAuthErrors.InvalidRequest, "grant_type is required."),
            GrantTypes.AuthorizationCode => await code.HandleAsync(request, ct),
            GrantTypes.RefreshToken => await refresh.HandleAsync(request, ct),
            GrantTypes.ClientCredentials => await credentials.HandleAsync(request, ct),
            _ => GrantResult.Fail(OAuthErrors.UnsupportedGrantType, "This grant type is not supported."),
        };

        // 4. Answer; never cached (RFC 6749 §5.1).
        if (result.Failure is not null)
            await OAuthResults.WriteErrorAsync(http, result.Failure, auth.BasicUsed);
        else
            await OAuthResults.WriteJsonAsync(http, StatusCodes.Status200OK, result.Response!);
    }
}
