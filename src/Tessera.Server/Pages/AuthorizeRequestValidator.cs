using Tessera.Core;
using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Storage;
using Tessera.Server.Grants;

namespace Tessera.Server.Pages;

public sealed record AuthorizeRequest(
    Client Client,
    string RedirectUri,
    string? State,
    IReadOnlyList<string> Scopes,
    string? CodeChallenge,
    string? Nonce,
    string? Prompt,
    int? MaxAge,
    string? Resource,
    IReadOnlyDictionary<string, string> Parameters,
    string? DpopJkt = null);

/// <summary>
/// What went wrong with an authorization request. <see cref="PageError"/>: the client or redirect URI cannot be
/// trusted, so the user sees an error page and is never redirected (RFC 6749 §4.1.2.1). Otherwise the error goes
/// back to the client's redirect URI.
/// </summary>
public sealed record AuthorizeFailure(string? PageError, string? Error = null, string? Description = null, string? RedirectUri = null, string? State = null);

/// <summary>RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 and OIDC Core §3.1.2.1, in the order the RFCs need.</summary>
public sealed class AuthorizeRequestValidator(ITesseraStore store, TesseraOptions options)
{
    public async Task<(AuthorizeRequest? Request, AuthorizeFailure? Failure)> ValidateAsync(IReadOnlyDictionary<string, string> p, string? repeatedKey, CancellationToken ct)
    {
        if (repeatedKey is "client_id" or "redirect_uri")
            return (null, new AuthorizeFailure($"The parameter {repeatedKey} is repeated."));
        if (!p.TryGetValue("client_id", out var clientId))
            return (null, new AuthorizeFailure("The request has no client_id."));
        var client = clientId.Length <= 200 ? await store.Clients.FindAsync(clientId, ct) : null;
        if (client is null)
            return (null, new AuthorizeFailure("The client is not registered."));
        if (!p.TryGetValue("redirect_uri", out var redirectUri))
            return (null, new AuthorizeFailure("The request has no redirect_uri."));
        if (!RedirectUriMatches(client, redirectUri))
            return (null, new AuthorizeFailure("The redirect_uri is not registered for this client."));

        p.TryGetValue("state", out var state);
        AuthorizeFailure Redirect(string error, string description) => new(null, error, description, redirectUri, state);

        if (repeatedKey is not null)
            return (null, Redirect(OAuthErrors.InvalidRequest, "A parameter is repeated."));
        if (!p.TryGetValue("response_type", out var responseType))
            return (null, Redirect(OAuthErrors.InvalidRequest, "response_type is required."));
        if (responseType != "code")
            return (null, Redirect(OAuthErrors.UnsupportedResponseType, "Only response_type=code is supported."));
        if (p.TryGetValue("response_mode", out var mode) && mode != "query")
            return (null, Redirect(OAuthErrors.InvalidRequest, "Only response_mode=query is supported."));
        if (!client.AllowsGrant(GrantTypes.AuthorizationCode))
            return (null, Redirect(OAuthErrors.UnauthorizedClient, "This client may not use the authorization code flow."));
        if (p.ContainsKey("request") || p.ContainsKey("request_uri"))
            return (null, Redirect("request_not_supported", "Request objects are not supported."));

        p.TryGetValue("scope", out var scopeValue);
        if (!Scopes.TryParse(scopeValue, out var scopes))
            return (null, Redirect(OAuthErrors.InvalidScope, "The scope is malformed."));
        if (scopes.Any(s => !client.Scopes.Contains(s)))
            return (null, Redirect(OAuthErrors.InvalidScope, "The requested scope is not allowed for this client."));

        // PKCE (RFC 7636 §4.3): S256 only; required for public clients, accepted for all.
        p.TryGetValue("code_challenge", out var challenge);
        p.TryGetValue("code_challenge_method", out var method);
        if (challenge is null)
        {
            if (client.IsPublic)
                return (null, Redirect(OAuthErrors.InvalidRequest, "code_challenge is required for public clients (PKCE, S256)."));
            if (method is not null)
                return (null, Redirect(OAuthErrors.InvalidRequest, "code_challenge_method without code_challenge."));
        }
        else
        {
            if (method != "S256")
                return (null, Redirect(OAuthErrors.InvalidRequest, "code_challenge_method must be S256 (plain is not allowed)."));
            if (challenge.Length != 43 || !challenge.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                return (null, Redirect(OAuthErrors.InvalidRequest, "code_challenge must be the 43-character base64url SHA-256 of the verifier."));
        }

        p.TryGetValue("resource", out var resource);
        if (resource is not null)
        {
            var (_, targetFailure) = Resources.Resolve(resource, client, options.Issuer!);
            if (targetFailure is not null) return (null, Redirect(targetFailure.Error, targetFailure.Description));
        }

        p.TryGetValue("prompt", out var prompt);
        if (prompt is not null && prompt.Split(' ').Any(x => x is not ("none" or "login" or "consent")))
            return (null, Redirect(OAuthErrors.InvalidRequest, "Unsupported prompt value."));
        if (prompt is not null && prompt.Contains("none") && prompt != "none")
            return (null, Redirect(OAuthErrors.InvalidRequest, "prompt=none cannot be combined with other values."));
        int? maxAge = null;
        if (p.TryGetValue("max_age", out var maxAgeValue))
        {
            if (!int.TryParse(maxAgeValue, out var m) || m < 0)
                return (null, Redirect(OAuthErrors.InvalidRequest, "max_age must be a non-negative integer."));
            maxAge = m;
        }
        p.TryGetValue("nonce", out var nonce);
        if (nonce is { Length: > 512 } || state is { Length: > 2048 })
            return (null, Redirect(OAuthErrors.InvalidRequest, "state or nonce is too long."));

        // RFC 9449 §10: dpop_jkt binds the code to the key the token request will prove.
        p.TryGetValue("dpop_jkt", out var dpopJkt);
        if (dpopJkt is not null && (dpopJkt.Length != 43 || !dpopJkt.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            return (null, Redirect(OAuthErrors.InvalidRequest, "dpop_jkt must be a base64url SHA-256 JWK thumbprint."));

        return (new AuthorizeRequest(client, redirectUri, state, scopes, challenge, nonce, prompt, maxAge, resource, p, dpopJkt), null);
    }

    /// <summary>
    /// Exact string comparison (RFC 9700 §4.1.3), with one exception: native clients may use any port on a loopback
    /// IP redirect URI (RFC 8252 §7.3).
    /// </summary>
    public static bool RedirectUriMatches(Client client, string redirectUri)
    {
        if (client.RedirectUris.Contains(redirectUri, StringComparer.Ordinal)) return true;
        if (!client.Native || !Uri.TryCreate(redirectUri, UriKind.Absolute, out var requested)) return false;
        if (requested.Scheme != "http" || !(requested.Host is "127.0.0.1" or "[::1]")) return false;
        foreach (var registered in client.RedirectUris)
        {
            if (!Uri.TryCreate(registered, UriKind.Absolute, out var r) || r.Scheme != "http" || r.Host != requested.Host) continue;
            var a = new UriBuilder(requested) { Port = 0 }.Uri.GetComponents(UriComponents.HttpRequestUrl & ~UriComponents.Port, UriFormat.UriEscaped);
            var b = new UriBuilder(r) { Port = 0 }.Uri.GetComponents(UriComponents.HttpRequestUrl & ~UriComponents.Port, UriFormat.UriEscaped);
            if (a == b && requested.UserInfo.Length == 0 && requested.Fragment.Length == 0) return true;
        }
        return false;
    }
}
