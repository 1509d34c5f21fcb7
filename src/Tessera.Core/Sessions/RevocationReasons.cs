namespace Tessera.Core.Sessions;

/// <summary>Stable machine words for why a session ended; the account page turns them into sentences.</summary>
public static class RevocationReasons
{
    public const string Reuse = "refresh_token_reuse";
    public const string CodeReplay = "authorization_code_replay";
    public const string ClientRevoked = "revoked_by_client";
    public const string UserRevoked = "revoked_by_user";
    public const string AdminRevoked = "revoked_by_admin";
    public const string Logout = "logout";
    public const string UserDisabled = "user_disabled";
}
