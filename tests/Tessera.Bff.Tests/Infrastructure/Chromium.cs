using Microsoft.Playwright;

namespace Tessera.Bff.Tests.Infrastructure;

/// <summary>
/// Debian's Chromium driven by Microsoft.Playwright through an explicit executable path (no browser download, ever),
/// each test with a fresh user-data directory.
/// </summary>
public static class Chromium
{
    public static string ExecutablePath => Environment.GetEnvironmentVariable("TESSERA_TEST_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    private static readonly string[] LaunchArgs =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
    ];

    public static void EnsureInstalled()
    {
        if (!File.Exists(ExecutablePath))
            throw new InvalidOperationException(
                $"Chromium is not installed at {ExecutablePath}. The browser tests need Debian's chromium package: run `apt-get install -y chromium` " +
                "(or point TESSERA_TEST_CHROMIUM at a Chromium executable). These tests fail rather than skip without it.");
    }

    public static async Task<Session> LaunchAsync(IPlaywright playwright)
    {
        EnsureInstalled();
        var userData = Directory.CreateTempSubdirectory("tessera-bff-chromium-");
        var context = await playwright.Chromium.LaunchPersistentContextAsync(userData.FullName, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = LaunchArgs,
            ViewportSize = new ViewportSize { Width = 1000, Height = 720 },
            Timeout = 30_000,
        });
        context.SetDefaultTimeout(15_000);
        return new Session(context, userData);
    }

    public sealed class Session(IBrowserContext context, DirectoryInfo userData) : IAsyncDisposable
    {
        public IBrowserContext Context => context;

        public async ValueTask DisposeAsync()
        {
            await context.CloseAsync();
            try
            {
                userData.Delete(recursive: true);
            }
            catch (IOException)
            {
                // Chromium may still be writing for a moment; it lives in the temp folder
            }
        }
    }
}
