using Tessera.Core;
using Tessera.Core.Clients;
using Tessera.Core.Passwords;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;

namespace Tessera.Server.Hosting;

/// <summary>A client declared in configuration (<c>Tessera:Clients</c>). The configuration is authoritative for its id.</summary>
public sealed class ClientSeed
{
    public string Id { get; set; } = "";
    public string? Name { get; set; }
    /// <summary>Plain secret (hashed before it is stored); omit for a public client. Prefer an environment variable.</summary>
    public string? Secret { get; set; }
    public List<string> RedirectUris { get; set; } = [];
    public List<string> PostLogoutRedirectUris { get; set; } = [];
    public List<string> GrantTypes { get; set; } = [];
    public List<string> Scopes { get; set; } = [];
    public List<string> Resources { get; set; } = [];
    public bool FirstParty { get; set; }
    public bool Native { get; set; }
    public TimeSpan? AccessTokenLifetime { get; set; }
    public TimeSpan? RefreshIdleLifetime { get; set; }
    public TimeSpan? RefreshAbsoluteLifetime { get; set; }
    public TimeSpan? RefreshRetryWindow { get; set; }
    public bool RotateRefreshTokens { get; set; } = true;
    public int? MaxRefreshesPerMinute { get; set; }
    public string? BackchannelLogoutUri { get; set; }
    public bool RequireDpop { get; set; }
    /// <summary>A JWK Set (JSON) of the client's public keys for private_key_jwt, instead of a Secret.</summary>
    public string? Jwks { get; set; }
    /// <summary>ES256 (default), RS256 or EdDSA.</summary>
    public string? SigningAlgorithm { get; set; }
}

/// <summary>A user declared in configuration (<c>Tessera:Users</c>); created when missing, never overwritten.</summary>
public sealed class UserSeed
{
    public string Username { get; set; } = "";
    public string Password { get; set; } = "";
    public string? Name { get; set; }
    public string? Email { get; set; }
    public List<string>? Scopes { get; set; }
}

public static class ConfigSeed
{
    public static IEnumerable<string> Validate(IReadOnlyList<ClientSeed> clients, IReadOnlyList<UserSeed> users)
    {
        foreach (var c in clients)
        {
            var where = $"Tessera:Clients entry '{c.Id}'";
            if (string.IsNullOrWhiteSpace(c.Id)) yield return "Every Tessera:Clients entry needs an Id.";
            if (c.GrantTypes.Count == 0) yield return $"{where}: GrantTypes is empty; use authorization_code, refresh_token and/or client_credentials.";
            foreach (var g in c.GrantTypes.Where(g => !Core.Clients.GrantTypes.Supported.Contains(g)))
                yield return $"{where}: grant type '{g}' is not supported (no password or implicit grant).";
            if (c.Secret is null && c.Jwks is null && c.GrantTypes.Contains(Core.Clients.GrantTypes.ClientCredentials))
                yield return $"{where}: client_credentials needs a Secret or Jwks (confidential client).";
            if (c.SigningAlgorithm is not null && !Core.Keys.KeyRing.Algorithms.Contains(c.SigningAlgorithm))
                yield return $"{where}: SigningAlgorithm must be one of {string.Join(", ", Core.Keys.KeyRing.Algorithms)}.";
            if (c.Secret is not null && c.Jwks is not null) yield return $"{where}: give either Secret or Jwks, not both.";
            if (c.Secret is { Length: < 32 }) yield return $"{where}: Secret must be at least 32 characters of random text.";
            if (c.GrantTypes.Contains(Core.Clients.GrantTypes.AuthorizationCode) && c.RedirectUris.Count == 0)
                yield return $"{where}: authorization_code needs at least one RedirectUris entry.";
            foreach (var u in c.RedirectUris.Concat(c.PostLogoutRedirectUris))
                if (!Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Fragment.Length > 0)
                    yield return $"{where}: '{u}' must be an absolute URI without a fragment.";
            if (c.Secret is null && !c.RotateRefreshTokens) yield return $"{where}: public clients always rotate refresh tokens.";
        }
        foreach (var u in users)
        {
            if (string.IsNullOrWhiteSpace(u.Username)) yield return "Every Tessera:Users entry needs a Username.";
            if (u.Password.Length < 8) yield return $"Tessera:Users entry '{u.Username}': Password needs at least 8 characters.";
        }
    }

    public static async Task ApplyAsync(IServiceProvider sp, IReadOnlyList<ClientSeed> clients, IReadOnlyList<UserSeed> users, CancellationToken ct)
    {
        var store = sp.GetRequiredService<ITesseraStore>();
        var now = sp.GetRequiredService<TimeProvider>().GetUtcNow();
        foreach (var c in clients)
        {
            var secretHash = c.Secret is null ? null : Handles.Hash(c.Secret);
            var existing = await store.Clients.FindCurrentAsync(c.Id, ct);
            // A new secret in the configuration is a rotation, with the same consequences as `clients rotate-secret`.
            var rotated = existing?.SecretHash is not null && secretHash is not null && !Handles.HashEquals(existing.SecretHash, secretHash);
            await store.Clients.SaveAsync(new Client
            {
                Id = c.Id,
                DisplayName = c.Name ?? c.Id,
                SecretHash = secretHash,
                SecretRotatedAt = rotated ? now : existing?.SecretRotatedAt,
                RedirectUris = c.RedirectUris,
                PostLogoutRedirectUris = c.PostLogoutRedirectUris,
                GrantTypes = c.GrantTypes,
                Scopes = c.Scopes,
                Resources = c.Resources,
                FirstParty = c.FirstParty,
                Native = c.Native,
                AccessTokenLifetime = c.AccessTokenLifetime,
                BackchannelLogoutUri = c.BackchannelLogoutUri,
                RequireDpop = c.RequireDpop,
                Jwks = c.Jwks,
                SigningAlgorithm = c.SigningAlgorithm,
                Refresh = new RefreshPolicy
                {
                    IdleLifetime = c.RefreshIdleLifetime, AbsoluteLifetime = c.RefreshAbsoluteLifetime, RetryWindow = c.RefreshRetryWindow,
                    Rotate = c.RotateRefreshTokens, MaxRefreshesPerMinute = c.MaxRefreshesPerMinute,
                },
            }, ct);
            if (rotated)
                await sp.GetRequiredService<IRevocationPublisher>().ClientRevokedBeforeAsync(c.Id, RevocationTimes.AfterSecondOf(now), RevocationReasons.ClientSecretRotated, now, ct);
        }
        var hasher = sp.GetRequiredService<PasswordHasher>();
        foreach (var u in users)
        {
            if (await store.Users.FindByUsernameAsync(u.Username, ct) is not null) continue;
            await store.Users.CreateAsync(new User
            {
                Id = Handles.NewId(), Username = u.Username, Name = u.Name, Email = u.Email, PasswordHash = hasher.Hash(u.Password),
                AllowedScopes = u.Scopes, CreatedAt = DateTimeOffset.UtcNow,
            }, ct);
        }
    }
}
