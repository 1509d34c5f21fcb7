using Tessera.Core.Clients;
using Tessera.Core.Protocol;

namespace Tessera.Server.Grants;

/// <summary>A token request after the form was read and the client authenticated.</summary>
public sealed record TokenRequest(HttpContext Http, IReadOnlyDictionary<string, string> Form, Client Client, Tessera.Core.Dpop.DpopProof? Dpop = null)
{
    public string? this[string name] => Form.TryGetValue(name, out var v) ? v : null;

    public string? IpAddress => Http.Connection.RemoteIpAddress?.ToString();

    public string? UserAgent
    {
        get
        {
            var ua = Http.Request.Headers.UserAgent.ToString();
            return ua.Length == 0 ? null : ua.Length > 512 ? ua[..512] : ua;
        }
    }
}

/// <summary>What a grant handler decided: a token response to write, or an RFC 6749 §5.2 error.</summary>
public sealed record GrantResult(Dictionary<string, object>? Response, OAuthFailure? Failure)
{
    public static GrantResult Fail(string error, string description, int? status = null) => new(null, new OAuthFailure(error, description, Status: status));
    public static GrantResult Fail(OAuthFailure failure) => new(null, failure);
}

internal static class Resources
{
    /// <summary>
    /// RFC 8707 §2: the resource must be an absolute URI without a fragment, and one this client may ask for;
    /// without one, the client's first configured resource, else the issuer.
    /// </summary>
    public static (string? Audience, OAuthFailure? Failure) Resolve(string? requested, Client client, string issuer)
    {
        if (requested is null) return (client.Resources.Count > 0 ? client.Resources[0] : issuer, null);
        if (!Uri.TryCreate(requested, UriKind.Absolute, out var uri) || uri.Fragment.Length > 0)
            return (null, new OAuthFailure(OAuthErrors.InvalidTarget, "The resource must be an absolute URI without a fragment."));
        if (!client.Resources.Contains(requested, StringComparer.Ordinal))
            return (null, new OAuthFailure(OAuthErrors.InvalidTarget, "This client may not request tokens for that resource."));
        return (requested, null);
    }
}
