using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.Bff.Oidc;

/// <summary>The parts of the discovery document the backend uses (OIDC Discovery 1.0 / RFC 8414).</summary>
public sealed record AuthorityMetadata(
    string Issuer,
    string AuthorizationEndpoint,
    string TokenEndpoint,
    string JwksUri,
    string? RevocationEndpoint,
    string? IntrospectionEndpoint,
    bool IssParameterSupported);

/// <summary>RFC 6749 §5.1 success.</summary>
public sealed record TokenResponse(string AccessToken, string TokenType, TimeSpan ExpiresIn, string? RefreshToken, TimeSpan? RefreshExpiresIn, string? IdToken, string? Scope);

/// <summary>What a call to the token endpoint came to: tokens, a refusal (RFC 6749 §5.2: the grant is dead), or no answer.</summary>
public sealed record TokenResult(TokenResponse? Tokens, string? Error, bool Unavailable)
{
    public static TokenResult Refused(string error) => new(null, error, false);
    public static readonly TokenResult NoAnswer = new(null, null, true);
}

/// <summary>
/// Talks to Tessera: discovery (cached), JWKS (cached, re-fetched when an unknown key signs), and the token,
/// revocation and introspection endpoints with <c>client_secret_basic</c>. No token is ever logged.
/// </summary>
public sealed class AuthorityClient(IHttpClientFactory httpClients, IOptions<TesseraBffOptions> options, TimeProvider time, ILogger<AuthorityClient> logger)
{
    public const string HttpClientName = "Tessera.Bff.Authority";
    private static readonly TimeSpan MetadataLifetime = TimeSpan.FromHours(1);
    private static readonly TimeSpan MinJwksRefreshInterval = TimeSpan.FromSeconds(10);

    private readonly TesseraBffOptions _o = options.Value;
    private readonly SemaphoreSlim _metadataLock = new(1, 1);
    private (AuthorityMetadata Metadata, DateTimeOffset FetchedAt)? _metadata;
    private (IReadOnlyList<SecurityKey> Keys, DateTimeOffset FetchedAt)? _jwks;

    private string Issuer => _o.Authority.TrimEnd('/');

    public async Task<AuthorityMetadata> GetMetadataAsync(CancellationToken ct)
    {
        if (_metadata is { } cached && time.GetUtcNow() - cached.FetchedAt < MetadataLifetime) return cached.Metadata;
        await _metadataLock.WaitAsync(ct);
        try
        {
            if (_metadata is { } again && time.GetUtcNow() - again.FetchedAt < MetadataLifetime) return again.Metadata;
            using var response = await Http.GetAsync(Issuer + "/.well-known/openid-configuration", ct);
            response.EnsureSuccessStatusCode();
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            var root = doc.RootElement;
            string Required(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
                ? v.GetString()! : throw new InvalidOperationException($"The discovery document has no {name}.");
            string? Optional(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            var metadata = new AuthorityMetadata(
                Required("issuer"), Required("authorization_endpoint"), Required("token_endpoint"), Required("jwks_uri"),
                Optional("revocation_endpoint"), Optional("introspection_endpoint"),
                root.TryGetProperty("authorization_response_iss_parameter_supported", out var iss) && iss.ValueKind == JsonValueKind.True);
            // OIDC Discovery §4.3: "The issuer value returned MUST be identical to the Issuer URL that was used as the prefix".
            if (!string.Equals(metadata.Issuer, Issuer, StringComparison.Ordinal))
                throw new InvalidOperationException($"The discovery document names issuer '{metadata.Issuer}', not the configured Authority '{Issuer}'.");
            _metadata = (metadata, time.GetUtcNow());
            return metadata;
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>The published signing keys; <paramref name="refresh"/> re-fetches (at most every 10 s) after an unknown key signed.</summary>
    public async Task<IReadOnlyList<SecurityKey>> GetSigningKeysAsync(bool refresh, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (_jwks is { } cached && now - cached.FetchedAt < MetadataLifetime && (!refresh || now - cached.FetchedAt < MinJwksRefreshInterval))
            return cached.Keys;
        var metadata = await GetMetadataAsync(ct);
        var json = await Http.GetStringAsync(metadata.JwksUri, ct);
        var set = new JsonWebKeySet(json);
        var keys = set.GetSigningKeys().ToList();
        // GetSigningKeys leaves RFC 8037 "OKP" keys out; they are read only when EdDSA is accepted at all.
        if (_o.SigningAlgorithms.Contains(Tessera.EdDsa.EdDsaAlgorithms.EdDsa)) keys.AddRange(Tessera.EdDsa.EdDsaSecurityKey.SigningKeysOf(set));
        _jwks = (keys, now);
        return keys;
    }

    public Task<TokenResult> RedeemCodeAsync(string code, string verifier, string redirectUri, CancellationToken ct) =>
        PostTokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["code_verifier"] = verifier,
            ["redirect_uri"] = redirectUri,
        }, ct);

    /// <summary>RFC 6749 §6; <paramref name="scope"/> narrows the new access token (never wider than granted).</summary>
    public Task<TokenResult> RefreshAsync(string refreshToken, string? scope, CancellationToken ct)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken };
        if (scope is not null) form["scope"] = scope;
        return PostTokenAsync(form, ct);
    }

    /// <summary>RFC 7009. True when Tessera confirmed (200); revocation of an unknown token is also 200.</summary>
    public async Task<bool> RevokeAsync(string token, string hint, CancellationToken ct)
    {
        try
        {
            var metadata = await GetMetadataAsync(ct);
            if (metadata.RevocationEndpoint is null) return false;
            using var response = await SendAsync(metadata.RevocationEndpoint, new Dictionary<string, string> { ["token"] = token, ["token_type_hint"] = hint }, ct);
            if (!response.IsSuccessStatusCode) BffLog.RevocationFailed(logger, (int)response.StatusCode);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            BffLog.AuthorityUnreachable(logger, "revocation", e.Message);
            return false;
        }
    }

    /// <summary>RFC 7662: true or false when Tessera answered, null when it could not be asked.</summary>
    public async Task<bool?> IsActiveAsync(string token, string hint, CancellationToken ct)
    {
        try
        {
            var metadata = await GetMetadataAsync(ct);
            if (metadata.IntrospectionEndpoint is null) return null;
            using var response = await SendAsync(metadata.IntrospectionEndpoint, new Dictionary<string, string> { ["token"] = token, ["token_type_hint"] = hint }, ct);
            if (!response.IsSuccessStatusCode) return null;
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            return doc.RootElement.TryGetProperty("active", out var active) && active.ValueKind == JsonValueKind.True;
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            BffLog.AuthorityUnreachable(logger, "introspection", e.Message);
            return null;
        }
    }

    private async Task<TokenResult> PostTokenAsync(Dictionary<string, string> form, CancellationToken ct)
    {
        try
        {
            var metadata = await GetMetadataAsync(ct);
            using var response = await SendAsync(metadata.TokenEndpoint, form, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            using var doc = JsonDocument.Parse(body.Length == 0 ? "{}" : body);
            var root = doc.RootElement;
            string? S(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            long? N(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : null;
            if (response.IsSuccessStatusCode)
            {
                var accessToken = S("access_token");
                var tokenType = S("token_type");
                if (accessToken is null || !string.Equals(tokenType, "Bearer", StringComparison.OrdinalIgnoreCase))
                    return TokenResult.Refused("invalid_response");
                var refreshIn = N("refresh_expires_in");
                return new TokenResult(new TokenResponse(accessToken, tokenType!, TimeSpan.FromSeconds(N("expires_in") ?? 60), S("refresh_token"),
                    refreshIn is { } r ? TimeSpan.FromSeconds(r) : null, S("id_token"), S("scope")), null, false);
            }
            // RFC 6749 §5.2: 400 (or 401 for invalid_client) with an error code: the grant is dead, asking again will not help.
            if ((int)response.StatusCode is 400 or 401 && S("error") is { } error)
            {
                BffLog.TokenRequestRefused(logger, form["grant_type"], error);
                return TokenResult.Refused(error);
            }
            BffLog.AuthorityUnreachable(logger, "token", $"HTTP {(int)response.StatusCode}");
            return TokenResult.NoAnswer;
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            BffLog.AuthorityUnreachable(logger, "token", e.Message);
            return TokenResult.NoAnswer;
        }
    }

    private async Task<HttpResponseMessage> SendAsync(string endpoint, Dictionary<string, string> form, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new FormUrlEncodedContent(form) };
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
        var credentials = Uri.EscapeDataString(_o.ClientId) + ":" + Uri.EscapeDataString(_o.ClientSecret);
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        return await Http.SendAsync(request, ct);
    }

    /// <summary>Tessera down, slow, or answering something that is not its protocol: "no answer", never a crash.</summary>
    public static bool IsUnreachable(Exception e) =>
        e is HttpRequestException or TaskCanceledException or JsonException or InvalidOperationException;

    private HttpClient Http => httpClients.CreateClient(HttpClientName);
}
