using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Refresh;

namespace Tessera.Server.Grants;

/// <summary>RFC 6749 §6. The checks themselves are the state machine in <see cref="RefreshTokenService"/>.</summary>
public sealed class RefreshTokenGrant(RefreshTokenService service, TokenResponder responder)
{
    public async Task<GrantResult> HandleAsync(TokenRequest request, CancellationToken ct)
    {
        if (!request.Client.AllowsGrant(GrantTypes.RefreshToken))
            return GrantResult.Fail(OAuthErrors.UnauthorizedClient, "This client may not use the refresh_token grant.");
        var token = request["refresh_token"];
        if (token is null)
            return GrantResult.Fail(OAuthErrors.InvalidRequest, "refresh_token is required.");
        IReadOnlyList<string>? requested = null;
        if (request["scope"] is { } scope)
        {
            if (!Scopes.TryParse(scope, out var parsed))
                return GrantResult.Fail(OAuthErrors.InvalidScope, "The scope is malformed.");
            requested = parsed;
        }

        var (success, failure) = await service.RefreshAsync(new RefreshRequest(request.Client, token, requested, request.IpAddress, request.UserAgent, request.Dpop?.Thumbprint), ct);
        if (failure is not null) return GrantResult.Fail(failure);

        var s = success!;
        var response = await responder.ForUserAsync(request.Client, s.User, s.Session, s.Scopes, s.RefreshToken, s.RefreshExpiresIn, nonce: null, request.Dpop?.Thumbprint, ct);
        return new GrantResult(response, null);
    }
}
