using Microsoft.AspNetCore.DataProtection;
using Tessera.Bff;
using Tessera.Samples.BffHost;

// `BffHost [--urls=…] --Bff:Authority=… --Bff:ClientId=… --Bff:ClientSecret=… --Bff:Routes:/api=http://api/api`
//     the backend-for-frontend serving the single-page app in wwwroot/
// `BffHost demo-api --urls=… --Api:Authority=… --Api:ClientId=… --Api:ClientSecret=… --Api:Audience=…`
//     a tiny API for the demo and the end-to-end tests (used while samples/SampleApi is not available)
if (args.FirstOrDefault() == "demo-api")
{
    await DemoApi.RunAsync(args[1..]);
    return;
}

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
    WebRootPath = Path.Combine(AppContext.BaseDirectory, "wwwroot"),
});
builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
builder.WebHost.UseUrls((builder.Configuration["urls"] ?? "http://127.0.0.1:5090").Split(';')[0]);

var config = builder.Configuration;
var dataDirectory = Path.GetFullPath(config["Bff:DataDirectory"] ?? "bff-data", Directory.GetCurrentDirectory());
// Sessions hold tokens encrypted with these keys: keep them with the session database, and share both between replicas.
builder.Services.AddDataProtection()
    .SetApplicationName("tessera-bff-sample")
    .PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(dataDirectory, "keys")));
builder.Services.AddTesseraBff(o =>
{
    config.GetSection("Bff").Bind(o);
    if (config["Bff:Scope"] is { Length: > 0 } scope) o.Scopes = scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
    o.SessionDatabasePath = Path.Combine(dataDirectory, "bff-sessions.db");
});

var app = builder.Build();
var sample = new SampleSettings(config);
app.UseMiddleware<SecurityHeaders>(sample);
app.UseDefaultFiles();
app.UseStaticFiles(new StaticFileOptions { OnPrepareResponse = c => c.Context.Response.Headers.CacheControl = "no-cache" });
// What the page needs to know; nothing secret.
app.MapGet("/app-config.json", () => Results.Json(new
{
    mode = config["Bff:Mode"] ?? "Bff",
    proxiedApi = sample.ProxiedApiPath,
    directApi = sample.DirectApiUrl,
    resource = config["Bff:Resource"],
    scope = sample.MediatedScope,
}));
app.MapTesseraBff();
app.Run();
