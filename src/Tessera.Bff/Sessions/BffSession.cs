using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Tessera.Bff.Sessions;

/// <summary>A short-lived access token handed to the SPA in token-mediating mode, cached per scope set.</summary>
public sealed record MediatedToken(string AccessToken, string Scope, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt);

/// <summary>
/// The server side of a browser session. The browser holds only a random id; the store keys the row by the id's
/// SHA-256, so a leaked database does not hand out valid cookies, and encrypts everything below at rest.
/// </summary>
public sealed record BffSession
{
    /// <summary>SHA-256 of the cookie value (base64url): the row key.</summary>
    public required string Key { get; init; }
    public required string Subject { get; init; }

    /// <summary>Tessera's session id (<c>sid</c> of the ID token), for back-channel logout.</summary>
    public string? TesseraSessionId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }

    public required string AccessToken { get; init; }
    public required DateTimeOffset AccessTokenIssuedAt { get; init; }
    public required DateTimeOffset AccessTokenExpiresAt { get; init; }
    public string? RefreshToken { get; init; }
    public string? IdToken { get; init; }

    /// <summary>The scopes Tessera granted at sign-in (the token response's <c>scope</c>).</summary>
    public required IReadOnlyList<string> GrantedScopes { get; init; }

    /// <summary>The claims <c>/bff/user</c> may show.</summary>
    public required IReadOnlyDictionary<string, string> Claims { get; init; }

    public IReadOnlyDictionary<string, MediatedToken> MediatedTokens { get; init; } = new Dictionary<string, MediatedToken>();

    /// <summary>A new random session id for the cookie: 256 bits.</summary>
    public static string NewId() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>The store key of a cookie value.</summary>
    public static string KeyOf(string sessionId) => Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(sessionId)));
}
