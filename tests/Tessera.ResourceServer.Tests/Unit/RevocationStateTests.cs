using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;

namespace Tessera.ResourceServer.Tests.Unit;

public sealed class RevocationStateTests
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    [Fact]
    public void A_revoked_session_is_revoked_and_no_other()
    {
        var state = new RevocationState(_time);
        state.RevokeSession("s1", Window);
        Assert.True(state.IsRevoked("s1", "u", null, 0));
        Assert.False(state.IsRevoked("s2", "u", null, 0));
        Assert.False(state.IsRevoked(null, "u", null, 0));
        Assert.False(state.IsRevoked("S1", "u", null, 0));
    }

    [Fact]
    public void A_watermark_voids_tokens_issued_before_its_second_and_not_in_it()
    {
        var state = new RevocationState(_time);
        state.RevokeBefore("u", 1000, Window);
        Assert.True(state.IsRevoked(null, "u", null, 999));
        // revoked_before is strict: Tessera publishes the second it means (the sign-out's own second after "sign out
        // everywhere", with a sid event for each old session; the next second after a change that ends no session).
        Assert.False(state.IsRevoked("any", "u", null, 1000));
        Assert.False(state.IsRevoked(null, "u", null, 1001));
        Assert.False(state.IsRevoked(null, "v", null, 1));
    }

    [Fact]
    public void After_sign_out_everywhere_old_sessions_of_the_same_second_are_refused_by_sid_and_a_new_one_is_not()
    {
        var state = new RevocationState(_time);
        // What Tessera publishes for "sign out everywhere" at 1000.4 s: each session that existed, then the watermark 1000.
        state.RevokeSession("old", Window);
        state.RevokeBefore("u", 1000, Window);
        Assert.True(state.IsRevoked("old", "u", "web", 1000));
        Assert.True(state.IsRevoked("older", "u", "web", 999));
        Assert.False(state.IsRevoked("new", "u", "web", 1000));
    }

    [Fact]
    public void A_client_watermark_voids_every_token_of_that_client_issued_before_it_and_no_other()
    {
        var state = new RevocationState(_time);
        state.RevokeClientBefore("svc", 1001, Window);
        Assert.True(state.IsRevoked(null, "svc", "svc", 1000));
        // A user's token obtained through that client is the client's token too.
        Assert.True(state.IsRevoked("s", "alice", "svc", 1000));
        Assert.False(state.IsRevoked(null, "svc", "svc", 1001));
        Assert.False(state.IsRevoked(null, "other", "other", 1000));
        // A client watermark is not a user watermark: a user whose id is the client's id is not touched.
        Assert.False(state.IsRevoked("s", "svc", "web", 1000));
        Assert.Equal(1, state.ClientCount);
        Assert.Equal(0, state.UserCount);
    }

    [Fact]
    public void A_client_watermark_only_goes_up_and_goes_once_its_window_has_passed()
    {
        var state = new RevocationState(_time);
        state.RevokeClientBefore("svc", 2000, Window);
        state.RevokeClientBefore("svc", 1500, Window);
        Assert.True(state.IsRevoked(null, null, "svc", 1999));
        _time.Advance(Window);
        Assert.Equal(1, state.Prune(force: true));
        Assert.Equal(0, state.ClientCount);
        Assert.False(state.IsRevoked(null, null, "svc", 1999));
    }

    [Fact]
    public void A_later_watermark_wins_and_an_earlier_one_does_not_lower_it()
    {
        var state = new RevocationState(_time);
        state.RevokeBefore("u", 1000, Window);
        state.RevokeBefore("u", 500, Window);
        Assert.True(state.IsRevoked(null, "u", null, 900));
        state.RevokeBefore("u", 2000, Window);
        Assert.True(state.IsRevoked(null, "u", null, 1500));
        Assert.Equal(1, state.UserCount);
    }

    [Fact]
    public void Entries_are_dropped_once_every_token_they_could_void_has_expired()
    {
        var state = new RevocationState(_time);
        state.RevokeSession("s1", Window);
        state.RevokeBefore("u", 1000, Window);
        _time.Advance(Window - TimeSpan.FromSeconds(1));
        Assert.Equal(0, state.Prune());
        Assert.True(state.IsRevoked("s1", null, null, 0));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, state.Prune());
        Assert.Equal(0, state.SessionCount);
        Assert.Equal(0, state.UserCount);
        Assert.False(state.IsRevoked("s1", "u", null, 999));
    }

    [Fact]
    public void A_session_revoked_again_stays_until_its_later_window_ends()
    {
        var state = new RevocationState(_time);
        state.RevokeSession("s1", Window);
        _time.Advance(TimeSpan.FromMinutes(6));
        state.RevokeSession("s1", Window);
        _time.Advance(TimeSpan.FromMinutes(5));
        state.Prune();
        Assert.True(state.IsRevoked("s1", null, null, 0));
        _time.Advance(TimeSpan.FromMinutes(5));
        state.Prune();
        Assert.False(state.IsRevoked("s1", null, null, 0));
    }

    [Fact]
    public void Last_sync_is_unknown_until_the_feed_answered()
    {
        var state = new RevocationState(_time);
        Assert.Null(state.LastSync);
        state.MarkSynced();
        Assert.Equal(_time.GetUtcNow().ToUnixTimeMilliseconds(), state.LastSync!.Value.ToUnixTimeMilliseconds());
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasuredAlone
{
    /// <summary>Tests that read process-wide numbers (heap size, latency) run after the others, one at a time.</summary>
    public const string Name = "measured alone";
}

[Collection(MeasuredAlone.Name)]
public sealed class RevocationMemoryTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The bound: 100k revoked sessions in the window take at most 20 MB (session ids included).</summary>
    [Fact]
    public void A_hundred_thousand_revoked_sessions_take_at_most_20_MB()
    {
        const int sessions = 100_000;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var state = new RevocationState(time);
        Span<byte> raw = stackalloc byte[16];
        for (var i = 0; i < sessions; i++)
        {
            // Session ids as Tessera makes them: 16 random bytes, base64url (22 characters).
            RandomNumberGenerator.Fill(raw);
            state.RevokeSession(Convert.ToBase64String(raw).TrimEnd('=').Replace('+', '-').Replace('/', '_'), TimeSpan.FromMinutes(10));
        }
        var after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.Equal(sessions, state.SessionCount);
        var megabytes = (after - before) / (1024.0 * 1024.0);
        output.WriteLine($"{sessions} revoked sessions: {megabytes:F1} MB ({(after - before) / sessions} bytes each)");
        Assert.True(megabytes <= 20, $"{sessions} revoked sessions take {megabytes:F1} MB");
        GC.KeepAlive(state);

        // And all of it goes once the window has passed.
        time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(sessions, state.Prune());
        Assert.Equal(0, state.SessionCount);
    }
}
