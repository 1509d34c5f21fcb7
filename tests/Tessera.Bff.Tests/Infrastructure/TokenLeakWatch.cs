using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Tessera.Bff.Tests.Infrastructure;

/// <summary>
/// Looks at every response the browser receives (URL, headers, body) for anything shaped like a token: a JWT (access
/// and ID tokens are JWTs), a Tessera refresh token (<c>tsr_…</c>) or a JSON member named like one.
/// </summary>
public sealed partial class TokenLeakWatch
{
    private readonly ConcurrentBag<Task> _pending = [];
    private readonly ConcurrentBag<string> _findings = [];
    private readonly Func<IResponse, bool> _accessTokensAllowed;
    private int _responses;

    /// <param name="accessTokensAllowed">Responses that may carry an access token (the token-mediating endpoint); never a refresh token.</param>
    public TokenLeakWatch(IBrowserContext context, Func<IResponse, bool>? accessTokensAllowed = null)
    {
        _accessTokensAllowed = accessTokensAllowed ?? (_ => false);
        context.Response += (_, response) => _pending.Add(InspectAsync(response));
    }

    public int ResponsesSeen => _responses;

    /// <summary>Waits for the inspections still running and returns what was found.</summary>
    public async Task<IReadOnlyList<string>> FindingsAsync()
    {
        await Task.WhenAll(_pending.ToArray());
        return _findings.ToList();
    }

    private async Task InspectAsync(IResponse response)
    {
        Interlocked.Increment(ref _responses);
        var text = new StringBuilder(response.Url).Append('\n');
        string contentType = "";
        try
        {
            foreach (var (name, value) in await response.AllHeadersAsync())
            {
                text.Append(name).Append(": ").Append(value).Append('\n');
                if (name == "content-type") contentType = value;
            }
        }
        catch (PlaywrightException)
        {
            // the page went away; the body check below will say so too
        }
        try
        {
            text.Append(Encoding.UTF8.GetString(await response.BodyAsync().WaitAsync(TimeSpan.FromSeconds(10))));
        }
        catch (PlaywrightException)
        {
            // redirects and aborted loads have no body
        }
        catch (TimeoutException)
        {
            // Chromium finishes a fetch body only when the page reads it; one nobody reads cannot be checked, so it counts against the page.
            _findings.Add($"{response.Request.Method} {response.Url} [{response.Status}]: body never finished loading, so it could not be checked");
        }
        foreach (var problem in Problems(text.ToString(), contentType, _accessTokensAllowed(response)))
            _findings.Add($"{response.Request.Method} {response.Url} [{response.Status}]: {problem}");
    }

    public static IEnumerable<string> Problems(string text, string contentType, bool accessTokenAllowed)
    {
        if (RefreshToken().IsMatch(text)) yield return "a Tessera refresh token (tsr_…)";
        if (text.Contains("\"refresh_token\"", StringComparison.Ordinal) && contentType.Contains("json", StringComparison.Ordinal))
            yield return "a refresh_token member";
        if (text.Contains("\"id_token\"", StringComparison.Ordinal) && contentType.Contains("json", StringComparison.Ordinal))
            yield return "an id_token member";
        if (!accessTokenAllowed)
        {
            if (Jwt().IsMatch(text)) yield return "a JWT (access or ID token)";
            if (text.Contains("\"access_token\"", StringComparison.Ordinal) && contentType.Contains("json", StringComparison.Ordinal))
                yield return "an access_token member";
        }
    }

    [GeneratedRegex(@"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")]
    public static partial Regex Jwt();

    [GeneratedRegex(@"tsr_[A-Za-z0-9_-]{20,}")]
    public static partial Regex RefreshToken();

    /// <summary>What JavaScript on the page can read: document.cookie, localStorage, sessionStorage.</summary>
    public static async Task<string> ScriptVisibleStateAsync(IPage page) => await page.EvaluateAsync<string>("""
        () => JSON.stringify({
          cookie: document.cookie,
          local: Object.fromEntries(Object.keys(localStorage).map(k => [k, localStorage.getItem(k)])),
          session: Object.fromEntries(Object.keys(sessionStorage).map(k => [k, sessionStorage.getItem(k)])),
        })
        """);
}
