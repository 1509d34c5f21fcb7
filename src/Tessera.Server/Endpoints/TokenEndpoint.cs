using Tessera.Core;
using Tessera.Core.Clients;
using Tessera.Core.Dpop;
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

    public const string InvalidDpopProof = "invalid_dpop_proof";

    private static async Task HandleAsync(HttpContext http, ClientAuthenticator authenticator, DpopProofValidator dpop, TesseraOptions options,
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

        // 3. A DPoP proof, when sent or required (RFC 9449 §5).
        var client = auth.Client!;
        if (client.RequireDpopNonce) http.Response.Headers["DPoP-Nonce"] = dpop.NewNonce();
        DpopProof? proof = null;
        var header = http.Request.Headers["DPoP"];
        if (header.Count > 1 || (header.Count == 0 && client.RequireDpop))
        {
            await OAuthResults.WriteErrorAsync(http, new OAuthFailure(InvalidDpopProof, header.Count > 1 ? "Send exactly one DPoP header." : "This client must send a DPoP proof."));
            return;
        }
        if (header.Count == 1)
        {
            var url = new Uri(options.Issuer + Path);
            var checkedProof = await dpop.ValidateAsync(header.ToString(), HttpMethods.Post, url, client.RequireDpopNonce, accessToken: null, ct);
            if (checkedProof.Proof is null)
            {
                await OAuthResults.WriteErrorAsync(http, new OAuthFailure(checkedProof.NonceRequired ? "use_dpop_nonce" : InvalidDpopProof, checkedProof.Error!));
                return;
            }
            proof = checkedProof.Proof;
        }

        // 4. One handler per grant. No password grant, no implicit grant (OAuth 2.1).
        var request = new TokenRequest(http, form.Values, client, proof);
        form.Values.TryGetValue("grant_type", out var grantType);
        var result = grantType switch
        {
            null => GrantResult.Fail(OAuthErrors.InvalidRequest, "grant_type is required."),
            GrantTypes.AuthorizationCode => await code.HandleAsync(request, ct),
            GrantTypes.RefreshToken => await refresh.HandleAsync(request, ct),
            GrantTypes.ClientCredentials => await credentials.HandleAsync(request, ct),
            _ => GrantResult.Fail(OAuthErrors.UnsupportedGrantType, "This grant type is not supported."),
        };

        // 5. Answer; never cached (RFC 6749 §5.1).
        if (result.Failure is not null)
            await OAuthResults.WriteErrorAsync(http, result.Failure, auth.BasicUsed);
        else
            await OAuthResults.WriteJsonAsync(http, StatusCodes.Status200OK, result.Response!);
    }
}
