using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Clients;
using Tessera.Core.Dpop;
using Tessera.Server.Endpoints;

namespace Tessera.Server.ClientAuthentication;

/// <summary>
/// private_key_jwt (RFC 7523 §3, OIDC Core §9): a JWT signed with a key from the client's registered JWK Set, with
/// iss = sub = client_id, aud = the issuer or the endpoint's URL, a short lifetime and a jti used once.
/// </summary>
public sealed class PrivateKeyJwtValidator(IReplayCache replay, TesseraOptions options, TimeProvider time)
{
    public const string AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    public static readonly string[] Algorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSsaPssSha256];
    private static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(5);
    private static readonly JsonWebTokenHandler Handler = new();

    /// <summary>The client id the assertion claims, without checking anything (to look the client up).</summary>
    public static string? ClaimedClientId(string assertion)
    {
        try
        {
            var jwt = new JsonWebToken(assertion);
            return jwt.TryGetPayloadValue<string>("iss", out var iss) ? iss : null;
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenMalformedException)
        {
            return null;
        }
    }

    /// <summary>Null when valid, else the reason for the audit log.</summary>
    public async Task<string?> ValidateAsync(Client client, string assertion, string endpointPath, CancellationToken ct)
    {
        if (client.Jwks is null) return "client has no registered keys";
        if (assertion.Length > 8192) return "assertion too large";
        JsonWebKeySet keys;
        try { keys = new JsonWebKeySet(client.Jwks); } catch (ArgumentException) { return "client's registered JWK Set is malformed"; }
        var now = time.GetUtcNow();
        var result = await Handler.ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            ValidIssuer = client.Id,
            // RFC 7523 §3: the audience identifies the authorization server: its issuer or the endpoint's URL.
            ValidAudiences = [options.Issuer!, options.Issuer + endpointPath, options.Issuer + TokenEndpoint.Path],
            IssuerSigningKeys = keys.GetSigningKeys(),
            ValidAlgorithms = Algorithms,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            TryAllIssuerSigningKeys = true,
            LifetimeValidator = (nbf, exp, _, _) => exp is { } e && e > now.UtcDateTime && e - now.UtcDateTime <= MaxLifetime && (nbf is not { } n || n <= now.UtcDateTime.AddSeconds(30)),
        });
        if (!result.IsValid) return "client assertion invalid: " + result.Exception?.GetType().Name;
        var jwt = (JsonWebToken)result.SecurityToken;
        if (jwt.Subject != client.Id) return "client assertion sub is not the client id";
        if (!jwt.TryGetPayloadValue<string>("jti", out var jti) || string.IsNullOrEmpty(jti) || jti.Length > 256) return "client assertion has no jti";
        // RFC 7523 §3 (7): the jti may be used once.
        if (!await replay.TryRememberAsync(SHA256.HashData(Encoding.UTF8.GetBytes("client-assertion\0" + client.Id + "\0" + jti)), now, jwt.ValidTo.AddSeconds(30), ct))
            return "client assertion replayed";
        return null;
    }
}
