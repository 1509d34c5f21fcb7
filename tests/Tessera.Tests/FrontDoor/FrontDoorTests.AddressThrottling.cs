using System.Net;
using Microsoft.Extensions.Options;
using Tessera.Core.Audit;
using Tessera.Server.Hosting;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.FrontDoor;

/// <summary>
/// Issue 8: sign-in throttling per source address (credential stuffing tries many accounts from one address), with
/// growing pauses, a temporary lockout, one generic answer for every refusal, and audit events. Time travels with the
/// FakeTimeProvider; nothing here measures time.
/// </summary>
public sealed partial class FrontDoorTests
{
    private static string[] AddressThrottle(int pauseAfter = 3, string firstPause = "00:00:10", string maxPause = "00:00:30",
        int lockoutAfter = 6, string lockout = "00:15:00", string forgetAfter = "01:00:00") =>
    [
        $"--Tessera:Throttling:LoginPerAddress:PauseAfter={pauseAfter}", $"--Tessera:Throttling:LoginPerAddress:FirstPause={firstPause}",
        $"--Tessera:Throttling:LoginPerAddress:MaxPause={maxPause}", $"--Tessera:Throttling:LoginPerAddress:LockoutAfter={lockoutAfter}",
        $"--Tessera:Throttling:LoginPerAddress:Lockout={lockout}", $"--Tessera:Throttling:LoginPerAddress:ForgetAfter={forgetAfter}",
    ];

    private async Task<List<AuditEvent>> AuditAsync(string type) =>
        (await _server!.Store.Audit.QueryAsync(new AuditQuery { Type = type, Limit = 1000 }, default)).ToList();

    [Fact]
    public async Task FailuresForManyAccountsFromOneAddress_PauseIt_AndEvenTheRightPasswordIsRefused_UntilThePauseEnds()
    {
        var server = await StartAsync(AddressThrottle(pauseAfter: 3, firstPause: "00:00:10"));
        var alice = await server.AddUserAsync("alice", Password);
        await server.AddUserAsync("bob", Password);

        // One try per account, as credential stuffing does: no account reaches its own limit of 5.
        AssertRefused(await LoginAsync(server, "bob", "leaked password 1"));
        AssertRefused(await LoginAsync(server, "carol", "leaked password 2"));
        // A good sign-in in between does not clear the address's count (or one own account would reset it at will).
        AssertSignedIn(await LoginAsync(server, "alice", Password));
        AssertRefused(await LoginAsync(server, "dave", "leaked password 3"));

        var right = await LoginAsync(server, "alice", Password);
        AssertRefused(right);
        Assert.Null(right.Response.Headers.RetryAfter);
        server.Time.Advance(TimeSpan.FromSeconds(9));
        AssertRefused(await LoginAsync(server, "alice", Password));
        server.Time.Advance(TimeSpan.FromSeconds(1));

        AssertSignedIn(await LoginAsync(server, "alice", Password));
        // The pause was the address's, not alice's: her account never counted a failure.
        Assert.Equal(0, (await server.Store.Users.FindByIdAsync(alice.Id, default))!.FailedLogins);
    }

    [Fact]
    public async Task TheAddressPause_Doubles_UpToItsCap_ThenBecomesATemporaryLockout_AndIsForgottenAfterQuietTime()
    {
        var server = await StartAsync(AddressThrottle(pauseAfter: 3, firstPause: "00:00:10", maxPause: "00:00:30", lockoutAfter: 6, lockout: "00:15:00", forgetAfter: "01:00:00"));
        await server.AddUserAsync("alice", Password);
        async Task Fail(string username) => AssertRefused(await LoginAsync(server, username, "guess"));
        async Task RefusedThenAcceptedAfter(TimeSpan pause)
        {
            server.Time.Advance(pause - TimeSpan.FromSeconds(1));
            AssertRefused(await LoginAsync(server, "alice", Password));
            server.Time.Advance(TimeSpan.FromSeconds(1));
        }

        await Fail("user-1");
        await Fail("user-2");
        await Fail("user-3");                                   // 3rd failure: 10 s
        await RefusedThenAcceptedAfter(TimeSpan.FromSeconds(10));
        await Fail("user-4");                                   // 4th: 20 s
        await RefusedThenAcceptedAfter(TimeSpan.FromSeconds(20));
        await Fail("user-5");                                   // 5th: 40 s, capped at 30 s
        await RefusedThenAcceptedAfter(TimeSpan.FromSeconds(30));
        await Fail("user-6");                                   // 6th: the lockout, 15 minutes
        await RefusedThenAcceptedAfter(TimeSpan.FromMinutes(15));
        AssertSignedIn(await LoginAsync(server, "alice", Password));

        // Attempts refused during a pause never counted; the next real failure locks out again at once.
        await Fail("user-7");
        AssertRefused(await LoginAsync(server, "alice", Password));

        // An hour without failures after the lockout ends: the address starts again from zero.
        server.Time.Advance(TimeSpan.FromMinutes(15) + TimeSpan.FromHours(1));
        await Fail("user-8");
        await Fail("user-9");
        AssertSignedIn(await LoginAsync(server, "alice", Password));
    }

    [Fact]
    public async Task FromAPausedAddress_KnownAndUnknownUsers_RightAndWrongPasswords_GetTheOneGenericPage()
    {
        var server = await StartAsync(AddressThrottle(pauseAfter: 3));
        await server.AddUserAsync("alice", Password);
        // The reference: an ordinary wrong password before any pause.
        var reference = await LoginAsync(server, "alice", "not the password");
        // Unknown usernames count exactly like known ones: they take the same path (and the same Argon2id cost).
        AssertRefused(await LoginAsync(server, "nobody-1", "guess"));
        AssertRefused(await LoginAsync(server, "nobody-2", "guess"));

        var answers = new[]
        {
            await LoginAsync(server, "alice", Password),
            await LoginAsync(server, "alice", "not the password"),
            await LoginAsync(server, "nobody-3", "guess"),
        };

        AssertRefused(reference);
        foreach (var answer in answers)
        {
            AssertRefused(answer);
            Assert.Equal(Comparable(reference.Html), Comparable(answer.Html));
            Assert.Equal(reference.Response.Content.Headers.ContentType?.ToString(), answer.Response.Content.Headers.ContentType?.ToString());
            Assert.Null(answer.Response.Headers.Location);
            Assert.Null(answer.Response.Headers.RetryAfter);
        }
    }

    [Fact]
    public async Task APausedAddress_DoesNotPauseAnotherAddress()
    {
        var server = await StartAsync(AddressThrottle(pauseAfter: 3, lockoutAfter: 3));
        await server.AddUserAsync("alice", Password);
        for (var i = 0; i < 3; i++) AssertRefused(await LoginAsync(server, "user-" + i, "guess"));
        AssertRefused(await LoginAsync(server, "alice", Password));

        using var elsewhere = FromAddress(server, IPAddress.Parse("127.0.0.2"));
        AssertSignedIn(await LoginAsync(server, "alice", Password, elsewhere));
    }

    [Fact]
    public async Task PausesAndLockouts_AreAudited_WithTheAddress_AndOnlyTheFirstRefusalOfEachPause()
    {
        var server = await StartAsync(AddressThrottle(pauseAfter: 2, firstPause: "00:00:10", lockoutAfter: 3, lockout: "00:15:00"));
        await server.AddUserAsync("alice", Password);

        AssertRefused(await LoginAsync(server, "user-1", "guess"));
        AssertRefused(await LoginAsync(server, "user-2", "guess"));      // pause of 10 s
        for (var i = 0; i < 4; i++) AssertRefused(await LoginAsync(server, "alice", Password));
        server.Time.Advance(TimeSpan.FromSeconds(10));
        AssertRefused(await LoginAsync(server, "user-3", "guess"));      // lockout of 15 minutes
        AssertRefused(await LoginAsync(server, "alice", Password));

        var pause = Assert.Single(await AuditAsync(AuditTypes.LoginThrottled));
        Assert.Equal("127.0.0.1", pause.IpAddress);
        Assert.Null(pause.UserId);
        Assert.StartsWith("2 failed sign-ins from this address; its sign-ins are refused for 00:00:10", pause.Reason, StringComparison.Ordinal);
        var lockout = Assert.Single(await AuditAsync(AuditTypes.LoginLockedOut));
        Assert.Equal("127.0.0.1", lockout.IpAddress);
        Assert.StartsWith("3 failed sign-ins from this address; its sign-ins are refused for 00:15:00", lockout.Reason, StringComparison.Ordinal);
        var failures = await AuditAsync(AuditTypes.LoginFailed);
        Assert.Equal(3, failures.Count(e => e.Reason == "unknown user"));
        // Five attempts were refused in two pauses: one audited refusal each, never a password or a username in them.
        var refusals = failures.Where(e => e.Reason!.StartsWith("sign-in from this address paused", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, refusals.Count);
        Assert.All(refusals, e => Assert.Equal("127.0.0.1", e.IpAddress));
        Assert.All(await server.Store.Audit.QueryAsync(new AuditQuery { Limit = 1000 }, default),
            e => Assert.DoesNotContain(Password, e.Reason ?? "", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--Tessera:Throttling:LoginPerAddress:PauseAfter=-1", "LoginPerAddress:PauseAfter")]
    [InlineData("--Tessera:Throttling:ClientPerAddress:FirstPause=00:00:00", "ClientPerAddress:FirstPause")]
    [InlineData("--Tessera:Throttling:ClientPerClientAndAddress:MaxPause=2.00:00:00", "ClientPerClientAndAddress:MaxPause")]
    [InlineData("--Tessera:Throttling:ClientPerClientAndAddress:LockoutAfter=2", "ClientPerClientAndAddress:LockoutAfter")]
    [InlineData("--Tessera:Throttling:LoginPerAddress:Lockout=30.00:00:00", "LoginPerAddress:Lockout")]
    [InlineData("--Tessera:Throttling:LoginPerAddress:ForgetAfter=00:00:00", "LoginPerAddress:ForgetAfter")]
    [InlineData("--Tessera:Throttling:MaxTrackedEntries=5", "MaxTrackedEntries")]
    public async Task BadThrottleSettings_AreRefusedAtStartUp_SayingWhichOne(string arg, string named)
    {
        // Turn the throttles back on (the test server turns them off), then break one setting.
        string[] on = ["--Tessera:Throttling:LoginPerAddress:PauseAfter=20", "--Tessera:Throttling:ClientPerAddress:PauseAfter=50",
            "--Tessera:Throttling:ClientPerClientAndAddress:PauseAfter=5"];

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => TesseraTestServer.StartAsync([.. on, arg]));

        Assert.Contains(e.Failures, f => f.Contains("Tessera:Throttling:" + named, StringComparison.Ordinal));
    }

    [Fact]
    public void TheThrottles_AreOnByDefault_WithValidSettings()
    {
        var settings = new ServerSettings();

        Assert.Empty(settings.Validate());
        Assert.True(settings.Throttling.LoginPerAddress.Enabled);
        Assert.True(settings.Throttling.ClientPerAddress.Enabled);
        Assert.True(settings.Throttling.ClientPerClientAndAddress.Enabled);
        // Per address the threshold is well above one account's (5), so people sharing an address are not paused for a few typos.
        Assert.True(settings.Throttling.LoginPerAddress.PauseAfter > 5);
        Assert.True(settings.Throttling.ClientPerAddress.PauseAfter > settings.Throttling.ClientPerClientAndAddress.PauseAfter);
    }
}
