namespace Tessera.Core.Sessions;

/// <summary>Stable machine words for why a session ended or tokens were revoked; the account page turns them into sentences.</summary>
public static class RevocationReasons
{
    public const string Reuse = "refresh_token_reuse";
    public const string CodeReplay = "authorization_code_replay";
    public const string ClientRevoked = "revoked_by_client";
    public const string UserRevoked = "revoked_by_user";
    public const string AdminRevoked = "revoked_by_admin";
    public const string Logout = "logout";
    public const string UserDisabled = "user_disabled";
    public const string PasswordReset = "password_reset";

    // Feed watermarks for changes that end no session: the sessions go on, the access tokens issued before do not.

    /// <summary>An operator locked the user: every access token issued before the lock is void.</summary>
    public const string UserLocked = "user_locked";

    /// <summary>The user's permissions were narrowed: tokens issued before carry scopes the user no longer has.</summary>
    public const string PermissionsChanged = "permissions_changed";

    /// <summary>The client's secret was rotated: tokens minted before may have been minted with the old secret.</summary>
    public const string ClientSecretRotated = "client_secret_rotated";

    /// <summary>The client was deleted: every token it obtained is void.</summary>
    public const string ClientDeleted = "client_deleted";
}
