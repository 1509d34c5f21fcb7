using Microsoft.Extensions.Time.Testing;
using Tessera.Server.Hosting;
using Tessera.Server.Throttling;

namespace Tessera.Tests.FrontDoor;

/// <summary>The in-memory failure counter behind the address and client throttles: schedule, bounds, expiry, concurrency.</summary>
public sealed class FailureThrottleTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    private static ThrottlePolicy Policy(int pauseAfter = 3, int lockoutAfter = 6, TimeSpan? forgetAfter = null) => new()
    {
        PauseAfter = pauseAfter, FirstPause = TimeSpan.FromSeconds(10), MaxPause = TimeSpan.FromSeconds(30),
        LockoutAfter = lockoutAfter, Lockout = TimeSpan.FromMinutes(15), ForgetAfter = forgetAfter ?? TimeSpan.FromHours(1),
    };

    [Theory]
    [InlineData(1, null, false)]
    [InlineData(2, null, false)]
    [InlineData(3, 10, false)]
    [InlineData(4, 20, false)]
    [InlineData(5, 30, false)]     // 40 s, capped
    [InlineData(6, 900, true)]
    [InlineData(1000, 900, true)]
    [InlineData(int.MaxValue, 900, true)]
    public void TheSchedule_IsFreeThenDoublingThenCappedThenALockout(int failures, int? seconds, bool lockout)
    {
        var (pause, isLockout) = Policy().PauseFor(failures);

        Assert.Equal(seconds is null ? null : TimeSpan.FromSeconds(seconds.Value), pause);
        Assert.Equal(lockout, isLockout);
    }

    [Fact]
    public void WithoutALockout_ThePauseStaysAtItsCap_HoweverManyFailures()
    {
        var policy = Policy(lockoutAfter: 0);
        Assert.Equal((TimeSpan.FromSeconds(30), false), policy.PauseFor(70));
        Assert.Equal((TimeSpan.FromSeconds(30), false), policy.PauseFor(int.MaxValue));
    }

    [Fact]
    public void APausedKey_IsRefused_UntilThePauseEnds_AndOnlyTheFirstRefusalIsMarkedFirst()
    {
        var throttle = new FailureThrottle<string>(Policy(), 100, _time);
        Assert.True(throttle.IsEmpty);
        Assert.False(throttle.Check("a").Refused);

        Assert.Null(throttle.RecordFailure("a").PausedUntil);
        Assert.Null(throttle.RecordFailure("a").PausedUntil);
        var third = throttle.RecordFailure("a");

        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(10), third.PausedUntil);
        Assert.Equal(3, third.Failures);
        var first = throttle.Check("a");
        Assert.True(first.Refused && first.FirstRefusal);
        var second = throttle.Check("a");
        Assert.True(second.Refused && !second.FirstRefusal);
        Assert.False(throttle.Check("b").Refused);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(throttle.Check("a").Refused);
        // The next pause's first refusal is marked again.
        throttle.RecordFailure("a");
        Assert.True(throttle.Check("a").FirstRefusal);
    }

    [Fact]
    public void Forget_ClearsTheCount()
    {
        var throttle = new FailureThrottle<string>(Policy(), 100, _time);
        throttle.RecordFailure("a");
        throttle.RecordFailure("a");

        throttle.Forget("a");

        Assert.True(throttle.IsEmpty);
        Assert.Equal(1, throttle.RecordFailure("a").Failures);
    }

    [Fact]
    public void ADisabledPolicy_TracksNothing()
    {
        var throttle = new FailureThrottle<string>(Policy(pauseAfter: 0), 100, _time);

        for (var i = 0; i < 50; i++) throttle.RecordFailure("a");

        Assert.True(throttle.IsEmpty);
        Assert.False(throttle.Check("a").Refused);
    }

    [Fact]
    public void ACount_IsForgottenAfterTheQuietTime_CountedFromTheEndOfItsPause_AndSweptAway()
    {
        var throttle = new FailureThrottle<string>(Policy(forgetAfter: TimeSpan.FromMinutes(10)), 1000, _time);
        for (var i = 0; i < 3; i++) throttle.RecordFailure("a");             // paused for 10 s
        for (var k = 0; k < 50; k++) throttle.RecordFailure("key-" + k);

        _time.Advance(TimeSpan.FromMinutes(10));                              // 10 min after the failure, 9:50 after the pause
        Assert.Equal(4, throttle.RecordFailure("a").Failures);
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(20));  // past the quiet time after the 20 s pause
        Assert.Equal(1, throttle.RecordFailure("a").Failures);

        Assert.Equal(1, throttle.Count);                                      // the 50 others were swept on the way
    }

    [Fact]
    public void TheTable_NeverGrowsPastItsCapacity_AndKeepsPausedKeysLongest()
    {
        var evicted = 0;
        var throttle = new FailureThrottle<string>(Policy(pauseAfter: 2, lockoutAfter: 2), 100, _time, n => evicted += n);
        throttle.RecordFailure("attacker");
        throttle.RecordFailure("attacker");                                   // locked out for 15 minutes

        for (var k = 0; k < 10_000; k++)
        {
            throttle.RecordFailure("fresh-" + k);
            Assert.InRange(throttle.Count, 1, 100);
        }

        Assert.True(throttle.Check("attacker").Refused);
        Assert.True(evicted >= 10_000 - 100);
    }

    [Fact]
    public async Task Failures_AreCountedExactly_UnderConcurrency()
    {
        var throttle = new FailureThrottle<string>(Policy(pauseAfter: 1_000_000, lockoutAfter: 0), 10_000, _time);
        var start = new TaskCompletionSource();
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            await start.Task;
            for (var i = 0; i < 2_000; i++)
            {
                throttle.RecordFailure("shared");
                throttle.RecordFailure("own-" + w);
                throttle.Check("shared");
            }
        })).ToArray();

        start.SetResult();
        await Task.WhenAll(workers);

        Assert.Equal(16_001, throttle.RecordFailure("shared").Failures);
        Assert.Equal(2_001, throttle.RecordFailure("own-3").Failures);
        Assert.Equal(9, throttle.Count);
    }
}

/// <summary>Which address a request is counted against.</summary>
public sealed class SourceAddressTests
{
    private static System.Net.IPAddress Of(string? address)
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Connection.RemoteIpAddress = address is null ? null : System.Net.IPAddress.Parse(address);
        return SourceAddress.Of(http);
    }

    [Fact]
    public void IPv4_CountsAsItIs_AlsoWhenMappedToIPv6() =>
        Assert.Equal(Of("192.0.2.7"), Of("::ffff:192.0.2.7"));

    [Fact]
    public void IPv6_CountsByItsSlash64()
    {
        Assert.Equal(Of("2001:db8:1:2::1"), Of("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        Assert.NotEqual(Of("2001:db8:1:2::1"), Of("2001:db8:1:3::1"));
        Assert.Equal("2001:db8:1:2::/64", SourceAddress.Display(Of("2001:db8:1:2:abcd::9")));
    }

    [Fact]
    public void NoAddress_HasABucketOfItsOwn()
    {
        Assert.Equal(SourceAddress.Unknown, Of(null));
        Assert.NotEqual(Of(null), Of("::1"));
        Assert.NotEqual(Of(null), Of("0.0.0.0"));
        Assert.Equal("unknown", SourceAddress.Display(Of(null)));
    }
}
