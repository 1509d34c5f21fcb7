using Tessera.Core.Clients;

namespace Tessera.Tests.Infrastructure;

/// <summary>Client shapes the tests use; each test registers its own copies on its own server.</summary>
public static class TestClients
{
    public const string Api = "https://api.example.com";

    public static Client Confidential(string id = "web", bool firstParty = true) => new()
    {
        Id = id,
        DisplayName = "Web app",
        RedirectUris = [OAuthDriver.RedirectUri],
        GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken, GrantTypes.ClientCredentials],
        Scopes = ["openid", "profile", "email", "offline_access", "api.read", "api.write"],
        Resources = [Api],
        FirstParty = firstParty,
    };

    public static Client Public(string id = "spa", bool firstParty = true) => Confidential(id, firstParty) with
    {
        GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken],
    };
}
