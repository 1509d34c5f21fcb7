using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Server.Maintenance;
using Xunit.Abstractions;

namespace Tessera.Tests.Refresh;

/// <summary>
/// Issue 3, "Bounded storage": after months of simulated churn the pruning job keeps the sessions table proportional to
/// the sessions that are alive or ended within the retention window, erases retry-window copies once their window
/// closed, never touches a live session, and is safe to run twice at once.
/// </summary>
public sealed class PruningTests(ITestOutputHelper output) : IAsyncLifetime
{
    private TempSqliteStore _db = null!;
    private RefreshHarness _h = null!;

    public async Task InitializeAsync()
    {
        _db = await TempSqliteStore.CreateAsync();
        _h = new RefreshHarness(_db.Store);
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private Task<int> PruneAsync() => PruningService.PruneOnceAsync(_h.Store, _h.Options, _h.Now, default);

    private enum Ending { IdleOut, Revoke, Reuse, Forever }

    /// <summary>What the simulation knows about one session, kept after the store deleted it.</summary>
    private sealed class Tracked
    {
        public required DateTimeOffset StartAt { get; init; }
        public required int Refreshes { get; set; }
        public required TimeSpan Interval { get; init; }
        public required Ending Ending { get; init; }
        public required User User { get; init; }
        public Session? Session { get; set; }
        public string? Token { get; set; }
        public string? PreviousToken { get; set; }
        public DateTimeOffset NextAt { get; set; }
        public DateTimeOffset IdleExpiresAt { get; set; }
        public DateTimeOffset AbsoluteExpiresAt { get; set; }
        public DateTimeOffset? RevokedAt { get; set; }
        public DateTimeOffset EndsAt => RevokedAt ?? (IdleExpiresAt < AbsoluteExpiresAt ? IdleExpiresAt : AbsoluteExpiresAt);
        public bool Started => Session is not null;
    }

    [Fact]
    public async Task MonthsOfChurn_KeepTheSessionsTableProportionalToTheSessionsThatMatter()
    {
        var random = new Random(20250602);
        var client = await _h.AddClientAsync(RefreshHarness.PublicClient("churn"));
        var users = new List<User>();
        for (var i = 0; i < 20; i++) users.Add(await _h.AddUserAsync());
        var start = _h.Now;
        var days = 120;
        var step = TimeSpan.FromHours(2);

        // 300 sessions spread over 120 days: most refresh a few times then go idle, some are revoked, some are
        // killed by reuse, and a few keep refreshing until their absolute expiry.
        var sessions = Enumerable.Range(0, 300).Select(i =>
        {
            var ending = random.Next(10) switch { < 5 => Ending.IdleOut, < 7 => Ending.Revoke, < 8 => Ending.Reuse, _ => Ending.Forever };
            return new Tracked
            {
                StartAt = start + TimeSpan.FromHours(Math.Floor(i * days * 24.0 / 300)),
                Refreshes = random.Next(2, 7),
                // Long-lived sessions come back every few days, always inside the 14-day idle window.
                Interval = TimeSpan.FromHours(ending == Ending.Forever ? random.Next(72, 240) : random.Next(6, 72)),
                Ending = ending,
                User = users[random.Next(users.Count)],
            };
        }).ToList();

        var prunes = 0;
        var maxRows = 0;
        for (var now = start; now <= start + TimeSpan.FromDays(days); now += step)
        {
            _h.Time.SetUtcNow(now);
            foreach (var t in sessions)
            {
                if (!t.Started)
                {
                    if (t.StartAt > now) continue;
                    var (session, token) = await _h.StartSessionAsync(client, t.User);
                    t.Session = session;
                    t.Token = token;
                    t.IdleExpiresAt = session.IdleExpiresAt;
                    t.AbsoluteExpiresAt = session.AbsoluteExpiresAt;
                    t.NextAt = now + t.Interval;
                    continue;
                }
                if (t.RevokedAt is not null || t.EndsAt <= now || t.NextAt > now) continue;

                if (t.Refreshes > 0 || t.Ending == Ending.Forever)
                {
                    var r = await _h.RefreshOkAsync(client, t.Token!);
                    t.PreviousToken = t.Token;
                    t.Token = r.RefreshToken;
                    t.IdleExpiresAt = r.Session.IdleExpiresAt;
                    t.Refreshes--;
                    t.NextAt = now + t.Interval;
                    continue;
                }
                switch (t.Ending)
                {
                    case Ending.Revoke:
                        Assert.True(await _h.Store.Sessions.RevokeAsync(t.Session!.Id, now, RevocationReasons.UserRevoked, default));
                        t.RevokedAt = now;
                        break;
                    case Ending.Reuse:
                        // The token rotated one interval ago, far outside its retry window.
                        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t.PreviousToken!)).Error);
                        t.RevokedAt = now;
                        break;
                    default:
                        t.NextAt = DateTimeOffset.MaxValue; // walks away; the session idles out
                        break;
                }
            }

            if ((now - start).Ticks % TimeSpan.FromDays(1).Ticks != 0) continue;

            // The pruning job, once a simulated day.
            await PruneAsync();
            prunes++;
            var rows = await _h.Store.Sessions.CountAsync(default);
            maxRows = Math.Max(maxRows, rows);
            var alive = sessions.Count(t => t.Started && t.EndsAt > now);
            var matter = sessions.Count(t => t.Started && t.EndsAt > now - _h.Options.EndedSessionRetention);
            Assert.True(rows <= 2 * Math.Max(matter, 1), $"day {(now - start).TotalDays}: {rows} rows for {matter} sessions alive or recently ended");
            Assert.True(rows >= alive, $"day {(now - start).TotalDays}: {rows} rows but {alive} live sessions");

            // Retry-window copies whose window closed are gone.
            var stored = await _h.Store.Sessions.ListByClientAsync(client.Id, default);
            Assert.DoesNotContain(stored, s => s.ProtectedCurrentToken is not null && s.PreviousConsumedAt < now - _h.Options.RefreshRetryWindow);
        }

        var end = _h.Now;
        var finalRows = await _h.Store.Sessions.CountAsync(default);
        var live = sessions.Where(t => t.Started && t.EndsAt > end).ToList();
        var recent = sessions.Count(t => t.Started && t.EndsAt > end - _h.Options.EndedSessionRetention);
        output.WriteLine($"{prunes} prunes; {sessions.Count} sessions created; at the end {finalRows} rows, {live.Count} live, {recent} alive or ended within retention; at most {maxRows} rows");
        Assert.Equal(300, sessions.Count(t => t.Started));
        Assert.True(maxRows < sessions.Count, $"the table once held {maxRows} rows for {sessions.Count} sessions: nothing was ever pruned");
        Assert.True(finalRows <= 2 * recent, $"{finalRows} rows for {recent} sessions alive or ended within retention");
        Assert.NotEmpty(live);
        Assert.Contains(sessions, t => t.Ending == Ending.Reuse && t.RevokedAt is not null);
        Assert.Contains(sessions, t => t.Ending == Ending.Forever && t.EndsAt == t.AbsoluteExpiresAt && t.EndsAt <= end);

        // Every live session survived the pruning and still refreshes; the ones pruned are gone for good.
        foreach (var t in live)
        {
            Assert.NotNull(await _h.Store.Sessions.FindAsync(t.Session!.Id, default));
            var r = await _h.RefreshOkAsync(client, t.Token!);
            Assert.NotEqual(t.Token, r.RefreshToken);
        }
        var longGone = sessions.Where(t => t.EndsAt < end - _h.Options.EndedSessionRetention).ToList();
        Assert.NotEmpty(longGone);
        foreach (var t in longGone)
            Assert.Null(await _h.Store.Sessions.FindAsync(t.Session!.Id, default));
    }

    [Fact]
    public async Task RetryWindowCopy_IsKeptWhileTheWindowIsOpen_AndErasedOnceItClosed()
    {
        var client = await _h.AddClientAsync(RefreshHarness.PublicClient("window"));
        var user = await _h.AddUserAsync();
        var (session, t0) = await _h.StartSessionAsync(client, user);
        var t1 = (await _h.RefreshOkAsync(client, t0)).RefreshToken;

        _h.Time.Advance(TimeSpan.FromSeconds(30));
        await PruneAsync();
        Assert.NotNull((await _h.SessionAsync(session.Id)).ProtectedCurrentToken);
        Assert.Equal(t1, (await _h.RefreshOkAsync(client, t0)).RefreshToken);

        _h.Time.Advance(TimeSpan.FromSeconds(1));
        await PruneAsync();
        var stored = await _h.SessionAsync(session.Id);
        Assert.Null(stored.ProtectedCurrentToken);
        Assert.Null(stored.RevokedAt);
        // The session itself and its current token are untouched.
        Assert.NotEqual(t1, (await _h.RefreshOkAsync(client, t1)).RefreshToken);
    }

    [Fact]
    public async Task ALongRetryWindowOfOneClient_KeepsItsCopiesLonger()
    {
        var client = await _h.AddClientAsync(RefreshHarness.PublicClient("slow-network", new RefreshPolicy { RetryWindow = TimeSpan.FromMinutes(2) }));
        var user = await _h.AddUserAsync();
        var (session, t0) = await _h.StartSessionAsync(client, user);
        var t1 = (await _h.RefreshOkAsync(client, t0)).RefreshToken;

        _h.Time.Advance(TimeSpan.FromSeconds(90));
        await PruneAsync();

        Assert.Equal(t1, (await _h.RefreshOkAsync(client, t0)).RefreshToken);
        Assert.NotNull((await _h.SessionAsync(session.Id)).ProtectedCurrentToken);
    }

    [Fact]
    public async Task AfterPruning_ReuseOfALiveSessionsOldToken_IsStillDetected()
    {
        var client = await _h.AddClientAsync(RefreshHarness.PublicClient("reuse"));
        var user = await _h.AddUserAsync();
        var (session, t0) = await _h.StartSessionAsync(client, user);
        var t1 = (await _h.RefreshOkAsync(client, t0)).RefreshToken;
        _h.Time.Advance(TimeSpan.FromHours(1));
        var t2 = (await _h.RefreshOkAsync(client, t1)).RefreshToken;
        _h.Time.Advance(TimeSpan.FromDays(2));
        await PruneAsync();

        // t0's hash is long gone from the row; its family part still names the session.
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t0)).Error);
        Assert.Equal(RevocationReasons.Reuse, (await _h.SessionAsync(session.Id)).RevokedReason);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t2)).Error);
    }

    [Fact]
    public async Task EndedSessions_StayForTheRetentionPeriod_ThenGo()
    {
        var client = await _h.AddClientAsync(RefreshHarness.PublicClient("ended"));
        var user = await _h.AddUserAsync();
        var (revoked, _) = await _h.StartSessionAsync(client, user);
        var (idle, _) = await _h.StartSessionAsync(client, user);
        var (live, liveToken) = await _h.StartSessionAsync(client, user);
        Assert.True(await _h.Store.Sessions.RevokeAsync(revoked.Id, _h.Now, RevocationReasons.UserRevoked, default));

        // Keep one session alive across 60 days while the idle one expires at day 14.
        for (var day = 1; day <= 60; day++)
        {
            _h.Time.Advance(TimeSpan.FromDays(1));
            liveToken = (await _h.RefreshOkAsync(client, liveToken)).RefreshToken;
            await PruneAsync();
            var revokedRow = await _h.Store.Sessions.FindAsync(revoked.Id, default);
            var idleRow = await _h.Store.Sessions.FindAsync(idle.Id, default);
            var retention = _h.Options.EndedSessionRetention;
            Assert.True((revokedRow is null) == (_h.Now - retention > revoked.CreatedAt), $"day {day}: revoked session row {(revokedRow is null ? "gone" : "kept")}");
            Assert.True((idleRow is null) == (_h.Now - retention > idle.IdleExpiresAt), $"day {day}: idle session row {(idleRow is null ? "gone" : "kept")}");
            Assert.NotNull(await _h.Store.Sessions.FindAsync(live.Id, default));
        }
    }

    [Fact]
    public async Task TwoConcurrentPrunes_BothSucceed()
    {
        var client = await _h.AddClientAsync(RefreshHarness.PublicClient("parallel", new RefreshPolicy { IdleLifetime = TimeSpan.FromDays(60) }));
        var user = await _h.AddUserAsync();
        var ended = new List<string>();
        var kept = new List<(Session Session, string Token)>();
        for (var i = 0; i < 1200; i++)
        {
            var (session, token) = await _h.StartSessionAsync(client, user);
            if (i % 3 == 0)
            {
                await _h.Store.Sessions.RevokeAsync(session.Id, _h.Now, RevocationReasons.AdminRevoked, default);
                ended.Add(session.Id);
            }
            else if (i % 3 == 1)
            {
                var r = await _h.RefreshOkAsync(client, token);
                kept.Add((session, r.RefreshToken));
            }
            else
            {
                kept.Add((session, token));
            }
        }
        // The revoked ones age past the retention window; the others stay inside their (long) idle window.
        _h.Time.Advance(_h.Options.EndedSessionRetention + TimeSpan.FromDays(1));

        var results = await Task.WhenAll(Task.Run(PruneAsync), Task.Run(PruneAsync), Task.Run(PruneAsync));

        Assert.All(results, n => Assert.True(n >= 0));
        Assert.True(results.Sum() >= ended.Count, $"pruned {string.Join("+", results)} rows, expected at least {ended.Count}");
        Assert.Equal(kept.Count, await _h.Store.Sessions.CountAsync(default));
        Assert.Equal(0, await PruneAsync());
        foreach (var (_, token) in kept.Take(20))
            await _h.RefreshOkAsync(client, token);
    }
}
