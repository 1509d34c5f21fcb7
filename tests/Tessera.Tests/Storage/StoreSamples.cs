using System.Security.Cryptography;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Keys;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;

namespace Tessera.Tests.Storage;

/// <summary>Sample rows for the store tests. Times are whole milliseconds in UTC, the precision the stores keep.</summary>
internal static class StoreSamples
{
    public static readonly DateTimeOffset T0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public static byte[] Hash() => RandomNumberGenerator.GetBytes(32);

    public static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public static Client NewClient(string id) => new()
    {
        Id = id,
        DisplayName = $"The {id} app",
        SecretHash = Hash(),
        RedirectUris = ["https://app.example/callback", "https://app.example/other"],
        PostLogoutRedirectUris = ["https://app.example/bye"],
        GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken],
        Scopes = ["openid", "profile", "offline_access", "api.read"],
        Resources = ["https://api.example", "https://other.example"],
        FirstParty = true,
        Native = true,
        AccessTokenLifetime = TimeSpan.FromMinutes(7),
        Refresh = new RefreshPolicy
        {
            IdleLifetime = TimeSpan.FromDays(3) + TimeSpan.FromMilliseconds(250),
            AbsoluteLifetime = TimeSpan.FromDays(45),
            RetryWindow = TimeSpan.FromSeconds(12),
            Rotate = false,
            IssueWithoutOfflineAccess = true,
            MaxRefreshesPerMinute = 9,
        },
        RequireDpop = true,
        RequireDpopNonce = true,
    };

    public static User NewUser(string id, string username) => new()
    {
        Id = id,
        Username = username,
        PasswordHash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
        Name = "Alice Example",
        Email = "alice@example.org",
        Disabled = false,
        LockedUntil = T0.AddMinutes(15),
        RevokedBefore = T0.AddDays(-1),
        AllowedScopes = ["api.read", "api.write"],
        CreatedAt = T0.AddDays(-30),
    };

    public static AuthorizationCode NewCode(string clientId = "client-1", string userId = "user-1") => new()
    {
        Hash = Hash(),
        ClientId = clientId,
        UserId = userId,
        RedirectUri = "https://app.example/callback",
        Scopes = ["openid", "offline_access"],
        Resource = "https://api.example",
        CodeChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        Nonce = "n-0S6_WzA2Mj",
        DpopJkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        AuthTime = T0.AddSeconds(-5),
        CreatedAt = T0,
        ExpiresAt = T0.AddMinutes(1),
    };

    /// <summary>A live session with a current refresh token and nothing consumed yet.</summary>
    public static Session NewSession(string userId = "user-1", string clientId = "client-1", DateTimeOffset? createdAt = null)
    {
        var created = createdAt ?? T0;
        return new Session
        {
            Id = NewId("sid"),
            UserId = userId,
            ClientId = clientId,
            Scopes = ["openid", "offline_access", "api.read"],
            Resource = "https://api.example",
            CreatedAt = created,
            AuthTime = created.AddSeconds(-3),
            LastUsedAt = created,
            IdleExpiresAt = created.AddDays(14),
            AbsoluteExpiresAt = created.AddDays(90),
            UserAgent = "Mozilla/5.0 Firefox/133.0",
            IpAddress = "203.0.113.7",
            FamilyHash = Hash(),
            CurrentTokenHash = Hash(),
            DpopJkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        };
    }

    public static Rotation RotationOf(Session s, byte[] expected, byte[] next, DateTimeOffset now, byte[]? protectedNext = null, string? ip = "198.51.100.4") =>
        new(s.Id, expected, next, protectedNext, now, now.AddDays(14), ip, "Mozilla/5.0 Firefox/134.0",
            new AuditEvent { At = now, Type = AuditTypes.Refreshed, UserId = s.UserId, ClientId = s.ClientId, SessionId = s.Id, IpAddress = ip });

    public static AuditEvent NewEvent(DateTimeOffset at, string type = AuditTypes.TokenIssued, string? user = "user-1", string? client = "client-1", string? session = null) => new()
    {
        At = at,
        Type = type,
        UserId = user,
        ClientId = client,
        SessionId = session,
        IpAddress = "192.0.2.1",
        Reason = $"{type} at {at:O}",
    };

    public static SigningKeyRecord NewKey(string kid, DateTimeOffset activatesAt, DateTimeOffset? retiresAt = null) => new()
    {
        Kid = kid,
        Algorithm = "ES256",
        ProtectedPrivateKey = RandomNumberGenerator.GetBytes(96),
        CreatedAt = activatesAt.AddDays(-1),
        ActivatesAt = activatesAt,
        RetiresAt = retiresAt,
    };

    public static RevocationEvent Revocation(DateTimeOffset at, string user = "user-1", string? session = null, DateTimeOffset? revokedBefore = null) => new()
    {
        At = at,
        UserId = user,
        SessionId = session,
        ClientId = session is null ? null : "client-1",
        RevokedBefore = revokedBefore,
        Reason = "logout",
    };
}
