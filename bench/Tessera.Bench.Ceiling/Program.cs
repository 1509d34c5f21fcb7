// The ceiling (bench/README.md): what a token endpoint costs on this machine without a database. The same
// ASP.NET Core host and Tessera's own strict form reader (OAuthForm) and JSON writer (OAuthResults), HTTP Basic
// client authentication against a SHA-256 secret hash, and one ES256 JWT access token per request signed with
// Microsoft.IdentityModel.JsonWebTokens, with the claims Tessera puts in. Nothing is stored or looked up:
// a "refresh" returns a fresh random refresh token for whatever token was presented.
//
//   dotnet Tessera.Bench.Ceiling.dll --port 5104 [--client-id bench --client-secret S]
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core.Protocol;
using Tessera.Core.Tokens;
using Tessera.Server.Protocol;

namespace Tessera.Bench.Ceiling;

public static class CeilingProgram
{
    private const string Audience = "https://api.bench.example";
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    public static async Task Main(string[] args)
    {
        string Arg(string name, string fallback)
        {
            var i = Array.IndexOf(args, "--" + name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var port = int.Parse(Arg("port", "5104"), System.Globalization.CultureInfo.InvariantCulture);
        var clientId = Arg("client-id", "bench");
        var secretHash = SHA256.HashData(Encoding.UTF8.GetBytes(Arg("client-secret", "bench-secret-0123456789abcdef0123456789abcdef")));
        var issuer = $"http://127.0.0.1:{port}";
        var key = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = Handles.NewId() };
        var signing = new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256);
        var validation = new TokenValidationParameters
        {
            ValidIssuer = issuer, ValidateAudience = false, ValidTypes = ["at+jwt"], ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            IssuerSigningKey = key, RequireExpirationTime = true, TryAllIssuerSigningKeys = false,
        };

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls(issuer);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        app.MapGet("/healthz", () => "ok");

        app.MapPost("/connect/token", async (HttpContext http) =>
        {
            var form = await OAuthForm.ReadAsync(http);
            if (form.Failure is not null) { await OAuthResults.WriteErrorAsync(http, form.Failure); return; }
            if (!Authenticate(http, clientId, secretHash)) { await OAuthResults.WriteErrorAsync(http, new OAuthFailure(OAuthErrors.InvalidClient, "Client authentication failed."), true); return; }
            form.Values.TryGetValue("grant_type", out var grant);
            string subject;
            string? refresh = null, sid = null;
            if (grant == "client_credentials")
            {
                subject = clientId;
            }
            else if (grant == "refresh_token" && form.Values.TryGetValue("refresh_token", out var presented))
            {
                // No lookup, no compare-and-swap: a new token in the presented token's family, or a new family.
                subject = "bench-user";
                var family = Handles.TryGetFamily(presented, out var f) ? f : Handles.NewFamily();
                refresh = Handles.NewRefreshToken(family);
                sid = family;
            }
            else
            {
                await OAuthResults.WriteErrorAsync(http, new OAuthFailure(OAuthErrors.UnsupportedGrantType, "Only client_credentials and refresh_token."));
                return;
            }
            var now = DateTime.UtcNow;
            var claims = new Dictionary<string, object>(8) { ["client_id"] = clientId, ["jti"] = Handles.NewId(), ["sub"] = subject, ["scope"] = "api" };
            if (sid is not null) { claims["sid"] = sid; claims["auth_time"] = new DateTimeOffset(now).ToUnixTimeSeconds(); }
            var token = Handler.CreateToken(new SecurityTokenDescriptor
            {
                Issuer = issuer, Audience = Audience, IssuedAt = now, NotBefore = now, Expires = now.AddMinutes(5), TokenType = "at+jwt",
                Claims = claims, SigningCredentials = signing,
            });
            var body = new Dictionary<string, object> { ["access_token"] = token, ["token_type"] = "Bearer", ["expires_in"] = 300L, ["scope"] = "api" };
            if (refresh is not null) { body["refresh_token"] = refresh; body["refresh_expires_in"] = 1209600L; }
            await OAuthResults.WriteJsonAsync(http, 200, body);
        });

        app.MapPost("/connect/introspect", async (HttpContext http) =>
        {
            var form = await OAuthForm.ReadAsync(http);
            if (form.Failure is not null) { await OAuthResults.WriteErrorAsync(http, form.Failure); return; }
            if (!Authenticate(http, clientId, secretHash)) { await OAuthResults.WriteErrorAsync(http, new OAuthFailure(OAuthErrors.InvalidClient, "Client authentication failed."), true); return; }
            if (!form.Values.TryGetValue("token", out var token)) { await OAuthResults.WriteErrorAsync(http, new OAuthFailure(OAuthErrors.InvalidRequest, "token is required.")); return; }
            var result = await Handler.ValidateTokenAsync(token, validation);
            if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt) { await OAuthResults.WriteJsonAsync(http, 200, new Dictionary<string, object> { ["active"] = false }); return; }
            await OAuthResults.WriteJsonAsync(http, 200, new Dictionary<string, object>
            {
                ["active"] = true, ["token_type"] = "Bearer", ["client_id"] = jwt.GetPayloadValue<string>("client_id"), ["sub"] = jwt.Subject,
                ["iss"] = jwt.Issuer, ["aud"] = jwt.Audiences.FirstOrDefault() ?? "", ["exp"] = new DateTimeOffset(jwt.ValidTo).ToUnixTimeSeconds(),
                ["iat"] = new DateTimeOffset(jwt.IssuedAt).ToUnixTimeSeconds(), ["jti"] = jwt.Id, ["scope"] = jwt.GetPayloadValue<string>("scope"),
            });
        });

        await app.RunAsync();
    }

    /// <summary>RFC 6749 §2.3.1 HTTP Basic, compared as SHA-256 in constant time (what Tessera does for secrets).</summary>
    private static bool Authenticate(HttpContext http, string clientId, byte[] secretHash)
    {
        var auth = http.Request.Headers.Authorization.ToString();
        if (!auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth[6..].Trim()));
            var colon = decoded.IndexOf(':');
            if (colon <= 0) return false;
            var id = Uri.UnescapeDataString(decoded[..colon].Replace('+', ' '));
            var secret = Uri.UnescapeDataString(decoded[(colon + 1)..].Replace('+', ' '));
            return id == clientId && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), secretHash);
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
