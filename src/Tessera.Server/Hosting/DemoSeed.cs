using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Clients;
using Tessera.Core.Passwords;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;

namespace Tessera.Server.Hosting;

/// <summary>Demo mode: a confidential client, a public PKCE client and a user, and instructions on the console.</summary>
public static class DemoSeed
{
    public const string ServiceClientId = "demo-service";
    public const string AppClientId = "demo-app";
    public const string Username = "demo";
    public const string Password = "tessera-demo";

    public static async Task RunAsync(IServiceProvider sp, CancellationToken ct)
    {
        var store = sp.GetRequiredService<ITesseraStore>();
        var options = sp.GetRequiredService<TesseraOptions>();
        var hasher = sp.GetRequiredService<PasswordHasher>();
        var issuer = options.Issuer!;
        var secret = Handles.NewClientSecret();
        await store.Clients.SaveAsync(new Client
        {
            Id = ServiceClientId,
            DisplayName = "Demo service",
            SecretHash = Handles.Hash(secret),
            GrantTypes = [GrantTypes.ClientCredentials],
            Scopes = ["api.read", "api.write"],
            Resources = ["https://api.example.com"],
        }, ct);
        var callback = issuer + "/demo/callback";
        await store.Clients.SaveAsync(new Client
        {
            Id = AppClientId,
            DisplayName = "Demo app",
            RedirectUris = [callback],
            PostLogoutRedirectUris = [issuer + "/"],
            GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken],
            Scopes = ["openid", "profile", "email", "offline_access", "api.read"],
            Resources = ["https://api.example.com"],
            FirstParty = false,
        }, ct);
        if (await store.Users.FindByUsernameAsync(Username, ct) is null)
            await store.Users.CreateAsync(new User
            {
                Id = Handles.NewId(), Username = Username, Name = "Demo User", Email = "demo@example.com",
                PasswordHash = hasher.Hash(Password), CreatedAt = DateTimeOffset.UtcNow,
            }, ct);

        var verifier = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        DemoCallback.Verifier = verifier;
        var url = $"{issuer}/connect/authorize?response_type=code&client_id={AppClientId}&redirect_uri={Uri.EscapeDataString(callback)}" +
                  $"&scope=openid%20profile%20offline_access%20api.read&state=demo&code_challenge={challenge}&code_challenge_method=S256";
        Console.WriteLine($"""

            ── Tessera demo ───────────────────────────────────────────────────────────────
            Client credentials (confidential client '{ServiceClientId}', secret shown once, new at every start):
              curl -s -u {ServiceClientId}:{secret} -d grant_type=client_credentials {issuer}/connect/token

            Authorization code + PKCE in a browser (public client '{AppClientId}'), sign in as {Username} / {Password}:
              {url}
            The callback page shows the code and the curl line that exchanges it (PKCE verifier included).
            ───────────────────────────────────────────────────────────────────────────────

            """);
    }
}

/// <summary>The demo's redirect target: shows the code and how to redeem it. Mapped only in demo mode.</summary>
public static class DemoCallback
{
    public static string? Verifier { get; set; }

    public static void Map(WebApplication app, string issuer) => app.MapGet("/demo/callback", (string? code, string? error, string? state) =>
    {
        if (error is not null) return Pages.Html.Page("Demo callback", $"<p class=\"error\">{Pages.Html.E(error)}</p>");
        var curl = $"curl -s -d grant_type=authorization_code -d client_id={DemoSeed.AppClientId} -d code={code} " +
                   $"-d redirect_uri={issuer}/demo/callback -d code_verifier={Verifier} {issuer}/connect/token";
        return Pages.Html.Page("Demo callback", $"<p>Code received (valid 60 seconds, once). Redeem it:</p><pre style=\"white-space:pre-wrap\">{Pages.Html.E(curl)}</pre>");
    });
}
