using System.Text.Json;
using Microsoft.Playwright;

namespace Tessera.Bff.Tests.Infrastructure;

/// <summary>Drives the sample single-page apps (index.html and mediating.html) the way a user does.</summary>
public sealed class Spa(IPage page, TesseraStack stack, string origin, string path = "/")
{
    private readonly (List<string> Lines, TaskCompletionSource CspBlocked) _watch = Watch(page);

    private List<string> ConsoleLines => _watch.Lines;

    public IPage Page => page;

    /// <summary>The page's console and failed requests, kept for failure messages; a CSP violation is signalled at once.</summary>
    private static (List<string>, TaskCompletionSource) Watch(IPage page)
    {
        var lines = new List<string>();
        var cspBlocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        page.Console += (_, m) =>
        {
            lock (lines) lines.Add($"{m.Type}: {m.Text}");
            if (m.Text.Contains("Content Security Policy", StringComparison.Ordinal)) cspBlocked.TrySetResult();
        };
        page.RequestFailed += (_, r) => { lock (lines) lines.Add($"request failed: {r.Method} {r.Url} {r.Failure}"); };
        return (lines, cspBlocked);
    }

    public Task OpenAsync() => page.GotoAsync(origin + path);

    public async Task WaitForStateAsync(string state) =>
        await page.WaitForSelectorAsync($"#status[data-state='{state}']", new PageWaitForSelectorOptions { State = WaitForSelectorState.Attached });

    /// <summary>"Sign in" on the SPA, the user name and password on Tessera's own login page, back to the SPA signed in.</summary>
    public async Task SignInAsync(string user)
    {
        await WaitForStateAsync("signed-out");
        await page.ClickAsync("#login");
        await page.WaitForURLAsync(url => url.StartsWith(stack.TesseraUrl + "/login", StringComparison.Ordinal));
        await page.FillAsync("#username", user);
        await page.FillAsync("#password", TesseraStack.Password);
        await page.ClickAsync("button[type=submit]");
        try
        {
            var back = page.WaitForURLAsync(url => url.StartsWith(origin + path, StringComparison.Ordinal));
            if (await Task.WhenAny(back, _watch.CspBlocked.Task) != back) throw new TimeoutException("blocked by CSP");
            await back;
            await WaitForStateAsync("signed-in");
        }
        catch (TimeoutException e) when (ConsoleLines.Any(l => l.Contains("form-action", StringComparison.Ordinal)))
        {
            // Chromium applies CSP form-action to the redirects that follow a form post (POST /login → 303 /connect/authorize
            // → 302 to the client's redirect URI), so Tessera's "form-action 'self'" stops every sign-in of a client on another origin.
            throw new InvalidOperationException(
                "Tessera's sign-in page blocked the redirect back to the client: its Content-Security-Policy has form-action 'self', and " +
                "Chromium enforces form-action on the redirects after a form post. Fix in src/Tessera.Server/Hosting/SecurityHeadersMiddleware.cs " +
                $"(drop form-action, or allow the client's redirect origin). Browser console:\n{string.Join('\n', ConsoleLines)}", e);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"Sign-in of {user} did not come back signed in; the page is at {page.Url}:\n" +
                $"{await page.InnerTextAsync("body")}\n\nconsole:\n{string.Join('\n', ConsoleLines)}\n\n{stack.Logs}", e);
        }
    }

    /// <summary>Clicks "Call API" and returns what the page shows: ("ok", API JSON) or ("signed-out", …) or ("error", …).</summary>
    public async Task<(string State, string Text)> CallApiAsync()
    {
        var before = await page.GetAttributeAsync("#result", "data-count");
        await page.ClickAsync("#call-api");
        await page.WaitForFunctionAsync("before => document.getElementById('result').dataset.count !== before", before);
        return ((await page.GetAttributeAsync("#result", "data-state"))!, await page.InnerTextAsync("#result"));
    }

    public static string Jti(string apiJson) => JsonDocument.Parse(apiJson).RootElement.GetProperty("jti").GetString()!;

    /// <summary>A fetch from the page's own script, for calls the sample UI has no button for.</summary>
    public async Task<(int Status, string Body, string? AllowOrigin)> FetchAsync(string url, string method = "GET", bool csrf = true)
    {
        var r = await page.EvaluateAsync<JsonElement>("""
            async ([url, method, csrf]) => {
              const r = await fetch(url, { method, headers: csrf ? { 'X-CSRF': '1' } : {} });
              return { status: r.status, body: await r.text(), allowOrigin: r.headers.get('access-control-allow-origin') };
            }
            """, new object[] { url, method, csrf });
        return (r.GetProperty("status").GetInt32(), r.GetProperty("body").GetString()!, r.GetProperty("allowOrigin").GetString());
    }

    public async Task ScreenshotAsync(string name) =>
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(BuildOutput.ScreenshotDirectory, name + ".png"), FullPage = true });
}
