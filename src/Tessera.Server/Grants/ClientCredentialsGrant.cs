using Tessera.Core;
using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Tokens;

namespace Tessera.Server.Grants;

/// <summary>RFC 6749 §4.4: a confidential client gets a token for itself. No refresh token (§4.4.3).</summary>
public sealed class ClientCredentialsGrant(TokenMinter minter, TesseraOptions options)
{
    public async Task<GrantResult> HandleAsync(TokenRequest request, CancellationToken ct)
    {
        var client = request.Client;
        // §4.4: "The client credentials grant type MUST only be used by confidential clients."
        if (client.IsPublic || !client.AllowsGrant(GrantTypes.ClientCredentials))
            return GrantResult.Fail(OAuthErrors.UnauthorizedClient, "This client may not use the client_credentials grant.");
        if (!Scopes.TryParse(request["scope"], out var requested))
            return GrantResult.Fail(OAuthErrors.InvalidScope, "The scope is malformed.");
        var allowed = client.Scopes.Where(s => !Scopes.Identity.Contains(s)).ToList();
        if (requested.Count == 0) requested = allowed;
        if (requested.Any(s => !allowed.Contains(s)))
            return GrantResult.Fail(OAuthErrors.InvalidScope, "The requested scope is not allowed for this client.");
        var (audience, targetFailure) = Resources.Resolve(request["resource"], client, options.Issuer!);
        if (targetFailure is not null) return GrantResult.Fail(targetFailure);

        var lifetime = client.AccessTokenLifetime ?? options.AccessTokenLifetime;
        var (token, _, _) = await minter.MintAccessTokenAsync(new AccessTokenRequest(options.Issuer!, client.Id, client.Id, audience!, requested, lifetime, null, null, request.Dpop?.Thumbprint, client.SigningAlgorithm), ct);
        var response = new Dictionary<string, object>
        {
            ["access_token"] = token,
            ["token_type"] = request.Dpop is null ? "Bearer" : "DPoP",
            ["expires_in"] = (long)lifetime.TotalSeconds,
        };
        if (requested.Count > 0) response["scope"] = Scopes.Join(requested);
        return new GrantResult(response, null);
    }
}
