using System.Runtime.CompilerServices;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using Tessera.EdDsa;

namespace Tessera.ResourceServer;

/// <summary>
/// Lets an API that allow-lists <c>EdDSA</c> find the authority's Ed25519 keys. Microsoft.IdentityModel reads the
/// JWKS but leaves RFC 8037 "OKP" keys out of the configuration's signing keys, so this resolver adds them (converted
/// once per fetched configuration) to the keys it already knows, and otherwise resolves exactly as the stock handler
/// does: the keys whose kid (or x5t) the token names; none, and the handler goes on to try every key.
/// Only installed when <see cref="TesseraAccessTokenOptions.ValidAlgorithms"/> contains <c>EdDSA</c>, so an API that
/// does not accept EdDSA resolves keys exactly as before and never loads libsodium.
/// </summary>
internal static class EdDsaKeyResolver
{
    private static readonly ConditionalWeakTable<BaseConfiguration, IReadOnlyList<EdDsaSecurityKey>> Converted = new();

    public static IEnumerable<SecurityKey>? Resolve(string token, SecurityToken securityToken, string kid, TokenValidationParameters parameters, BaseConfiguration? configuration)
    {
        var edKeys = configuration is OpenIdConnectConfiguration { JsonWebKeySet: { } set }
            ? Converted.GetValue(configuration, _ => EdDsaSecurityKey.SigningKeysOf(set))
            : [];
        var x5t = (securityToken as JsonWebToken)?.X5t;
        var candidates = Candidates(parameters, configuration, edKeys);

        if (!string.IsNullOrEmpty(kid) || !string.IsNullOrEmpty(x5t))
        {
            var named = candidates.Where(k => Names(k, kid, x5t)).ToList();
            return named.Count > 0 ? named : null;
        }
        // No kid: the stock handler tries all of its keys; an EdDSA token may also be signed by one of these.
        return (securityToken as JsonWebToken)?.Alg == EdDsaAlgorithms.EdDsa && edKeys.Count > 0 ? edKeys : null;
    }

    private static IEnumerable<SecurityKey> Candidates(TokenValidationParameters parameters, BaseConfiguration? configuration, IReadOnlyList<EdDsaSecurityKey> edKeys)
    {
        if (parameters.IssuerSigningKey is { } single) yield return single;
        if (parameters.IssuerSigningKeys is { } keys)
            foreach (var k in keys) yield return k;
        if (configuration?.SigningKeys is { } fetched)
            foreach (var k in fetched) yield return k;
        foreach (var k in edKeys) yield return k;
    }

    private static bool Names(SecurityKey key, string? kid, string? x5t)
    {
        if (!string.IsNullOrEmpty(kid) && key.KeyId is { } id
            && string.Equals(id, kid, key is X509SecurityKey ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
            return true;
        return !string.IsNullOrEmpty(x5t) && key is X509SecurityKey x509 && string.Equals(x509.X5t, x5t, StringComparison.OrdinalIgnoreCase);
    }
}
