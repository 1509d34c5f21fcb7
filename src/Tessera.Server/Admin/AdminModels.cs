using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Sessions;
using Tessera.Core.Users;

namespace Tessera.Server.Admin;

public sealed record Page<T>(IReadOnlyList<T> Items, int? NextOffset);

public sealed record UserView(string Id, string Username, string? Name, string? Email, bool Disabled, DateTimeOffset? LockedUntil,
    DateTimeOffset? RevokedBefore, IReadOnlyList<string>? Scopes, DateTimeOffset CreatedAt)
{
    public static UserView From(User u) => new(u.Id, u.Username, u.Name, u.Email, u.Disabled, u.LockedUntil, u.RevokedBefore, u.AllowedScopes, u.CreatedAt);
}

public sealed record CreateUserRequest(string Username, string Password, string? Name, string? Email, IReadOnlyList<string>? Scopes);

/// <summary>Every member optional: only what is given changes. <c>AllScopes</c> lifts the per-user restriction.</summary>
public sealed record UpdateUserRequest(bool? Disabled, DateTimeOffset? LockedUntil, bool? Unlock, string? Password, IReadOnlyList<string>? Scopes, bool? AllScopes);

public sealed record RefreshPolicyView(TimeSpan? IdleLifetime, TimeSpan? AbsoluteLifetime, TimeSpan? RetryWindow, bool Rotate, bool IssueWithoutOfflineAccess, int? MaxRefreshesPerMinute);

public sealed record ClientView(string Id, string Name, bool Confidential, IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris,
    IReadOnlyList<string> GrantTypes, IReadOnlyList<string> Scopes, IReadOnlyList<string> Resources, bool FirstParty, bool Native,
    TimeSpan? AccessTokenLifetime, RefreshPolicyView Refresh, string? BackchannelLogoutUri, bool RequireDpop, string? SigningAlgorithm, string? Secret = null)
{
    public static ClientView From(Client c, string? secret = null) => new(c.Id, c.DisplayName, !c.IsPublic, c.RedirectUris, c.PostLogoutRedirectUris,
        c.GrantTypes, c.Scopes, c.Resources, c.FirstParty, c.Native, c.AccessTokenLifetime,
        new RefreshPolicyView(c.Refresh.IdleLifetime, c.Refresh.AbsoluteLifetime, c.Refresh.RetryWindow, c.Refresh.Rotate, c.Refresh.IssueWithoutOfflineAccess, c.Refresh.MaxRefreshesPerMinute),
        c.BackchannelLogoutUri, c.RequireDpop, c.SigningAlgorithm, secret);
}

public sealed record ClientRequest(string Id, string? Name, bool Confidential, IReadOnlyList<string>? RedirectUris, IReadOnlyList<string>? PostLogoutRedirectUris,
    IReadOnlyList<string> GrantTypes, IReadOnlyList<string>? Scopes, IReadOnlyList<string>? Resources, bool FirstParty, bool Native,
    TimeSpan? AccessTokenLifetime, RefreshPolicyView? Refresh, string? BackchannelLogoutUri = null, bool RequireDpop = false, string? SigningAlgorithm = null)
{
    public Client ToClient() => new()
    {
        Id = Id, DisplayName = Name ?? Id, RedirectUris = RedirectUris ?? [], PostLogoutRedirectUris = PostLogoutRedirectUris ?? [],
        GrantTypes = GrantTypes ?? [], Scopes = Scopes ?? [], Resources = Resources ?? [], FirstParty = FirstParty, Native = Native,
        AccessTokenLifetime = AccessTokenLifetime,
        BackchannelLogoutUri = BackchannelLogoutUri,
        RequireDpop = RequireDpop,
        SigningAlgorithm = SigningAlgorithm,
        Refresh = Refresh is null ? new RefreshPolicy() : new RefreshPolicy
        {
            IdleLifetime = Refresh.IdleLifetime, AbsoluteLifetime = Refresh.AbsoluteLifetime, RetryWindow = Refresh.RetryWindow, Rotate = Refresh.Rotate,
            IssueWithoutOfflineAccess = Refresh.IssueWithoutOfflineAccess, MaxRefreshesPerMinute = Refresh.MaxRefreshesPerMinute,
        },
    };
}

public sealed record SessionView(string Id, string UserId, string ClientId, IReadOnlyList<string> Scopes, DateTimeOffset CreatedAt, DateTimeOffset LastUsedAt,
    DateTimeOffset IdleExpiresAt, DateTimeOffset AbsoluteExpiresAt, DateTimeOffset? RevokedAt, string? RevokedReason, string? UserAgent, string? IpAddress, bool Active)
{
    public static SessionView From(Session s, DateTimeOffset now) => new(s.Id, s.UserId, s.ClientId, s.Scopes, s.CreatedAt, s.LastUsedAt,
        s.IdleExpiresAt, s.AbsoluteExpiresAt, s.RevokedAt, s.RevokedReason, s.UserAgent, s.IpAddress, s.IsActive(now));
}

public sealed record AuditPage(IReadOnlyList<AuditEvent> Items, long? NextBefore);
