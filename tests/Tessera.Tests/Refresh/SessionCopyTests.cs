using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Refresh;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Storage.Sqlite;

namespace Tessera.Tests.Refresh;

/// <summary>
/// The embedded store keeps a copy of each session under its current token, so a refresh needs no read. A copy is never
/// trusted: these tests change the database behind it through a second store on the same file (another process: the CLI,
/// a second server) and check that every decision is still the one a read would give, and that nothing is consumed,
/// rotated twice or called reuse because of an out-of-date copy.
/// </summary>
public sealed class SessionCopyTests : IAsyncLifetime
{
    private DirectoryInfo _dir = null!;
    private SqliteStore _a = null!;
    private SqliteStore _b = null!;
    private RefreshHarness _h = null!;
    private RefreshTokenService _otherProcess = null!;

    public async Task InitializeAsync()
    {
        _dir = Directory.CreateTempSubdirectory("tessera-copies-");
        var path = Path.Combine(_dir.FullName, "tessera.db");
        _a = new SqliteStore(new SqliteStoreOptions { Path = path });
        await _a.MigrateAsync(default);
        _b = new SqliteStore(new SqliteStoreOptions { Path = path });
        await _b.MigrateAsync(default);
        _h = new RefreshHarness(_a);
        // The other process shares the master key (as every node of a deployment does) and the clock.
        _otherProcess = new RefreshTokenService(_b, _h.Protector, _h.Options, _h.Events, _h.Publisher, _h.Time);
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        try { _dir.Delete(recursive: true); } catch (IOException) { }
    }

    private ISessionStore A => _a;

    /// <summary>A session refreshed once through store A, so A holds a copy under the token it handed out.</summary>
    private async Task<(Client Client, User User, Session Session, string Token)> RefreshedOnceAsync()
    {
        var client = await _h.AddClientAsync(RefreshHarness.PublicClient("spa-" + Guid.NewGuid().ToString("N")[..8]));
        var user = await _h.AddUserAsync();
        var (session, t0) = await _h.StartSessionAsync(client, user);
        _h.Time.Advance(TimeSpan.FromMinutes(5));
        var r1 = await _h.RefreshOkAsync(client, t0);
        Assert.NotNull(A.FindCopyByCurrentToken(Handles.Hash(r1.RefreshToken)));
        _h.Time.Advance(TimeSpan.FromMinutes(5));
        return (client, user, session, r1.RefreshToken);
    }

    [Fact]
    public async Task After_a_rotation_the_copy_under_the_new_token_is_what_a_read_returns()
    {
        var (client, _, session, r1) = await RefreshedOnceAsync();
        var r2 = await _h.RefreshOkAsync(client, r1, userAgent: RefreshHarness.FirefoxUa2, ip: "198.51.100.9");

        Assert.Null(A.FindCopyByCurrentToken(Handles.Hash(r1)));
        var copy = A.FindCopyByCurrentToken(Handles.Hash(r2.RefreshToken));
        Assert.NotNull(copy);
        var read = await ((ISessionStore)_b).FindByFamilyWithUserAsync(session.FamilyHash!, default);
        Assert.NotNull(read);
        Assert.Equivalent(read.Session, copy.Session, strict: true);
        Assert.Equal(read.Session.ProtectedCurrentToken, copy.Session.ProtectedCurrentToken);
        Assert.Equivalent(read.User, copy.User, strict: true);
        Assert.Equal(2, copy.Session.Version);
    }

    [Fact]
    public async Task A_session_revoked_by_another_process_is_refused_for_what_it_is_not_as_reuse()
    {
        var (client, _, session, r1) = await RefreshedOnceAsync();
        Assert.True(await ((ISessionStore)_b).RevokeAsync(session.Id, _h.Now, RevocationReasons.Logout, default));

        var failure = await _h.RefreshFailsAsync(client, r1);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        var stored = await _h.SessionAsync(session.Id);
        Assert.Equal(RevocationReasons.Logout, stored.RevokedReason);
        Assert.Empty(_h.Publisher.Sessions);
        Assert.Empty(await _h.AuditAsync(session.Id, AuditTypes.ReuseDetected));
        Assert.Contains(await _h.AuditAsync(session.Id, AuditTypes.RefreshRefused), e => e.Reason!.Contains("session revoked (logout)", StringComparison.Ordinal));
        Assert.Null(A.FindCopyByCurrentToken(Handles.Hash(r1)));
    }

    [Fact]
    public async Task A_token_rotated_by_another_process_is_replayed_inside_the_window_not_rotated_twice()
    {
        var (client, _, session, r1) = await RefreshedOnceAsync();
        var other = await _otherProcess.RefreshAsync(new RefreshRequest(client, r1, null, "203.0.113.7", RefreshHarness.FirefoxUa), default);
        Assert.NotNull(other.Success);

        // A's copy still says r1 is current. Presented again (a client retry), r1 must get the other process's successor.
        var retry = await _h.RefreshOkAsync(client, r1);

        Assert.True(retry.Replayed);
        Assert.Equal(other.Success.RefreshToken, retry.RefreshToken);
        Assert.Equal(2, (await _h.AuditAsync(session.Id, AuditTypes.Refreshed)).Count);
        Assert.True(Handles.HashEquals(Handles.Hash(other.Success.RefreshToken), (await _h.SessionAsync(session.Id)).CurrentTokenHash));

        // And the successor keeps working on A, which never had a copy of it.
        var next = await _h.RefreshOkAsync(client, other.Success.RefreshToken);
        Assert.False(next.Replayed);
        Assert.Null((await _h.SessionAsync(session.Id)).RevokedAt);
    }

    [Fact]
    public async Task A_token_rotated_by_another_process_and_shown_after_the_window_is_reuse()
    {
        var (client, _, session, r1) = await RefreshedOnceAsync();
        var other = await _otherProcess.RefreshAsync(new RefreshRequest(client, r1, null, "203.0.113.7", RefreshHarness.FirefoxUa), default);
        Assert.NotNull(other.Success);
        _h.Time.Advance(_h.Options.RefreshRetryWindow + TimeSpan.FromSeconds(1));

        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, r1)).Error);

        Assert.Equal(RevocationReasons.Reuse, (await _h.SessionAsync(session.Id)).RevokedReason);
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.ReuseDetected));
    }

    [Fact]
    public async Task A_user_disabled_by_another_process_is_refused_although_the_copy_shows_an_active_user()
    {
        var (client, user, session, r1) = await RefreshedOnceAsync();
        Assert.False(A.FindCopyByCurrentToken(Handles.Hash(r1))!.User!.Disabled);
        await new RefreshHarness(_b, _h.Time).UpdateUserAsync(user, u => u with { Disabled = true });

        var failure = await _h.RefreshFailsAsync(client, r1);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        Assert.Contains(await _h.AuditAsync(session.Id, AuditTypes.RefreshRefused), e => e.Reason == "user disabled");
        var stored = await _h.SessionAsync(session.Id);
        Assert.Null(stored.RevokedAt);
        Assert.True(Handles.HashEquals(Handles.Hash(r1), stored.CurrentTokenHash), "a refused refresh consumes nothing");
    }

    [Fact]
    public async Task Scopes_taken_from_the_user_by_another_process_are_gone_from_the_next_refresh()
    {
        var (client, user, _, r1) = await RefreshedOnceAsync();
        await new RefreshHarness(_b, _h.Time).UpdateUserAsync(user, u => u with { AllowedScopes = ["api.read"] });

        var r2 = await _h.RefreshOkAsync(client, r1);

        Assert.Contains("api.read", r2.Scopes);
        Assert.DoesNotContain("api.write", r2.Scopes);
    }

    [Fact]
    public async Task A_session_touched_after_the_copy_was_made_is_decided_on_what_the_touch_left()
    {
        var (client, _, session, r1) = await RefreshedOnceAsync();
        _h.Events.OnValidateRefresh = UserAgentFamilyPolicy.Validate;
        // Another process records a use from Chrome without rotating (a client without rotation, say). The copy still
        // shows Firefox, which the policy would let through; the row shows Chrome, which it refuses.
        Assert.True(await ((ISessionStore)_b).TouchAsync(session.Id, _h.Now, _h.Now + TimeSpan.FromDays(14), "198.51.100.20", RefreshHarness.ChromeUa, default));

        var failure = await _h.RefreshFailsAsync(client, r1, userAgent: RefreshHarness.FirefoxUa);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        Assert.Contains(await _h.AuditAsync(session.Id, AuditTypes.RefreshRefused), e => e.Reason!.Contains("from Chrome to Firefox", StringComparison.Ordinal));
        Assert.True(Handles.HashEquals(Handles.Hash(r1), (await _h.SessionAsync(session.Id)).CurrentTokenHash));
    }

    [Fact]
    public async Task A_user_deleted_by_another_process_is_refused_as_gone()
    {
        var (client, user, session, r1) = await RefreshedOnceAsync();
        Assert.True(await ((IUserStore)_b).DeleteAsync(user.Id, default));

        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, r1)).Error);
        Assert.Contains(await _h.AuditAsync(session.Id, AuditTypes.RefreshRefused), e => e.Reason == "user no longer exists");
    }

    [Fact]
    public async Task An_edit_made_outside_Tessera_still_bumps_the_versions_so_no_copy_hides_it()
    {
        var (client, user, session, r1) = await RefreshedOnceAsync();
        _h.Events.OnValidateRefresh = UserAgentFamilyPolicy.Validate;
        var before = (await ((ISessionStore)_b).FindByFamilyWithUserAsync(session.FamilyHash!, default))!;

        // What an operator with the sqlite3 shell might do: statements that know nothing of the version columns.
        await using (var shell = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_dir.FullName, "tessera.db")};Pooling=False"))
        {
            await shell.OpenAsync();
            await using var edit = shell.CreateCommand();
            edit.CommandText = "UPDATE sessions SET user_agent = $ua WHERE id = $id; UPDATE users SET doc = doc WHERE id = $user;";
            edit.Parameters.AddWithValue("$ua", RefreshHarness.ChromeUa);
            edit.Parameters.AddWithValue("$id", session.Id);
            edit.Parameters.AddWithValue("$user", user.Id);
            await edit.ExecuteNonQueryAsync();
        }

        var after = (await ((ISessionStore)_b).FindByFamilyWithUserAsync(session.FamilyHash!, default))!;
        Assert.Equal(before.Session.Version + 1, after.Session.Version);
        Assert.Equal(before.User!.Version + 1, after.User!.Version);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, r1, userAgent: RefreshHarness.FirefoxUa)).Error);
        Assert.Contains(await _h.AuditAsync(session.Id, AuditTypes.RefreshRefused), e => e.Reason!.Contains("from Chrome to Firefox", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_narrowing_decided_on_an_outdated_copy_is_audited_once()
    {
        var (client, _, session, r1) = await RefreshedOnceAsync();
        _h.Events.OnValidateRefresh = c =>
        {
            c.Narrow(["openid", "offline_access", "api.read"], "unfamiliar network");
            return Task.CompletedTask;
        };
        Assert.True(await ((ISessionStore)_b).TouchAsync(session.Id, _h.Now, _h.Now + TimeSpan.FromDays(14), null, null, default));

        var r2 = await _h.RefreshOkAsync(client, r1);

        Assert.DoesNotContain("api.write", r2.Scopes);
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.RefreshNarrowed));
    }

    [Fact]
    public async Task A_client_without_rotation_never_decides_on_a_copy_and_runs_its_policy_once_per_refresh()
    {
        var client = await _h.AddClientAsync(RefreshHarness.ConfidentialClient("backend-" + Guid.NewGuid().ToString("N")[..8], new RefreshPolicy { Rotate = false }));
        var user = await _h.AddUserAsync();
        var (session, token) = await _h.StartSessionAsync(client, user);
        var calls = 0;
        _h.Events.OnValidateRefresh = _ =>
        {
            Interlocked.Increment(ref calls);
            return Task.CompletedTask;
        };

        for (var i = 0; i < 3; i++)
        {
            _h.Time.Advance(TimeSpan.FromMinutes(5));
            Assert.Equal(token, (await _h.RefreshOkAsync(client, token)).RefreshToken);
        }

        Assert.Equal(3, calls);
        Assert.Equal(3, (await _h.SessionAsync(session.Id)).Version);
    }

    [Fact]
    public async Task Parallel_use_of_one_token_through_two_processes_rotates_it_once()
    {
        var (client, _, session, r1) = await RefreshedOnceAsync();
        var request = new RefreshRequest(client, r1, null, "203.0.113.7", RefreshHarness.FirefoxUa);

        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() =>
            (i % 2 == 0 ? _h.Service : _otherProcess).RefreshAsync(request, default))));

        var tokens = results.Select(r => r.Success?.RefreshToken).ToList();
        Assert.All(results, r => Assert.Null(r.Failure));
        Assert.Single(tokens.Distinct());
        Assert.Single(results, r => !r.Success!.Replayed);
        Assert.Equal(2, (await _h.AuditAsync(session.Id, AuditTypes.Refreshed)).Count);
        Assert.Null((await _h.SessionAsync(session.Id)).RevokedAt);
    }
}

public sealed class SqliteSessionCopiesTests
{
    private static SessionWithUser Copy(string id) => new(
        new Session
        {
            Id = id, UserId = "u", ClientId = "c", Scopes = ["openid"], CreatedAt = RefreshHarness.T0, AuthTime = RefreshHarness.T0,
            IdleExpiresAt = RefreshHarness.T0.AddDays(1), AbsoluteExpiresAt = RefreshHarness.T0.AddDays(2), CurrentTokenHash = Handles.Hash(id),
        },
        new User { Id = "u", Username = "u", CreatedAt = RefreshHarness.T0 });

    [Fact]
    public void Revoked_sessions_and_missing_users_get_no_copy()
    {
        var copies = new SqliteSessionCopies();
        copies.Remember(Copy("a") with { User = null });
        var revoked = Copy("b");
        copies.Remember(revoked with { Session = revoked.Session with { RevokedAt = RefreshHarness.T0 } });

        Assert.Equal(0, copies.Count);
        Assert.Null(copies.Find(Handles.Hash("a")));
        Assert.Null(copies.Find(Handles.Hash("b")));
    }

    [Fact]
    public void At_capacity_the_copies_are_dropped_and_refilled()
    {
        var copies = new SqliteSessionCopies(capacity: 3);
        foreach (var id in new[] { "a", "b", "c" }) copies.Remember(Copy(id));
        Assert.Equal(3, copies.Count);

        copies.Remember(Copy("d"));

        Assert.Equal(1, copies.Count);
        Assert.NotNull(copies.Find(Handles.Hash("d")));
        Assert.Null(copies.Find(Handles.Hash("a")));
    }

    [Fact]
    public void A_copy_follows_its_rotation_and_a_failed_swap_forgets_it()
    {
        var copies = new SqliteSessionCopies();
        var a = Copy("a");
        copies.Remember(a);
        var next = Handles.Hash("a2");
        var now = RefreshHarness.T0.AddTicks(12345);
        var audit = new AuditEvent { At = now, Type = AuditTypes.Refreshed };

        // A rotation of another session under the same key (impossible in practice) must not move this copy.
        copies.Rotated(new Rotation("other", a.Session.CurrentTokenHash!, next, null, now, now.AddDays(1), null, null, audit));
        Assert.Null(copies.Find(next));

        copies.Remember(a);
        copies.Rotated(new Rotation("a", a.Session.CurrentTokenHash!, next, [1, 2], now, now.AddDays(1), "198.51.100.1", null, audit));
        var moved = copies.Find(next);
        Assert.NotNull(moved);
        Assert.Null(copies.Find(a.Session.CurrentTokenHash!));
        Assert.Equal(a.Session.CurrentTokenHash, moved.Session.PreviousTokenHash);
        Assert.Equal(RefreshHarness.T0.AddMilliseconds(1), moved.Session.LastUsedAt); // 1.2345 ms kept as 1 ms, like a read
        Assert.Equal("198.51.100.1", moved.Session.IpAddress);
        Assert.Equal(1, moved.Session.Version);

        copies.Forget(next);
        Assert.Null(copies.Find(next));
        Assert.Equal(0, copies.Count);
    }
}
