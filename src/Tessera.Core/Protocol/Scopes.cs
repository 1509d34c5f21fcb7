namespace Tessera.Core.Protocol;

public static class Scopes
{
    public const string OpenId = "openid";
    public const string Profile = "profile";
    public const string Email = "email";
    public const string OfflineAccess = "offline_access";

    /// <summary>OpenID Connect scopes every user may grant; per-user permissions restrict only the others.</summary>
    public static readonly IReadOnlySet<string> Identity = new HashSet<string>(StringComparer.Ordinal) { OpenId, Profile, Email, OfflineAccess };

    /// <summary>RFC 6749 §3.3: space-delimited, case-sensitive; each scope-token is %x21 / %x23-5B / %x5D-7E.</summary>
    public static bool TryParse(string? value, out IReadOnlyList<string> scopes)
    {
        scopes = [];
        if (string.IsNullOrEmpty(value)) return true;
        var list = new List<string>();
        foreach (var s in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var c in s)
                if (c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E) return false;
            if (!list.Contains(s)) list.Add(s);
        }
        scopes = list;
        return true;
    }

    public static string Join(IEnumerable<string> scopes) => string.Join(' ', scopes);
}
