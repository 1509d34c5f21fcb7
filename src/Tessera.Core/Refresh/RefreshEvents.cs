using Tessera.Core.Clients;
using Tessera.Core.Sessions;
using Tessera.Core.Users;

namespace Tessera.Core.Refresh;

/// <summary>What an operator's refresh-time policy sees, and what it may change.</summary>
/// <remarks>
/// On the embedded store the hook may first see a copy of the session and user kept in memory (see
/// <c>ISessionStore.FindCopyByCurrentToken</c>). A verdict on a copy counts only if the session row and the user are
/// still at the copy's versions when the rotation commits; otherwise the hook runs again on a read. The per-minute
/// refresh counters and the retry-window copy are not versioned and may be older on a copy.
/// </remarks>
public sealed class RefreshValidationContext
{
    public required Client Client { get; init; }
    public required User User { get; init; }
    public required Session Session { get; init; }
    public string? IpAddress { get; init; }
    public string? UserAgent { get; init; }

    /// <summary>The scopes the new access token will carry. A policy may remove scopes, never add them.</summary>
    public required IReadOnlyList<string> Scopes { get; set; }

    public string? RejectReason { get; private set; }

    public string? NarrowReason { get; private set; }

    /// <summary>Refuses the refresh. The reason goes to the audit log; the client sees only <c>invalid_grant</c>.</summary>
    public void Reject(string reason) => RejectReason = reason;

    /// <summary>Keeps only <paramref name="keep"/> of the scopes (never adds any); the reason goes to the audit log.</summary>
    public void Narrow(IEnumerable<string> keep, string reason)
    {
        var allowed = keep.ToHashSet(StringComparer.Ordinal);
        Scopes = Scopes.Where(allowed.Contains).ToList();
        NarrowReason = reason;
    }
}

/// <summary>Extension points of the refresh state machine, in the style of ASP.NET Core's JwtBearerEvents.</summary>
public class RefreshEvents
{
    /// <summary>Runs after every built-in check passed and before the token is rotated.</summary>
    public Func<RefreshValidationContext, Task> OnValidateRefresh { get; set; } = _ => Task.CompletedTask;

    public virtual Task ValidateRefresh(RefreshValidationContext context) => OnValidateRefresh(context);
}

/// <summary>
/// Example policy: refuse a refresh when the browser or app family in the User-Agent differs from the one the
/// session was started with (a token replayed from another kind of device).
/// </summary>
public static class UserAgentFamilyPolicy
{
    public static Task Validate(RefreshValidationContext context)
    {
        var before = Family(context.Session.UserAgent);
        var now = Family(context.UserAgent);
        if (before is not null && now is not null && before != now)
            context.Reject($"user agent family changed from {before} to {now}");
        return Task.CompletedTask;
    }

    /// <summary>The product family of a User-Agent string: the first product token that is not a generic one.</summary>
    public static string? Family(string? userAgent)
    {
        if (string.IsNullOrWhiteSpace(userAgent)) return null;
        string[] known = ["Edg", "OPR", "Firefox", "Chrome", "Safari", "curl", "okhttp", "python-requests", "Dalvik"];
        foreach (var k in known)
            if (userAgent.Contains(k + "/", StringComparison.Ordinal)) return k;
        var first = userAgent.Split(' ', 2)[0];
        return first.Split('/')[0];
    }
}
