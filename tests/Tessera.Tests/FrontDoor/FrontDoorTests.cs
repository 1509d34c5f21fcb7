using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Passwords;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.FrontDoor;

/// <summary>
/// Issue 8, "Hardened front door": per-account sign-in throttling with growing delays (travelling in time with the
/// FakeTimeProvider), no user enumeration, per-IP rate limits answering 429 with Retry-After, the password policy and
/// Argon2id parameters with transparent upgrade. A server per test: throttling state and limiter windows never mix.
/// </summary>
public sealed partial class FrontDoorTests : IAsyncLifetime
{
    private const string Password = "the right passphrase";
    private const string Generic = "Wrong username or password, or too many attempts. Wait a minute and try again.";
    private TesseraTestServer? _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    private async Task<TesseraTestServer> StartAsync(params string[] extraArgs) => _server = await TesseraTestServer.StartAsync(extraArgs);

    private sealed record LoginAttempt(HttpStatusCode Status, string Html, HttpResponseMessage Response);

    private static async Task<LoginAttempt> LoginAsync(TesseraTestServer server, string username, string password, HttpClient? browser = null)
    {
        var owned = browser is null;
        browser ??= server.CreateClient(new CookieContainer());
        try
        {
            var page = await (await browser.GetAsync("login?returnUrl=%2Faccount")).Content.ReadAsStringAsync();
            var post = await browser.PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(page), ["username"] = username, ["password"] = password, ["returnUrl"] = "/account",
            }));
            return new LoginAttempt(post.StatusCode, await post.Content.ReadAsStringAsync(), post);
        }
        finally
        {
            if (owned) browser.Dispose();
        }
    }

    private static void AssertRefused(LoginAttempt attempt)
    {
        Assert.Equal(HttpStatusCode.BadRequest, attempt.Status);
        Assert.Equal(Generic, ErrorMessage(attempt.Html));
    }

    private static void AssertSignedIn(LoginAttempt attempt)
    {
        Assert.True(attempt.Status == HttpStatusCode.SeeOther, $"expected a sign-in, got {(int)attempt.Status}: {(attempt.Html.Length > 0 ? ErrorMessage(attempt.Html) : "")}");
        Assert.Equal("/account", attempt.Response.Headers.Location?.ToString());
    }

    private static string ErrorMessage(string html)
    {
        var m = ErrorParagraph().Match(html);
        Assert.True(m.Success, "no error message on the page");
        return WebUtility.HtmlDecode(m.Groups[1].Value);
    }

    /// <summary>The page with its per-response antiforgery token blanked: what a person (or a script) could compare.</summary>
    private static string Comparable(string html) => AntiforgeryValue().Replace(html, "name=\"__RequestVerificationToken\" value=\"…\"");

    private async Task<List<AuditEvent>> LoginFailuresAsync(string userId) =>
        (await _server!.Store.Audit.QueryAsync(new AuditQuery { UserId = userId, Type = AuditTypes.LoginFailed, Limit = 1000 }, default)).ToList();

    // ---- Per-account throttling -------------------------------------------------------------------------------

    [Fact]
    public async Task FiveWrongPasswords_ThenEvenTheRightOneIsRefused_WithTheSameMessage_UntilAMinutePasses()
    {
        var server = await StartAsync();
        var user = await server.AddUserAsync("alice", Password);

        for (var i = 0; i < 5; i++) AssertRefused(await LoginAsync(server, "alice", "wrong guess " + i));
        var wrong = await LoginAsync(server, "alice", "another wrong guess");
        var right = await LoginAsync(server, "alice", Password);

        AssertRefused(right);
        Assert.Equal(Comparable(wrong.Html), Comparable(right.Html));
        Assert.Equal(wrong.Status, right.Status);
        var failures = await LoginFailuresAsync(user.Id);
        Assert.Equal(5, failures.Count(e => e.Reason == "wrong password"));
        Assert.Equal(2, failures.Count(e => e.Reason == "sign-in throttled after repeated failures"));

        server.Time.Advance(TimeSpan.FromSeconds(59));
        AssertRefused(await LoginAsync(server, "alice", Password));
        server.Time.Advance(TimeSpan.FromSeconds(1));

        AssertSignedIn(await LoginAsync(server, "alice", Password));
        var stored = await server.Store.Users.FindByIdAsync(user.Id, default);
        Assert.Equal(0, stored!.FailedLogins);
        Assert.Null(stored.LoginBlockedUntil);
    }

    [Fact]
    public async Task TheDelayDoubles_WithEachFurtherFailure()
    {
        var server = await StartAsync();
        await server.AddUserAsync("alice", Password);
        for (var i = 0; i < 5; i++) AssertRefused(await LoginAsync(server, "alice", "wrong guess " + i));
        server.Time.Advance(TimeSpan.FromMinutes(1));

        // Sixth failure: 2 minutes.
        AssertRefused(await LoginAsync(server, "alice", "sixth wrong guess"));
        server.Time.Advance(TimeSpan.FromMinutes(1));
        AssertRefused(await LoginAsync(server, "alice", Password));
        server.Time.Advance(TimeSpan.FromMinutes(1));

        // Seventh failure: 4 minutes.
        AssertRefused(await LoginAsync(server, "alice", "seventh wrong guess"));
        server.Time.Advance(TimeSpan.FromMinutes(3));
        AssertRefused(await LoginAsync(server, "alice", Password));
        server.Time.Advance(TimeSpan.FromMinutes(1));

        AssertSignedIn(await LoginAsync(server, "alice", Password));

        // A success resets the count: the next failures start again from 5 before any pause.
        for (var i = 0; i < 4; i++) AssertRefused(await LoginAsync(server, "alice", "fresh wrong guess " + i));
        AssertSignedIn(await LoginAsync(server, "alice", Password));
    }

    [Fact]
    public async Task WrongPasswordsWhileBlocked_DoNotLengthenThePause()
    {
        var server = await StartAsync();
        await server.AddUserAsync("alice", Password);
        for (var i = 0; i < 5; i++) AssertRefused(await LoginAsync(server, "alice", "wrong guess " + i));

        for (var i = 0; i < 10; i++) AssertRefused(await LoginAsync(server, "alice", "while blocked " + i));
        server.Time.Advance(TimeSpan.FromMinutes(1));

        AssertSignedIn(await LoginAsync(server, "alice", Password));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(10)]
    [InlineData(11)]
    [InlineData(50)]
    public void ThePause_StartsAtOneMinute_Doubles_AndStopsAtOneHour(int failures)
    {
        var now = DateTimeOffset.UnixEpoch;
        var user = new User { Id = "u", Username = "u" };
        for (var i = 0; i < failures; i++) user = user.WithFailedLogin(now);

        TimeSpan? expected = failures < 5 ? null : TimeSpan.FromMinutes(Math.Min(60, Math.Pow(2, failures - 5)));
        Assert.Equal(expected, user.LoginBlockedUntil - now);
    }

    [Fact]
    public async Task UnknownUser_GetsExactlyTheSamePageAndStatus_AsAWrongPassword()
    {
        var server = await StartAsync();
        await server.AddUserAsync("alice", Password);
        var locked = await server.AddUserAsync("locked", Password);
        await server.Store.Users.SaveAsync((await server.Store.Users.FindByIdAsync(locked.Id, default))! with { LockedUntil = server.Time.GetUtcNow().AddHours(1) }, default);
        var disabled = await server.AddUserAsync("disabled", Password);
        await server.Store.Users.SaveAsync((await server.Store.Users.FindByIdAsync(disabled.Id, default))! with { Disabled = true }, default);

        var wrong = await LoginAsync(server, "alice", "not the password");
        var unknown = await LoginAsync(server, "nobody-here", "not the password");
        var lockedRight = await LoginAsync(server, "locked", Password);
        var disabledRight = await LoginAsync(server, "disabled", Password);

        AssertRefused(wrong);
        foreach (var other in new[] { unknown, lockedRight, disabledRight })
        {
            Assert.Equal(wrong.Status, other.Status);
            Assert.Equal(Comparable(wrong.Html), Comparable(other.Html));
            Assert.Equal(wrong.Response.Content.Headers.ContentType?.ToString(), other.Response.Content.Headers.ContentType?.ToString());
            Assert.Null(other.Response.Headers.Location);
        }
        // The audit log still knows which was which.
        var unknownEvent = (await server.Store.Audit.QueryAsync(new AuditQuery { Type = AuditTypes.LoginFailed, Limit = 100 }, default))
            .Single(e => e.Reason == "unknown user");
        Assert.Null(unknownEvent.UserId);
        Assert.Equal("127.0.0.1", unknownEvent.IpAddress);
    }

    [Fact]
    public async Task UnknownUsers_AreNotThrottledDifferently_FromKnownOnes()
    {
        var server = await StartAsync();

        // Many failures for a name nobody has: the answer never changes, and nothing is created for it.
        var first = await LoginAsync(server, "ghost", "guess 0");
        for (var i = 1; i < 8; i++)
        {
            var again = await LoginAsync(server, "ghost", "guess " + i);
            Assert.Equal(first.Status, again.Status);
            Assert.Equal(Comparable(first.Html), Comparable(again.Html));
        }
        Assert.Null(await server.Store.Users.FindByUsernameAsync("ghost", default));
    }

    // ---- Per-IP rate limits (the platform rate limiter) -------------------------------------------------------

    [Fact]
    public async Task LoginRateLimit_TheFourthPostWithinAMinute_Is429WithRetryAfter()
    {
        var server = await StartAsync("--Tessera:RateLimits:Login=3");
        await server.AddUserAsync("alice", Password);

        for (var i = 0; i < 3; i++) AssertRefused(await LoginAsync(server, "alice", "wrong guess " + i));
        var fourth = await LoginAsync(server, "alice", Password);

        Assert.Equal(HttpStatusCode.TooManyRequests, fourth.Status);
        var retryAfter = fourth.Response.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter!.Value.TotalSeconds, 1, 60);
        // The refused post never reached the sign-in: no session cookie, no audit of a sign-in.
        Assert.DoesNotContain(fourth.Response.Headers.TryGetValues("Set-Cookie", out var cookies) ? cookies : [], c => c.StartsWith("tessera.session=", StringComparison.Ordinal));
        Assert.Empty(await server.Store.Audit.QueryAsync(new AuditQuery { Type = AuditTypes.LoginSucceeded }, default));
        // Showing the form is not limited by the sign-in limit.
        using var browser = server.CreateClient(new CookieContainer());
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("login")).StatusCode);
    }

    [Fact]
    public async Task LoginRateLimit_IsPerClientAddress()
    {
        var server = await StartAsync("--Tessera:RateLimits:Login=3");
        await server.AddUserAsync("alice", Password);
        for (var i = 0; i < 3; i++) AssertRefused(await LoginAsync(server, "alice", "wrong guess " + i));
        Assert.Equal(HttpStatusCode.TooManyRequests, (await LoginAsync(server, "alice", Password)).Status);

        // Another loopback address (all of 127.0.0.0/8 is this machine) has its own window.
        using var elsewhere = FromAddress(server, IPAddress.Parse("127.0.0.2"));
        var attempt = await LoginAsync(server, "alice", Password, elsewhere);

        AssertSignedIn(attempt);
        var success = Assert.Single(await server.Store.Audit.QueryAsync(new AuditQuery { Type = AuditTypes.LoginSucceeded }, default));
        Assert.Equal("127.0.0.2", success.IpAddress);
    }

    [Fact]
    public async Task TokenRateLimit_TheSixthRequest_Is429Json_WithRetryAfter()
    {
        var server = await StartAsync("--Tessera:RateLimits:Token=5");
        var (_, secret) = await server.AddClientAsync(new Client { Id = "svc", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["api.read"] }, confidential: true);
        var driver = new OAuthDriver(server);

        for (var i = 0; i < 5; i++)
            Assert.Equal(HttpStatusCode.OK, (await driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "svc", secret)).Status);
        var sixth = await driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "svc", secret);

        Assert.Equal(HttpStatusCode.TooManyRequests, sixth.Status);
        Assert.Equal("application/json", sixth.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("too_many_requests", sixth.Error);
        Assert.Null(sixth.AccessToken);
        var retryAfter = sixth.Response.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter!.Value.TotalSeconds, 1, 60);
        Assert.Equal("no-store", sixth.Response.Headers.CacheControl?.ToString());
        // Other kinds of endpoint keep their own limits.
        using var http = server.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(".well-known/openid-configuration")).StatusCode);
    }

    [Fact]
    public async Task LimitsAreOffWhenZero()
    {
        var server = await StartAsync("--Tessera:RateLimits:Token=0");
        var (_, secret) = await server.AddClientAsync(new Client { Id = "svc", GrantTypes = [GrantTypes.ClientCredentials], Scopes = ["api.read"] }, confidential: true);
        var driver = new OAuthDriver(server);

        for (var i = 0; i < 20; i++)
            Assert.Equal(HttpStatusCode.OK, (await driver.TokenAsync(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, "svc", secret)).Status);
    }

    [Fact]
    public async Task NegativeRateLimits_AreRefusedAtStartUp()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => TesseraTestServer.StartAsync(["--Tessera:RateLimits:Login=-1"]));
        Assert.Contains(e.Failures, f => f.Contains("RateLimits", StringComparison.Ordinal));
    }

    private static HttpClient FromAddress(TesseraTestServer server, IPAddress source) => server.CreateClientFrom(source);

    // ---- Passwords ------------------------------------------------------------------------------------------

    private static string Passphrase(int length)
    {
        const string words = "correct horse battery staple ";
        return string.Concat(Enumerable.Repeat(words, length / words.Length + 1))[..length];
    }

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("zK8#qLw")]  // 7 characters
    public void Policy_RefusesFewerThanEightCharacters(string password) =>
        Assert.Equal("Passwords need at least 8 characters.", PasswordPolicy.Check(password));

    [Fact]
    public void Policy_AcceptsEightCharacters() => Assert.Null(PasswordPolicy.Check("zK8#qLw!"));

    [Fact]
    public void Policy_AcceptsLongPassphrases_UpToTheMaximum()
    {
        Assert.True(PasswordPolicy.MaxLength >= 64);
        Assert.Null(PasswordPolicy.Check(Passphrase(64)));
        Assert.Null(PasswordPolicy.Check(Passphrase(200)));
        Assert.Null(PasswordPolicy.Check(Passphrase(PasswordPolicy.MaxLength)));
        Assert.NotNull(PasswordPolicy.Check(Passphrase(PasswordPolicy.MaxLength + 1)));
    }

    [Theory]
    [InlineData("password")]
    [InlineData("PASSWORD")]
    [InlineData("Password123")]
    [InlineData("QwErTyUiOp")]
    [InlineData("iloveyou")]
    [InlineData("12345678")]
    public void Policy_RefusesCommonPasswords_CaseInsensitively(string password) =>
        Assert.Equal("That password is too common; choose another.", PasswordPolicy.Check(password));

    [Fact]
    public void Hash_IsAnArgon2idPhcString_WithOwaspParameters()
    {
        var hasher = new PasswordHasher(new PasswordHashParameters());

        var phc = hasher.Hash("zK8#qLw!x");

        Assert.Matches("^\\$argon2id\\$v=19\\$m=19456,t=2,p=1\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$", phc);
        Assert.True(hasher.Verify("zK8#qLw!x", phc, out var rehash));
        Assert.False(rehash);
        Assert.False(hasher.Verify("zK8#qLw!X", phc, out _));
        Assert.NotEqual(phc, hasher.Hash("zK8#qLw!x")); // a fresh salt each time
    }

    [Fact]
    public void LongPassphrase_IsNeverTruncated()
    {
        var hasher = new PasswordHasher(new PasswordHashParameters());
        var passphrase = Passphrase(200);
        var phc = hasher.Hash(passphrase);

        Assert.True(hasher.Verify(passphrase, phc, out _));
        // bcrypt would stop at 72 bytes; this must not.
        Assert.False(hasher.Verify(passphrase[..72], phc, out _));
        Assert.False(hasher.Verify(passphrase[..199], phc, out _));
        Assert.False(hasher.Verify(passphrase[..199] + "X", phc, out _));
    }

    [Fact]
    public async Task TheServer_HashesWithOwaspParameters_AndAcceptsALongPassphraseWhole()
    {
        var server = await StartAsync();
        Assert.Equal(new PasswordHashParameters(19456, 2, 1), server.Services.GetRequiredService<PasswordHasher>().Parameters);
        var passphrase = Passphrase(200);
        var user = await server.AddUserAsync("alice", passphrase);
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", user.PasswordHash, StringComparison.Ordinal);

        AssertRefused(await LoginAsync(server, "alice", passphrase[..72]));
        AssertSignedIn(await LoginAsync(server, "alice", passphrase));
    }

    [Theory]
    [InlineData("--Tessera:Argon2MemoryKiB=8192")]
    [InlineData("--Tessera:Argon2Iterations=1")]
    [InlineData("--Tessera:Argon2Parallelism=0")]
    public async Task ConfiguredParametersBelowOwasp_AreRefusedAtStartUp(string arg)
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => TesseraTestServer.StartAsync([arg]));
        Assert.Contains(e.Failures, f => f.Contains("Argon2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AHashWithLowerParameters_IsUpgradedAtTheNextSignIn_AndNotOnAFailedOne()
    {
        var server = await StartAsync();
        var weak = new PasswordHasher(new PasswordHashParameters(8192, 1, 1));
        var oldHash = weak.Hash(Password);
        Assert.StartsWith("$argon2id$v=19$m=8192,t=1,p=1$", oldHash, StringComparison.Ordinal);
        var user = new User { Id = Handles.NewId(), Username = "legacy", PasswordHash = oldHash, CreatedAt = server.Time.GetUtcNow() };
        Assert.True(await server.Store.Users.CreateAsync(user, default));

        AssertRefused(await LoginAsync(server, "legacy", "not the password"));
        Assert.Equal(oldHash, (await server.Store.Users.FindByIdAsync(user.Id, default))!.PasswordHash);

        AssertSignedIn(await LoginAsync(server, "legacy", Password));

        var upgraded = (await server.Store.Users.FindByIdAsync(user.Id, default))!.PasswordHash!;
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", upgraded, StringComparison.Ordinal);
        var current = server.Services.GetRequiredService<PasswordHasher>();
        Assert.True(current.Verify(Password, upgraded, out var again));
        Assert.False(again);
        // And the user signs in with the upgraded hash as before.
        AssertSignedIn(await LoginAsync(server, "legacy", Password));
        Assert.Equal(upgraded, (await server.Store.Users.FindByIdAsync(user.Id, default))!.PasswordHash);
    }

    [GeneratedRegex("<p class=\"error\" role=\"alert\">([^<]*)</p>")]
    private static partial Regex ErrorParagraph();

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"[^\"]*\"")]
    private static partial Regex AntiforgeryValue();
}
