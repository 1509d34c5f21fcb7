using Tessera.Core;
using Tessera.Core.Clients;
using Tessera.Server.Protocol;

namespace Tessera.Server.Endpoints;

/// <summary>RFC 8414 and OpenID Connect Discovery 1.0: the same document, the same issuer, at both well-known paths.</summary>
public static class DiscoveryEndpoint
{
    public static void Map(WebApplication app)
    {
        app.MapGet("/.well-known/openid-configuration", (TesseraOptions o) => Results.Json(Document(o.Issuer!), OAuthResults.JsonOptions));
        app.MapGet("/.well-known/oauth-authorization-server", (TesseraOptions o) => Results.Json(Document(o.Issuer!), OAuthResults.JsonOptions));
    }

    public static Dictionary<string, object> Document(string issuer) => new()
    {
        ["issuer"] = issuer,
        ["authorization_endpoint"] = issuer + AuthorizeEndpoint.Path,
        ["token_endpoint"] = issuer + TokenEndpoint.Path,
        ["jwks_uri"] = issuer + JwksEndpoint.Path,
        ["userinfo_endpoint"] = issuer + UserInfoEndpoint.Path,
        ["revocation_endpoint"] = issuer + RevocationEndpoint.Path,
        ["introspection_endpoint"] = issuer + IntrospectionEndpoint.Path,
        ["end_session_endpoint"] = issuer + LogoutEndpoint.Path,
        ["response_types_supported"] = new[] { "code" },
        ["response_modes_supported"] = new[] { "query" },
        ["grant_types_supported"] = GrantTypes.Supported,
        ["subject_types_supported"] = new[] { "public" },
        ["id_token_signing_alg_values_supported"] = Core.Keys.KeyRing.Algorithms,
        ["token_endpoint_auth_methods_supported"] = new[] { "client_secret_basic", "client_secret_post", "private_key_jwt", "none" },
        ["revocation_endpoint_auth_methods_supported"] = new[] { "client_secret_basic", "client_secret_post", "private_key_jwt", "none" },
        ["introspection_endpoint_auth_methods_supported"] = new[] { "client_secret_basic", "client_secret_post", "private_key_jwt" },
        ["token_endpoint_auth_signing_alg_values_supported"] = ClientAuthentication.PrivateKeyJwtValidator.Algorithms,
        ["code_challenge_methods_supported"] = new[] { "S256" },
        ["scopes_supported"] = new[] { "openid", "profile", "email", "offline_access" },
        ["claims_supported"] = new[] { "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid", "name", "preferred_username", "email" },
        ["authorization_response_iss_parameter_supported"] = true,
        ["prompt_values_supported"] = new[] { "none", "login", "consent" },
        ["dpop_signing_alg_values_supported"] = Core.Dpop.DpopProofValidator.Algorithms,
    };
}
