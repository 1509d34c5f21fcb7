// A minimal API protected by Tessera access tokens.
//
//   dotnet SampleApi.dll --urls=http://127.0.0.1:5090 --Authority=http://127.0.0.1:5080 --Audience=http://127.0.0.1:5090 \
//       --FeedClientId=sample-api-feed --FeedClientSecret=...
//
// GET /api/hello needs a token with scope api.read and answers the caller's sub and sid. With --FeedClientId and
// --FeedClientSecret (a confidential Tessera client with the tessera.revocations scope) the API follows Tessera's
// revocation feed and refuses a revoked session's tokens within a second. DPoP-bound tokens are accepted with
// `Authorization: DPoP` and a proof (RFC 9449); --Dpop:Mode, --Dpop:RequireNonce=true, --Dpop:PublicBaseUrl and the
// other TesseraDpopOptions set how. GET /healthz answers without a token.
using System.Security.Claims;
using Tessera.ResourceServer;

var builder = WebApplication.CreateBuilder(args);
var config = builder.Configuration;
var authority = config["Authority"] ?? throw new InvalidOperationException("Give --Authority (Tessera's issuer URL).");

builder.Services.AddAuthentication(TesseraAccessTokenDefaults.Scheme).AddTesseraAccessTokens(o =>
{
    o.Authority = authority;
    o.Audience = config["Audience"] ?? throw new InvalidOperationException("Give --Audience (this API's identifier in the tokens' aud).");
    o.FeedClientId = config["FeedClientId"];
    o.FeedClientSecret = config["FeedClientSecret"];
    // Plain HTTP only to a Tessera on this machine; anything else must be HTTPS.
    o.RequireHttpsMetadata = config.GetValue("RequireHttpsMetadata",
        !(Uri.TryCreate(authority, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback));
    if (config.GetValue<TimeSpan?>("PollInterval") is { } interval) o.PollInterval = interval;
    if (config.GetValue<TimeSpan?>("MaxAccessTokenLifetime") is { } lifetime) o.MaxAccessTokenLifetime = lifetime;
    config.GetSection("Dpop").Bind(o.Dpop);
});
builder.Services.AddAuthorization();

var app = builder.Build();
app.UseAuthentication();
app.UseAuthorization();

app.MapGet("/healthz", () => Results.Text("ok"));
app.MapGet("/api/hello", (ClaimsPrincipal user) => Results.Json(new
{
    sub = user.FindFirstValue("sub"),
    sid = user.FindFirstValue("sid"),
})).RequireScope("api.read");

app.Run();
