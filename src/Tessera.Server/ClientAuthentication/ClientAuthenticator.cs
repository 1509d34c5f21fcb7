using System.Text;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Server.Throttling;

namespace Tessera.Server.ClientAuthentication;

public sealed record ClientAuthResult(Client? Client, OAuthFailure? Failure, bool BasicUsed);

/// <summary>
/// RFC 6749 §2.3: client_secret_basic, client_secret_post, or none for public clients. Exactly one method per request.
/// Secrets are compared as SHA-256 hashes in constant time. Repeated failures from one address pause it, and one
/// client id at one address, before the client is even looked up (<see cref="ClientAuthThrottle"/>).
/// </summary>
public sealed class ClientAuthenticator(ITesseraStore store, PrivateKeyJwtValidator assertions, ClientAuthThrottle throttle, TimeProvider time)
{
    private static readonly OAuthFailure InvalidClient = new(OAuthErrors.InvalidClient, "Client authentication failed.");

    public async Task<ClientAuthResult> AuthenticateAsync(HttpContext http, IReadOnlyDictionary<string, string> form, CancellationToken ct)
    {
        string? id = null, secret = null;
        var basic = false;
        var header = http.Request.Headers.Authorization;
        if (header.Count > 1)
            return new(null, new OAuthFailure(OAuthErrors.InvalidRequest, "Only one Authorization header is allowed."), false);
        var auth = header.ToString();
        if (auth.Length > 0)
        {
            // "Basic" with no credentials is still an attempt with Basic: it gets the 401 challenge (RFC 6749 §5.2).
            var scheme = auth.Split(' ', 2)[0];
            if (!scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
                return new(null, InvalidClient, false);
            basic = true;
            if (!TryParseBasic(auth[scheme.Length..].Trim(), out id, out secret))
                return new(null, InvalidClient, true);
        }

        form.TryGetValue("client_id", out var formId);
        form.TryGetValue("client_secret", out var formSecret);
        form.TryGetValue("client_assertion_type", out var assertionType);
        form.TryGetValue("client_assertion", out var assertion);
        if (assertionType is not null || assertion is not null)
        {
            if (basic || formSecret is not null)
                return new(null, new OAuthFailure(OAuthErrors.InvalidRequest, "Use exactly one client authentication method."), basic);
            if (assertionType != PrivateKeyJwtValidator.AssertionType || assertion is null)
                return new(null, new OAuthFailure(OAuthErrors.InvalidRequest, "client_assertion_type must be " + PrivateKeyJwtValidator.AssertionType + ", with a client_assertion."), false);
            var claimed = PrivateKeyJwtValidator.ClaimedClientId(assertion);
            if (claimed is null || claimed.Length > 200) return new(null, InvalidClient, false);
            if (formId is not null && formId != claimed)
                return new(null, new OAuthFailure(OAuthErrors.InvalidRequest, "client_id does not match the client assertion."), false);
            if (await throttle.CheckAsync(http, claimed, ct) is { } pausedAssertion) return new(null, pausedAssertion, false);
            var assertingClient = await store.Clients.FindAsync(claimed, ct);
            if (assertingClient is null) return await Refuse(http, claimed, "unknown client (private_key_jwt)", false, ct);
            if (await assertions.ValidateAsync(assertingClient, assertion, http.Request.Path.Value ?? "", ct) is { } reason)
                return await Refuse(http, claimed, reason, false, ct);
            throttle.Succeeded(http, claimed);
            return new(assertingClient, null, false);
        }
        if (basic && formSecret is not null)
            return new(null, new OAuthFailure(OAuthErrors.InvalidRequest, "Use exactly one client authentication method."), true);
        if (basic && formId is not null && formId != id)
            return new(null, new OAuthFailure(OAuthErrors.InvalidRequest, "client_id does not match the authenticated client."), true);
        if (!basic)
        {
            id = formId;
            secret = formSecret;
        }
        if (string.IsNullOrEmpty(id))
            return new(null, InvalidClient with { Description = "Client authentication is required." }, basic);
        if (await throttle.CheckAsync(http, id, ct) is { } paused) return new(null, paused, basic);

        var client = await store.Clients.FindAsync(id, ct);
        if (client is null)
            return await Refuse(http, id, "unknown client", basic, ct);
        if (client.IsPublic)
        {
            // A public client has no secret; one that sends a secret is confused, not authenticated.
            if (secret is not null) return await Refuse(http, id, "secret sent for a public client", basic, ct);
            return new(client, null, basic);
        }
        if (client.SecretHash is null)
            return await Refuse(http, id, "client authenticates with private_key_jwt, not a secret", basic, ct);
        if (secret is null)
            return await Refuse(http, id, "confidential client sent no secret", basic, ct);
        if (!Handles.HashEquals(Handles.Hash(secret), client.SecretHash))
            return await Refuse(http, id, "wrong client secret", basic, ct);
        throttle.Succeeded(http, id);
        return new(client, null, basic);
    }

    private async Task<ClientAuthResult> Refuse(HttpContext http, string clientId, string reason, bool basic, CancellationToken ct)
    {
        // Counted before anything is written, so parallel guesses meet the pause as early as possible.
        await throttle.RecordFailureAsync(http, clientId, ct);
        await store.Audit.AppendAsync(new AuditEvent
        {
            At = time.GetUtcNow(),
            Type = AuditTypes.ClientAuthFailed,
            ClientId = clientId.Length <= 200 ? clientId : clientId[..200],
            IpAddress = http.Connection.RemoteIpAddress?.ToString(),
            Reason = reason,
        }, ct);
        return new(null, InvalidClient, basic);
    }

    /// <summary>RFC 6749 §2.3.1: client id and secret are form-urlencoded before Base64.</summary>
    private static bool TryParseBasic(string value, out string? id, out string? secret)
    {
        id = secret = null;
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(value));
            var colon = decoded.IndexOf(':');
            if (colon <= 0) return false;
            id = Uri.UnescapeDataString(decoded[..colon].Replace('+', ' '));
            secret = Uri.UnescapeDataString(decoded[(colon + 1)..].Replace('+', ' '));
            return secret.Length > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
