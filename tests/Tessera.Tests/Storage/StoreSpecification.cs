using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Dpop;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Storage.Postgres;
using Tessera.Storage.Sqlite;
using static Tessera.Tests.Storage.StoreSamples;

namespace Tessera.Tests.Storage;

/// <summary>
/// What every <see cref="ITesseraStore"/> must do. Each implementation inherits this class, supplies a fresh, empty,
/// migrated store per test, and passes every test unchanged.
/// </summary>
public abstract class StoreSpecification : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private ITesseraStore? _store;

    /// <summary>A fresh, empty store, already migrated.</summary>
    protected abstract Task<ITesseraStore> CreateStoreAsync();

    /// <summary>Releases what <see cref="CreateStoreAsync"/> made; by default disposes the store.</summary>
    protected virtual async Task DestroyStoreAsync(ITesseraStore store)
    {
        if (store is IAsyncDisposable d) await d.DisposeAsync();
    }

    protected ITesseraStore Store => _store ?? throw new InvalidOperationException("The store was not created.");

    /// <summary>The server takes the revocation feed and the DPoP replay cache from the store, so every store has them.</summary>
    private IRevocationFeedStore Feed => Assert.IsAssignableFrom<IRevocationFeedStore>(Store);

    private IReplayCache Replays => Assert.IsAssignableFrom<IReplayCache>(Store);

    public async Task InitializeAsync() => _store = await CreateStoreAsync();

    public async Task DisposeAsync()
    {
        if (_store is not null) await DestroyStoreAsync(_store);
    }

    // ---- clients ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_saved_client_is_found_with_every_field_intact()
    {
        var client = NewClient("web");
        await Store.Clients.SaveAsync(client, None);

        var found = await Store.Clients.FindAsync("web", None);

        Assert.NotNull(found);
        Assert.Equivalent(client, found, strict: true);
        Assert.Equal(client.SecretHash, found.SecretHash);
        Assert.Equal(client.Refresh, found.Refresh);
        Assert.Equal(TimeSpan.FromDays(3) + TimeSpan.FromMilliseconds(250), found.Refresh.IdleLifetime);
        Assert.Equal(TimeSpan.FromMinutes(7), found.AccessTokenLifetime);
    }

    [Fact]
    public async Task A_public_client_is_saved_without_a_secret_or_policy_overrides()
    {
        var client = new Client { Id = "spa", RedirectUris = ["https://spa.example/cb"] };
        await Store.Clients.SaveAsync(client, None);

        var found = await Store.Clients.FindAsync("spa", None);

        Assert.NotNull(found);
        Assert.True(found.IsPublic);
        Assert.Null(found.AccessTokenLifetime);
        Assert.Equal(new RefreshPolicy(), found.Refresh);
        Assert.Equivalent(client, found, strict: true);
    }

    [Fact]
    public async Task Saving_a_client_again_replaces_it()
    {
        await Store.Clients.SaveAsync(NewClient("web"), None);
        var changed = NewClient("web") with { DisplayName = "Renamed", Scopes = ["openid"] };

        await Store.Clients.SaveAsync(changed, None);

        var all = await Store.Clients.ListAsync(None);
        var only = Assert.Single(all);
        Assert.Equal("Renamed", only.DisplayName);
        Assert.Equal(["openid"], only.Scopes);
    }

    [Fact]
    public async Task Clients_are_listed_in_id_order()
    {
        foreach (var id in new[] { "charlie", "Bravo", "alpha" }) await Store.Clients.SaveAsync(NewClient(id), None);

        var ids = (await Store.Clients.ListAsync(None)).Select(c => c.Id);

        Assert.Equal(["Bravo", "alpha", "charlie"], ids);
    }

    [Fact]
    public async Task A_deleted_client_is_gone_and_deleting_it_again_returns_false()
    {
        await Store.Clients.SaveAsync(NewClient("web"), None);
        await Store.Clients.SaveAsync(NewClient("cli"), None);

        Assert.True(await Store.Clients.DeleteAsync("web", None));

        Assert.Null(await Store.Clients.FindAsync("web", None));
        Assert.Equal("cli", Assert.Single(await Store.Clients.ListAsync(None)).Id);
        Assert.False(await Store.Clients.DeleteAsync("web", None));
    }

    [Fact]
    public async Task An_unknown_client_is_not_found()
    {
        Assert.Null(await Store.Clients.FindAsync("nobody", None));
        Assert.Empty(await Store.Clients.ListAsync(None));
    }

    // ---- users -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_created_user_is_found_by_id_and_by_username_in_any_case()
    {
        var user = NewUser("u1", "Alice");

        Assert.True(await Store.Users.CreateAsync(user, None));

        Assert.Equivalent(user, await Store.Users.FindByIdAsync("u1", None), strict: true);
        Assert.Equivalent(user, await Store.Users.FindByUsernameAsync("Alice", None), strict: true);
        Assert.Equivalent(user, await Store.Users.FindByUsernameAsync("alice", None), strict: true);
        Assert.Equivalent(user, await Store.Users.FindByUsernameAsync("ALICE", None), strict: true);
        Assert.Null(await Store.Users.FindByUsernameAsync("alic", None));
        Assert.Null(await Store.Users.FindByIdAsync("u2", None));
    }

    [Fact]
    public async Task Creating_a_user_whose_username_is_taken_in_any_case_returns_false_and_changes_nothing()
    {
        var first = NewUser("u1", "alice");
        Assert.True(await Store.Users.CreateAsync(first, None));

        Assert.False(await Store.Users.CreateAsync(NewUser("u2", "ALICE") with { Name = "Impostor" }, None));
        Assert.False(await Store.Users.CreateAsync(NewUser("u3", "alice"), None));

        var only = Assert.Single(await Store.Users.ListAsync(None));
        Assert.Equivalent(first, only, strict: true);
        Assert.Null(await Store.Users.FindByIdAsync("u2", None));
    }

    [Fact]
    public async Task Saving_a_user_replaces_it_and_a_new_username_takes_effect()
    {
        await Store.Users.CreateAsync(NewUser("u1", "alice"), None);
        var changed = NewUser("u1", "alice2") with { Disabled = true, LockedUntil = null, AllowedScopes = null, Email = "new@example.org" };

        Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(changed, None));

        var stored = changed with { Version = 1 };
        Assert.Equivalent(stored, await Store.Users.FindByIdAsync("u1", None), strict: true);
        Assert.Equivalent(stored, await Store.Users.FindByUsernameAsync("Alice2", None), strict: true);
        Assert.Null(await Store.Users.FindByUsernameAsync("alice", None));
        Assert.True(await Store.Users.CreateAsync(NewUser("u2", "alice"), None));
    }

    [Fact]
    public async Task Find_and_list_return_the_current_version_and_each_save_increments_it()
    {
        await Store.Users.CreateAsync(NewUser("u1", "alice"), None);
        Assert.Equal(0, (await Store.Users.FindByIdAsync("u1", None))!.Version);

        for (var i = 0; i < 3; i++)
        {
            var current = (await Store.Users.FindByIdAsync("u1", None))!;
            Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(current with { FailedLogins = current.FailedLogins + 1 }, None));
        }

        Assert.Equal(3, (await Store.Users.FindByIdAsync("u1", None))!.Version);
        Assert.Equal(3, (await Store.Users.FindByUsernameAsync("ALICE", None))!.Version);
        var listed = Assert.Single(await Store.Users.ListAsync(None));
        Assert.Equal(3, listed.Version);
        Assert.Equal(3, listed.FailedLogins);
    }

    [Fact]
    public async Task Of_twenty_concurrent_saves_from_the_same_version_exactly_one_is_saved_and_it_is_what_is_stored()
    {
        await Store.Users.CreateAsync(NewUser("u1", "alice"), None);
        var read = (await Store.Users.FindByIdAsync("u1", None))!;
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var saves = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            await start.Task;
            var changed = read with { Name = $"writer {i}", FailedLogins = i };
            return (Changed: changed, Outcome: await Store.Users.SaveAsync(changed, None));
        })).ToList();
        start.SetResult();
        var results = await Task.WhenAll(saves);

        var winner = Assert.Single(results, r => r.Outcome == UserSaveOutcome.Saved);
        Assert.All(results.Where(r => r.Outcome != UserSaveOutcome.Saved), r => Assert.Equal(UserSaveOutcome.Conflict, r.Outcome));
        Assert.Equivalent(winner.Changed with { Version = read.Version + 1 }, await Store.Users.FindByIdAsync("u1", None), strict: true);
    }

    [Fact]
    public async Task Saving_from_a_stale_version_is_a_conflict_and_does_not_undo_the_newer_save()
    {
        await Store.Users.CreateAsync(NewUser("u1", "alice"), None);
        var admin = (await Store.Users.FindByIdAsync("u1", None))!;
        var login = (await Store.Users.FindByIdAsync("u1", None))!;
        var disabled = admin with { Disabled = true, RevokedBefore = T0 };
        Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(disabled, None));

        // The sign-in read the user before the operator disabled it: its failed-login count must not re-enable it.
        Assert.Equal(UserSaveOutcome.Conflict, await Store.Users.SaveAsync(login.WithFailedLogin(T0), None));
        Assert.Equal(UserSaveOutcome.Conflict, await Store.Users.SaveAsync(login with { Version = login.Version + 7 }, None));

        var stored = await Store.Users.FindByIdAsync("u1", None);
        Assert.Equivalent(disabled with { Version = 1 }, stored, strict: true);

        // Re-read and re-apply: both changes are kept.
        Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(stored!.WithFailedLogin(T0), None));
        var merged = (await Store.Users.FindByIdAsync("u1", None))!;
        Assert.True(merged.Disabled);
        Assert.Equal(1, merged.FailedLogins);
        Assert.Equal(2, merged.Version);
    }

    [Fact]
    public async Task Renaming_a_user_to_a_taken_username_in_any_case_returns_username_taken_and_changes_nothing()
    {
        await Store.Users.CreateAsync(NewUser("u1", "alice"), None);
        await Store.Users.CreateAsync(NewUser("u2", "bob"), None);
        var bob = (await Store.Users.FindByIdAsync("u2", None))!;

        Assert.Equal(UserSaveOutcome.UsernameTaken, await Store.Users.SaveAsync(bob with { Username = "ALICE", Name = "Impostor" }, None));
        Assert.Equal(UserSaveOutcome.UsernameTaken, await Store.Users.SaveAsync(bob with { Username = "alice" }, None));

        Assert.Equivalent(bob, await Store.Users.FindByIdAsync("u2", None), strict: true);
        Assert.Equal("u1", (await Store.Users.FindByUsernameAsync("alice", None))!.Id);
        // The store is still usable, and a free name (or another case of one's own) is fine.
        Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(bob with { Username = "Bob" }, None));
        Assert.Equal("Bob", (await Store.Users.FindByIdAsync("u2", None))!.Username);
    }

    [Fact]
    public async Task Saving_an_unknown_or_deleted_user_returns_not_found_and_creates_nothing()
    {
        await Store.Users.CreateAsync(NewUser("u1", "alice"), None);
        var alice = (await Store.Users.FindByIdAsync("u1", None))!;
        Assert.True(await Store.Users.DeleteAsync("u1", None));

        Assert.Equal(UserSaveOutcome.NotFound, await Store.Users.SaveAsync(alice, None));
        Assert.Equal(UserSaveOutcome.NotFound, await Store.Users.SaveAsync(NewUser("u9", "nobody"), None));

        Assert.Empty(await Store.Users.ListAsync(None));
    }

    [Fact]
    public async Task Users_are_listed_by_username_ignoring_case()
    {
        foreach (var (id, name) in new[] { ("1", "bob"), ("2", "Alice"), ("3", "carol") }) await Store.Users.CreateAsync(NewUser(id, name), None);

        var names = (await Store.Users.ListAsync(None)).Select(u => u.Username);

        Assert.Equal(["Alice", "bob", "carol"], names);
    }

    [Fact]
    public async Task A_deleted_user_is_gone_frees_its_username_and_deleting_it_again_returns_false()
    {
        await Store.Users.CreateAsync(NewUser("u1", "alice"), None);

        Assert.True(await Store.Users.DeleteAsync("u1", None));

        Assert.Null(await Store.Users.FindByIdAsync("u1", None));
        Assert.Null(await Store.Users.FindByUsernameAsync("alice", None));
        Assert.False(await Store.Users.DeleteAsync("u1", None));
        Assert.True(await Store.Users.CreateAsync(NewUser("u2", "Alice"), None));
    }

    // ---- authorization codes ---------------------------------------------------------------------------------

    [Fact]
    public async Task A_code_is_redeemed_once_and_a_second_redemption_sees_when_it_was_redeemed()
    {
        var code = NewCode();
        await Store.Codes.StoreAsync(code, None);

        var first = await Store.Codes.TryRedeemAsync(code.Hash, T0.AddSeconds(2), None);
        var second = await Store.Codes.TryRedeemAsync(code.Hash, T0.AddSeconds(9), None);

        Assert.NotNull(first);
        Assert.Equivalent(code, first, strict: true);
        Assert.Null(first.RedeemedAt);
        Assert.NotNull(second);
        Assert.Equal(T0.AddSeconds(2), second.RedeemedAt);
        Assert.Equivalent(code with { RedeemedAt = T0.AddSeconds(2) }, second, strict: true);
    }

    [Fact]
    public async Task The_session_a_redemption_created_is_visible_when_the_code_is_replayed()
    {
        var code = NewCode();
        await Store.Codes.StoreAsync(code, None);
        var first = await Store.Codes.TryRedeemAsync(code.Hash, T0, None);
        Assert.Null(first?.SessionId);

        await Store.Codes.LinkSessionAsync(code.Hash, "sid-1", None);
        var replay = await Store.Codes.TryRedeemAsync(code.Hash, T0.AddSeconds(30), None);

        Assert.NotNull(replay);
        Assert.Equal("sid-1", replay.SessionId);
        Assert.Equal(T0, replay.RedeemedAt);
    }

    [Fact]
    public async Task Redeeming_an_unknown_code_returns_null()
    {
        await Store.Codes.StoreAsync(NewCode(), None);

        Assert.Null(await Store.Codes.TryRedeemAsync(Hash(), T0, None));
    }

    [Fact]
    public async Task Of_many_concurrent_redemptions_of_one_code_exactly_one_sees_it_unredeemed()
    {
        var code = NewCode();
        await Store.Codes.StoreAsync(code, None);

        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(i =>
            Task.Run(() => Store.Codes.TryRedeemAsync(code.Hash, T0.AddMilliseconds(i), None))));

        Assert.All(results, r => Assert.NotNull(r));
        var winner = Assert.Single(results, r => r!.RedeemedAt is null);
        var losers = results.Where(r => r!.RedeemedAt is not null).ToList();
        Assert.Equal(29, losers.Count);
        Assert.Single(losers.Select(r => r!.RedeemedAt).Distinct());
        Assert.Equal(code.ClientId, winner!.ClientId);
    }

    // ---- sessions: create and find ---------------------------------------------------------------------------

    [Fact]
    public async Task A_created_session_is_found_by_id_and_by_family_with_every_field_intact()
    {
        var session = NewSession() with
        {
            PreviousTokenHash = Hash(), PreviousConsumedAt = T0.AddSeconds(-1), ProtectedCurrentToken = Hash(),
            RefreshCount = 2, RefreshWindowStart = T0.AddSeconds(-20), LastUsedAt = T0.AddSeconds(-1),
        };
        await Store.Sessions.CreateAsync(session, None);

        var byId = await Store.Sessions.FindAsync(session.Id, None);
        var byFamily = await Store.Sessions.FindByFamilyAsync(session.FamilyHash!, None);

        Assert.Equivalent(session, byId, strict: true);
        Assert.Equivalent(session, byFamily, strict: true);
        Assert.Equal(session.CurrentTokenHash, byId!.CurrentTokenHash);
        Assert.Equal(1, await Store.Sessions.CountAsync(None));
    }

    [Fact]
    public async Task A_session_without_a_refresh_token_keeps_its_nulls()
    {
        var session = NewSession() with { FamilyHash = null, CurrentTokenHash = null, Resource = null, UserAgent = null, IpAddress = null };
        await Store.Sessions.CreateAsync(session, None);

        Assert.Equivalent(session, await Store.Sessions.FindAsync(session.Id, None), strict: true);
    }

    [Fact]
    public async Task An_unknown_session_or_family_is_not_found()
    {
        await Store.Sessions.CreateAsync(NewSession(), None);

        Assert.Null(await Store.Sessions.FindAsync("sid-unknown", None));
        Assert.Null(await Store.Sessions.FindByFamilyAsync(Hash(), None));
        Assert.Empty(await Store.Sessions.ListByUserAsync("user-unknown", None));
        Assert.Empty(await Store.Sessions.ListByClientAsync("client-unknown", None));
    }

    [Fact]
    public async Task Sessions_are_listed_by_user_and_by_client_newest_first()
    {
        var older = NewSession("alice", "web", T0);
        var newer = NewSession("alice", "cli", T0.AddHours(1));
        var bobs = NewSession("bob", "web", T0.AddHours(2));
        foreach (var s in new[] { older, bobs, newer }) await Store.Sessions.CreateAsync(s, None);

        Assert.Equal([newer.Id, older.Id], (await Store.Sessions.ListByUserAsync("alice", None)).Select(s => s.Id));
        Assert.Equal([bobs.Id, older.Id], (await Store.Sessions.ListByClientAsync("web", None)).Select(s => s.Id));
        Assert.Equivalent(bobs, Assert.Single(await Store.Sessions.ListByUserAsync("bob", None)), strict: true);
        Assert.Equal(3, await Store.Sessions.CountAsync(None));
    }

    [Fact]
    public async Task Sessions_created_at_the_same_instant_are_listed_in_id_order()
    {
        // Ids chosen so that binary order and a case-insensitive or locale order disagree ('B' < 'a' < 'c' in binary).
        var sessions = new[] { "sid-c", "sid-a", "sid-B", "sid-b" }.Select(id => NewSession("alice", "web", T0) with { Id = id }).ToList();
        var later = NewSession("alice", "web", T0.AddSeconds(1)) with { Id = "sid-z" };
        foreach (var s in sessions.Append(later)) await Store.Sessions.CreateAsync(s, None);

        string[] expected = ["sid-z", "sid-B", "sid-a", "sid-b", "sid-c"];
        Assert.Equal(expected, (await Store.Sessions.ListByUserAsync("alice", None)).Select(s => s.Id));
        Assert.Equal(expected, (await Store.Sessions.ListByClientAsync("web", None)).Select(s => s.Id));
    }

    // ---- sessions: with their user (the refresh path's one read) -------------------------------------------------

    [Fact]
    public async Task A_session_found_by_family_with_its_user_has_every_field_intact_and_the_user_as_found_by_id()
    {
        Assert.True(await Store.Users.CreateAsync(NewUser("alice", "alice"), None));
        Assert.True(await Store.Users.CreateAsync(NewUser("bob", "bob") with { Name = "Bob Example", Email = "bob@example.org" }, None));
        // A saved user, so the version read through the join is not just the default.
        var read = (await Store.Users.FindByIdAsync("alice", None))!;
        Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(read with { FailedLogins = 2 }, None));
        var session = NewSession("alice") with
        {
            PreviousTokenHash = Hash(), PreviousConsumedAt = T0.AddSeconds(-1), ProtectedCurrentToken = Hash(),
            RefreshCount = 2, RefreshWindowStart = T0.AddSeconds(-20), LastUsedAt = T0.AddSeconds(-1),
        };
        var bobs = NewSession("bob");
        await Store.Sessions.CreateAsync(session, None);
        await Store.Sessions.CreateAsync(bobs, None);

        var found = await Store.Sessions.FindByFamilyWithUserAsync(session.FamilyHash!, None);
        var foundBobs = await Store.Sessions.FindByFamilyWithUserAsync(bobs.FamilyHash!, None);

        Assert.NotNull(found);
        Assert.Equivalent(session, found.Session, strict: true);
        Assert.Equal(session.CurrentTokenHash, found.Session.CurrentTokenHash);
        Assert.NotNull(found.User);
        Assert.Equivalent(await Store.Users.FindByIdAsync("alice", None), found.User, strict: true);
        Assert.Equal(1, found.User.Version);
        Assert.Equal(2, found.User.FailedLogins);
        // Each session comes with its own user.
        Assert.NotNull(foundBobs);
        Assert.Equivalent(bobs, foundBobs.Session, strict: true);
        Assert.Equivalent(await Store.Users.FindByIdAsync("bob", None), foundBobs.User, strict: true);
        Assert.Equal(0, foundBobs.User!.Version);
    }

    [Fact]
    public async Task A_session_found_by_family_whose_user_does_not_exist_or_was_deleted_comes_without_a_user()
    {
        Assert.True(await Store.Users.CreateAsync(NewUser("alice", "alice"), None));
        var orphan = NewSession("nobody");
        var deletedUsers = NewSession("alice");
        await Store.Sessions.CreateAsync(orphan, None);
        await Store.Sessions.CreateAsync(deletedUsers, None);
        Assert.NotNull((await Store.Sessions.FindByFamilyWithUserAsync(deletedUsers.FamilyHash!, None))!.User);

        Assert.True(await Store.Users.DeleteAsync("alice", None));

        var withoutUser = await Store.Sessions.FindByFamilyWithUserAsync(orphan.FamilyHash!, None);
        Assert.NotNull(withoutUser);
        Assert.Equivalent(orphan, withoutUser.Session, strict: true);
        Assert.Null(withoutUser.User);
        var afterDelete = await Store.Sessions.FindByFamilyWithUserAsync(deletedUsers.FamilyHash!, None);
        Assert.NotNull(afterDelete);
        Assert.Equivalent(deletedUsers, afterDelete.Session, strict: true);
        Assert.Null(afterDelete.User);
    }

    [Fact]
    public async Task An_unknown_family_is_not_found_with_a_user()
    {
        Assert.True(await Store.Users.CreateAsync(NewUser("user-1", "alice"), None));
        await Store.Sessions.CreateAsync(NewSession(), None);

        Assert.Null(await Store.Sessions.FindByFamilyWithUserAsync(Hash(), None));
    }

    [Fact]
    public async Task A_session_found_by_family_with_its_user_shows_a_rotation_and_a_user_save_made_after_an_earlier_read()
    {
        Assert.True(await Store.Users.CreateAsync(NewUser("user-1", "alice"), None));
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        var earlier = (await Store.Sessions.FindByFamilyWithUserAsync(session.FamilyHash!, None))!;
        var next = Hash();

        Assert.Equal(RotationOutcome.Rotated, await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, next, T0.AddMinutes(1)), None));
        Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(earlier.User! with { Disabled = true }, None));

        var later = await Store.Sessions.FindByFamilyWithUserAsync(session.FamilyHash!, None);
        Assert.NotNull(later);
        Assert.Equal(next, later.Session.CurrentTokenHash);
        Assert.Equal(session.CurrentTokenHash, later.Session.PreviousTokenHash);
        Assert.Equal(T0.AddMinutes(1), later.Session.PreviousConsumedAt);
        Assert.Equivalent(await Store.Sessions.FindAsync(session.Id, None), later.Session, strict: true);
        Assert.NotNull(later.User);
        Assert.True(later.User.Disabled);
        Assert.Equal(earlier.User!.Version + 1, later.User.Version);
        Assert.Equivalent(await Store.Users.FindByIdAsync("user-1", None), later.User, strict: true);
        // What was read earlier is untouched.
        Assert.Equal(session.CurrentTokenHash, earlier.Session.CurrentTokenHash);
        Assert.False(earlier.User.Disabled);
    }

    // ---- sessions: rotation ----------------------------------------------------------------------------------

    [Fact]
    public async Task Of_fifty_concurrent_rotations_with_the_same_token_exactly_one_wins_and_only_it_is_audited()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        var successors = Enumerable.Range(0, 50).Select(_ => Hash()).ToArray();

        var outcomes = await Task.WhenAll(successors.Select(next =>
            Task.Run(() => Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, next, T0.AddMinutes(1)), None))));

        Assert.Single(outcomes, o => o == RotationOutcome.Rotated);
        Assert.Equal(49, outcomes.Count(o => o == RotationOutcome.Lost));
        var after = await Store.Sessions.FindAsync(session.Id, None);
        var winner = successors[Array.IndexOf(outcomes, RotationOutcome.Rotated)];
        Assert.Equal(winner, after!.CurrentTokenHash);
        Assert.Equal(session.CurrentTokenHash, after.PreviousTokenHash);
        var audited = await Store.Audit.QueryAsync(new AuditQuery { SessionId = session.Id, Type = AuditTypes.Refreshed, Limit = 1000 }, None);
        Assert.Single(audited);
    }

    [Fact]
    public async Task A_rotation_keeps_the_previous_token_when_it_was_consumed_and_the_retry_copy()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        var next = Hash();
        var copy = Hash();
        var now = T0.AddHours(3);

        var outcome = await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, next, now, copy, ip: "198.51.100.9"), None);

        Assert.Equal(RotationOutcome.Rotated, outcome);
        var after = await Store.Sessions.FindAsync(session.Id, None);
        Assert.NotNull(after);
        Assert.Equal(next, after.CurrentTokenHash);
        Assert.Equal(session.CurrentTokenHash, after.PreviousTokenHash);
        Assert.Equal(now, after.PreviousConsumedAt);
        Assert.Equal(copy, after.ProtectedCurrentToken);
        Assert.Equal(now, after.LastUsedAt);
        Assert.Equal(now.AddDays(14), after.IdleExpiresAt);
        Assert.Equal("198.51.100.9", after.IpAddress);
        Assert.Equal("Mozilla/5.0 Firefox/134.0", after.UserAgent);
        Assert.Equal(session.DpopJkt, after.DpopJkt);
        Assert.Equal(session.AbsoluteExpiresAt, after.AbsoluteExpiresAt);
        Assert.Equal(session.FamilyHash, after.FamilyHash);
        var e = Assert.Single(await Store.Audit.QueryAsync(new AuditQuery { SessionId = session.Id }, None));
        Assert.Equal(AuditTypes.Refreshed, e.Type);
        Assert.Equal(now, e.At);
        Assert.Equal("198.51.100.9", e.IpAddress);
    }

    [Fact]
    public async Task A_rotation_without_an_ip_keeps_the_known_one()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);

        await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddMinutes(1), ip: null), None);

        Assert.Equal(session.IpAddress, (await Store.Sessions.FindAsync(session.Id, None))!.IpAddress);
    }

    [Fact]
    public async Task A_rotation_presenting_a_token_that_is_no_longer_current_is_lost_changes_nothing_and_is_not_audited()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        var next = Hash();
        await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, next, T0.AddMinutes(1)), None);
        var before = await Store.Sessions.FindAsync(session.Id, None);

        var replay = await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddMinutes(2)), None);

        Assert.Equal(RotationOutcome.Lost, replay);
        Assert.Equivalent(before, await Store.Sessions.FindAsync(session.Id, None), strict: true);
        Assert.Single(await Store.Audit.QueryAsync(new AuditQuery { SessionId = session.Id }, None));
    }

    [Fact]
    public async Task A_rotation_of_an_unknown_session_is_lost()
    {
        var ghost = NewSession();

        Assert.Equal(RotationOutcome.Lost, await Store.Sessions.TryRotateAsync(RotationOf(ghost, ghost.CurrentTokenHash!, Hash(), T0), None));
        Assert.Empty(await Store.Audit.QueryAsync(new AuditQuery(), None));
    }

    [Fact]
    public async Task A_revoked_session_cannot_be_rotated()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        await Store.Sessions.RevokeAsync(session.Id, T0.AddMinutes(1), "logout", None);

        var outcome = await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddMinutes(2)), None);

        Assert.Equal(RotationOutcome.Lost, outcome);
        var after = await Store.Sessions.FindAsync(session.Id, None);
        Assert.Null(after!.CurrentTokenHash);
        Assert.Empty(await Store.Audit.QueryAsync(new AuditQuery { SessionId = session.Id }, None));
    }

    [Fact]
    public async Task A_session_created_already_revoked_cannot_be_rotated()
    {
        var session = NewSession() with { RevokedAt = T0, RevokedReason = "test" };
        await Store.Sessions.CreateAsync(session, None);

        var outcome = await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddMinutes(1)), None);

        Assert.Equal(RotationOutcome.Lost, outcome);
        Assert.Equal(session.CurrentTokenHash, (await Store.Sessions.FindAsync(session.Id, None))!.CurrentTokenHash);
    }

    [Fact]
    public async Task A_session_version_goes_up_with_each_rotation_touch_and_revocation_and_a_rotation_expecting_an_older_one_is_lost()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        Assert.Equal(0, (await Store.Sessions.FindAsync(session.Id, None))!.Version);

        var next = Hash();
        Assert.Equal(RotationOutcome.Rotated, await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, next, T0.AddMinutes(1)) with { ExpectedSessionVersion = 0 }, None));
        Assert.Equal(1, (await Store.Sessions.FindAsync(session.Id, None))!.Version);
        Assert.True(await Store.Sessions.TouchAsync(session.Id, T0.AddMinutes(2), T0.AddDays(14), "198.51.100.5", "curl/8.0", None));
        Assert.Equal(2, (await Store.Sessions.FindAsync(session.Id, None))!.Version);
        Assert.True(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddMinutes(2), 10, None));
        Assert.Equal(2, (await Store.Sessions.FindAsync(session.Id, None))!.Version);

        // The token is current and the session live, but the row changed since version 1: the swap must fail.
        var stale = RotationOf(session, next, Hash(), T0.AddMinutes(3)) with { ExpectedSessionVersion = 1 };
        Assert.Equal(RotationOutcome.Lost, await Store.Sessions.TryRotateAsync(stale, None));
        var after = (await Store.Sessions.FindAsync(session.Id, None))!;
        Assert.Equal(next, after.CurrentTokenHash);
        Assert.Equal("curl/8.0", after.UserAgent);
        Assert.Single(await Store.Audit.QueryAsync(new AuditQuery { SessionId = session.Id, Type = AuditTypes.Refreshed }, None));

        Assert.Equal(RotationOutcome.Rotated, await Store.Sessions.TryRotateAsync(stale with { ExpectedSessionVersion = 2 }, None));
        Assert.True(await Store.Sessions.RevokeAsync(session.Id, T0.AddMinutes(4), "logout", None));
        Assert.Equal(4, (await Store.Sessions.FindAsync(session.Id, None))!.Version);
    }

    [Fact]
    public async Task A_rotation_expecting_a_user_version_is_lost_once_the_user_changed_or_is_gone()
    {
        Assert.True(await Store.Users.CreateAsync(NewUser("user-1", "alice"), None));
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        var read = (await Store.Sessions.FindByFamilyWithUserAsync(session.FamilyHash!, None))!;
        Assert.Equal(UserSaveOutcome.Saved, await Store.Users.SaveAsync(read.User! with { Disabled = true }, None));

        var rotation = RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddMinutes(1)) with { ExpectedUserVersion = read.User!.Version };
        Assert.Equal(RotationOutcome.Lost, await Store.Sessions.TryRotateAsync(rotation, None));
        Assert.Equal(session.CurrentTokenHash, (await Store.Sessions.FindAsync(session.Id, None))!.CurrentTokenHash);
        Assert.Empty(await Store.Audit.QueryAsync(new AuditQuery { SessionId = session.Id }, None));

        Assert.Equal(RotationOutcome.Rotated, await Store.Sessions.TryRotateAsync(rotation with { ExpectedUserVersion = read.User.Version + 1 }, None));

        var second = NewSession();
        await Store.Sessions.CreateAsync(second, None);
        Assert.True(await Store.Users.DeleteAsync("user-1", None));
        Assert.Equal(RotationOutcome.Lost, await Store.Sessions.TryRotateAsync(
            RotationOf(second, second.CurrentTokenHash!, Hash(), T0.AddMinutes(1)) with { ExpectedUserVersion = read.User.Version + 1 }, None));
    }

    [Fact]
    public async Task A_rotation_at_or_after_the_idle_or_absolute_expiry_is_lost()
    {
        var session = NewSession() with { IdleExpiresAt = T0.AddHours(1), AbsoluteExpiresAt = T0.AddHours(2) };
        await Store.Sessions.CreateAsync(session, None);

        Assert.Equal(RotationOutcome.Lost, await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddHours(1)), None));
        Assert.Equal(session.CurrentTokenHash, (await Store.Sessions.FindAsync(session.Id, None))!.CurrentTokenHash);
        Assert.Equal(RotationOutcome.Rotated, await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddHours(1).AddMilliseconds(-1)), None));

        var old = NewSession() with { IdleExpiresAt = T0.AddHours(3), AbsoluteExpiresAt = T0.AddHours(2) };
        await Store.Sessions.CreateAsync(old, None);
        Assert.Equal(RotationOutcome.Lost, await Store.Sessions.TryRotateAsync(RotationOf(old, old.CurrentTokenHash!, Hash(), T0.AddHours(2)), None));
    }

    // ---- concurrent writes: one failing write fails alone ----------------------------------------------------------

    [Fact]
    public async Task Among_thirty_concurrent_session_creations_one_that_reuses_an_id_fails_alone_and_every_other_is_stored()
    {
        var existing = NewSession();
        await Store.Sessions.CreateAsync(existing, None);
        var fresh = Enumerable.Range(0, 30).Select(_ => NewSession()).ToList();
        // A new family and token, but the id of the stored session: the primary key refuses it.
        var duplicate = NewSession() with { Id = existing.Id, UserId = "intruder" };
        var writes = fresh.Take(15).Append(duplicate).Concat(fresh.Skip(15)).ToList();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var tasks = writes.Select(s => Task.Run(async () =>
        {
            await start.Task;
            await Store.Sessions.CreateAsync(s, None);
        })).ToList();
        start.SetResult();
        await Task.WhenAll(tasks).ContinueWith(_ => { }, TaskScheduler.Default);

        var failed = Assert.Single(tasks, t => t.IsFaulted);
        Assert.Same(tasks[15], failed);
        Assert.IsAssignableFrom<System.Data.Common.DbException>(failed.Exception!.InnerException);
        Assert.All(tasks.Where(t => t != failed), t => Assert.Equal(TaskStatus.RanToCompletion, t.Status));
        Assert.Equal(31, await Store.Sessions.CountAsync(None));
        foreach (var s in fresh) Assert.Equivalent(s, await Store.Sessions.FindAsync(s.Id, None), strict: true);
        Assert.Equivalent(existing, await Store.Sessions.FindAsync(existing.Id, None), strict: true);
        Assert.Null(await Store.Sessions.FindByFamilyAsync(duplicate.FamilyHash!, None));
    }

    [Fact]
    public async Task Concurrent_rotations_mixed_with_failing_writes_each_rotate_once_and_are_audited_once()
    {
        var sessions = Enumerable.Range(0, 10).Select(_ => NewSession()).ToList();
        foreach (var s in sessions) await Store.Sessions.CreateAsync(s, None);
        // Three competing rotations of each session with its current token, and two creations that break the primary key.
        var rotations = sessions.SelectMany(s => Enumerable.Range(0, 3).Select(_ => (Session: s, Next: Hash()))).ToList();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var rotating = rotations.Select(r => Task.Run(async () =>
        {
            await start.Task;
            return await Store.Sessions.TryRotateAsync(RotationOf(r.Session, r.Session.CurrentTokenHash!, r.Next, T0.AddMinutes(1)), None);
        })).ToList();
        var failing = new[] { sessions[0], sessions[5] }.Select(s => Task.Run(async () =>
        {
            await start.Task;
            await Store.Sessions.CreateAsync(NewSession() with { Id = s.Id }, None);
        })).ToList();
        start.SetResult();
        var outcomes = await Task.WhenAll(rotating);
        await Task.WhenAll(failing).ContinueWith(_ => { }, TaskScheduler.Default);

        Assert.All(failing, t => Assert.IsAssignableFrom<System.Data.Common.DbException>(t.Exception?.InnerException));
        for (var i = 0; i < sessions.Count; i++)
        {
            var s = sessions[i];
            var mine = Enumerable.Range(i * 3, 3).ToList();
            var winner = Assert.Single(mine, j => outcomes[j] == RotationOutcome.Rotated);
            Assert.All(mine.Where(j => j != winner), j => Assert.Equal(RotationOutcome.Lost, outcomes[j]));
            var after = (await Store.Sessions.FindAsync(s.Id, None))!;
            Assert.Equal(rotations[winner].Next, after.CurrentTokenHash);
            Assert.Equal(s.CurrentTokenHash, after.PreviousTokenHash);
            Assert.Equal(s.FamilyHash, after.FamilyHash);
            Assert.Single(await Store.Audit.QueryAsync(new AuditQuery { SessionId = s.Id, Limit = 1000 }, None));
        }
        Assert.Equal(10, await Store.Sessions.CountAsync(None));
        Assert.Equal(10, (await Store.Audit.QueryAsync(new AuditQuery { Type = AuditTypes.Refreshed, Limit = 1000 }, None)).Count);
    }

    // ---- sessions: touch and rate --------------------------------------------------------------------------

    [Fact]
    public async Task Touching_a_session_slides_its_idle_expiry_and_records_the_use_without_changing_its_token()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        var now = T0.AddHours(5);

        Assert.True(await Store.Sessions.TouchAsync(session.Id, now, now.AddDays(14), "198.51.100.23", session.UserAgent, None));

        var after = await Store.Sessions.FindAsync(session.Id, None);
        Assert.Equivalent(session with { LastUsedAt = now, IdleExpiresAt = now.AddDays(14), IpAddress = "198.51.100.23", Version = 1 }, after, strict: true);
    }

    [Fact]
    public async Task Touching_records_the_user_agent_of_the_use_and_a_null_one_keeps_the_known_one()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        const string newer = "Mozilla/5.0 Firefox/140.0";

        Assert.True(await Store.Sessions.TouchAsync(session.Id, T0.AddMinutes(1), T0.AddDays(15), null, newer, None));
        Assert.Equal(newer, (await Store.Sessions.FindAsync(session.Id, None))!.UserAgent);

        Assert.True(await Store.Sessions.TouchAsync(session.Id, T0.AddMinutes(2), T0.AddDays(15), "192.0.2.77", null, None));
        var after = (await Store.Sessions.FindAsync(session.Id, None))!;
        Assert.Equal(newer, after.UserAgent);
        Assert.Equal("192.0.2.77", after.IpAddress);
    }

    [Fact]
    public async Task Touching_without_an_ip_keeps_the_known_one()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);

        Assert.True(await Store.Sessions.TouchAsync(session.Id, T0.AddMinutes(1), T0.AddDays(15), null, null, None));

        Assert.Equal(session.IpAddress, (await Store.Sessions.FindAsync(session.Id, None))!.IpAddress);
    }

    [Fact]
    public async Task A_revoked_or_unknown_session_cannot_be_touched()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        await Store.Sessions.RevokeAsync(session.Id, T0.AddMinutes(1), "logout", None);

        Assert.False(await Store.Sessions.TouchAsync(session.Id, T0.AddMinutes(2), T0.AddDays(20), "192.0.2.9", null, None));
        Assert.False(await Store.Sessions.TouchAsync("sid-unknown", T0, T0.AddDays(20), null, null, None));
        var after = await Store.Sessions.FindAsync(session.Id, None);
        Assert.Equal(session.IdleExpiresAt, after!.IdleExpiresAt);
        Assert.Equal(session.IpAddress, after.IpAddress);
    }

    [Fact]
    public async Task Refreshes_are_counted_up_to_the_limit_within_a_minute_and_a_refused_one_changes_nothing()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);

        Assert.True(await Store.Sessions.TryCountRefreshAsync(session.Id, T0, 3, None));
        Assert.True(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddSeconds(10), 3, None));
        Assert.True(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddSeconds(20), 3, None));
        Assert.False(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddSeconds(30), 3, None));
        Assert.False(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddSeconds(60).AddMilliseconds(-1), 3, None));

        var after = await Store.Sessions.FindAsync(session.Id, None);
        Assert.Equal(3, after!.RefreshCount);
        Assert.Equal(T0, after.RefreshWindowStart);
    }

    [Fact]
    public async Task The_refresh_count_starts_again_a_minute_after_its_window_opened()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        Assert.True(await Store.Sessions.TryCountRefreshAsync(session.Id, T0, 1, None));
        Assert.False(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddSeconds(59), 1, None));

        Assert.True(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddMinutes(1), 1, None));

        var after = await Store.Sessions.FindAsync(session.Id, None);
        Assert.Equal(1, after!.RefreshCount);
        Assert.Equal(T0.AddMinutes(1), after.RefreshWindowStart);
        Assert.False(await Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddMinutes(1).AddSeconds(1), 1, None));
    }

    [Fact]
    public async Task Concurrent_refreshes_never_count_past_the_limit()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);

        var counted = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            Task.Run(() => Store.Sessions.TryCountRefreshAsync(session.Id, T0.AddMilliseconds(i), 5, None))));

        Assert.Equal(5, counted.Count(c => c));
        Assert.Equal(5, (await Store.Sessions.FindAsync(session.Id, None))!.RefreshCount);
    }

    [Fact]
    public async Task Counting_a_refresh_of_an_unknown_session_returns_false()
    {
        Assert.False(await Store.Sessions.TryCountRefreshAsync("sid-unknown", T0, 10, None));
    }

    // ---- sessions: revocation --------------------------------------------------------------------------------

    [Fact]
    public async Task Revoking_a_session_erases_its_token_material_keeps_its_family_and_a_second_revoke_returns_false()
    {
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);
        await Store.Sessions.TryRotateAsync(RotationOf(session, session.CurrentTokenHash!, Hash(), T0.AddMinutes(1), Hash()), None);

        Assert.True(await Store.Sessions.RevokeAsync(session.Id, T0.AddMinutes(2), "logout", None));
        Assert.False(await Store.Sessions.RevokeAsync(session.Id, T0.AddMinutes(3), "again", None));

        var after = await Store.Sessions.FindByFamilyAsync(session.FamilyHash!, None);
        Assert.NotNull(after);
        Assert.Equal(session.Id, after.Id);
        Assert.Equal(T0.AddMinutes(2), after.RevokedAt);
        Assert.Equal("logout", after.RevokedReason);
        Assert.Null(after.CurrentTokenHash);
        Assert.Null(after.PreviousTokenHash);
        Assert.Null(after.ProtectedCurrentToken);
        Assert.False(after.IsActive(T0.AddMinutes(2)));
    }

    [Fact]
    public async Task Revoking_an_unknown_session_returns_false()
    {
        Assert.False(await Store.Sessions.RevokeAsync("sid-unknown", T0, "logout", None));
    }

    [Fact]
    public async Task Revoking_by_user_revokes_only_that_users_live_sessions()
    {
        var live1 = NewSession("alice", "web");
        var live2 = NewSession("alice", "cli");
        var earlier = NewSession("alice", "web") with { RevokedAt = T0, RevokedReason = "earlier" };
        var bobs = NewSession("bob", "web");
        foreach (var s in new[] { live1, live2, earlier, bobs }) await Store.Sessions.CreateAsync(s, None);

        Assert.Equal(2, await Store.Sessions.RevokeByUserAsync("alice", T0.AddHours(1), "password changed", None));
        Assert.Equal(0, await Store.Sessions.RevokeByUserAsync("alice", T0.AddHours(2), "again", None));

        foreach (var id in new[] { live1.Id, live2.Id })
        {
            var s = await Store.Sessions.FindAsync(id, None);
            Assert.Equal(T0.AddHours(1), s!.RevokedAt);
            Assert.Equal("password changed", s.RevokedReason);
            Assert.Null(s.CurrentTokenHash);
        }
        var stillEarlier = await Store.Sessions.FindAsync(earlier.Id, None);
        Assert.Equal(T0, stillEarlier!.RevokedAt);
        Assert.Equal("earlier", stillEarlier.RevokedReason);
        Assert.Equivalent(bobs, await Store.Sessions.FindAsync(bobs.Id, None), strict: true);
    }

    [Fact]
    public async Task Revoking_by_client_revokes_only_that_clients_live_sessions()
    {
        var web1 = NewSession("alice", "web");
        var web2 = NewSession("bob", "web");
        var cli = NewSession("alice", "cli");
        foreach (var s in new[] { web1, web2, cli }) await Store.Sessions.CreateAsync(s, None);

        Assert.Equal(2, await Store.Sessions.RevokeByClientAsync("web", T0.AddHours(1), "client deleted", None));
        Assert.Equal(0, await Store.Sessions.RevokeByClientAsync("web", T0.AddHours(2), "again", None));

        Assert.All(await Store.Sessions.ListByClientAsync("web", None), s =>
        {
            Assert.Equal(T0.AddHours(1), s.RevokedAt);
            Assert.Equal("client deleted", s.RevokedReason);
            Assert.Null(s.CurrentTokenHash);
        });
        Assert.Equivalent(cli, await Store.Sessions.FindAsync(cli.Id, None), strict: true);
    }

    // ---- sessions: pruning -----------------------------------------------------------------------------------

    [Fact]
    public async Task Pruning_erases_retry_copies_whose_window_closed_and_keeps_those_still_open()
    {
        var closed = NewSession();
        var open = NewSession();
        foreach (var s in new[] { closed, open }) await Store.Sessions.CreateAsync(s, None);
        await Store.Sessions.TryRotateAsync(RotationOf(closed, closed.CurrentTokenHash!, Hash(), T0, Hash()), None);
        await Store.Sessions.TryRotateAsync(RotationOf(open, open.CurrentTokenHash!, Hash(), T0.AddSeconds(50), Hash()), None);

        var changed = await Store.Sessions.PruneAsync(T0.AddMinutes(1), TimeSpan.FromSeconds(30), T0.AddDays(-30), 100, None);

        Assert.Equal(1, changed);
        var afterClosed = await Store.Sessions.FindAsync(closed.Id, None);
        Assert.Null(afterClosed!.ProtectedCurrentToken);
        Assert.NotNull(afterClosed.CurrentTokenHash);
        Assert.NotNull(afterClosed.PreviousTokenHash);
        Assert.NotNull((await Store.Sessions.FindAsync(open.Id, None))!.ProtectedCurrentToken);
    }

    [Fact]
    public async Task Pruning_deletes_sessions_that_ended_before_the_cutoff_and_keeps_the_others()
    {
        var cutoff = T0;
        var revokedLongAgo = NewSession(createdAt: T0.AddDays(-40)) with { RevokedAt = T0.AddDays(-31), RevokedReason = "logout" };
        var idleLongAgo = NewSession(createdAt: T0.AddDays(-40)) with { IdleExpiresAt = T0.AddDays(-26) };
        var absoluteLongAgo = NewSession(createdAt: T0.AddDays(-100)) with { IdleExpiresAt = T0.AddDays(10), AbsoluteExpiresAt = T0.AddDays(-10) };
        var revokedRecently = NewSession(createdAt: T0.AddDays(-2)) with { RevokedAt = T0.AddHours(1), RevokedReason = "logout" };
        var idleRecently = NewSession(createdAt: T0.AddDays(-20)) with { IdleExpiresAt = T0.AddHours(2) };
        var live = NewSession(createdAt: T0.AddDays(-1)) with { IdleExpiresAt = T0.AddDays(13), AbsoluteExpiresAt = T0.AddDays(89) };
        foreach (var s in new[] { revokedLongAgo, idleLongAgo, absoluteLongAgo, revokedRecently, idleRecently, live })
            await Store.Sessions.CreateAsync(s, None);

        var changed = await Store.Sessions.PruneAsync(T0.AddDays(30), TimeSpan.FromSeconds(30), cutoff, 100, None);

        Assert.Equal(3, changed);
        foreach (var gone in new[] { revokedLongAgo, idleLongAgo, absoluteLongAgo })
            Assert.Null(await Store.Sessions.FindAsync(gone.Id, None));
        foreach (var kept in new[] { revokedRecently, idleRecently, live })
            Assert.Equivalent(kept, await Store.Sessions.FindAsync(kept.Id, None), strict: true);
        Assert.Equal(3, await Store.Sessions.CountAsync(None));
    }

    [Fact]
    public async Task Pruning_works_in_batches_of_at_most_the_given_size()
    {
        for (var i = 0; i < 5; i++)
            await Store.Sessions.CreateAsync(NewSession(createdAt: T0.AddDays(-100)) with { RevokedAt = T0.AddDays(-90), RevokedReason = "old" }, None);

        var batches = new List<int>();
        for (var n = -1; n != 0;)
        {
            n = await Store.Sessions.PruneAsync(T0, TimeSpan.FromSeconds(30), T0.AddDays(-30), 2, None);
            batches.Add(n);
        }

        Assert.Equal([2, 2, 1, 0], batches);
        Assert.Equal(0, await Store.Sessions.CountAsync(None));
    }

    [Fact]
    public async Task Pruning_deletes_authorization_codes_long_expired_and_keeps_fresh_ones()
    {
        var stale = NewCode() with { CreatedAt = T0.AddHours(-2), ExpiresAt = T0.AddHours(-1) };
        var fresh = NewCode();
        await Store.Codes.StoreAsync(stale, None);
        await Store.Codes.StoreAsync(fresh, None);

        Assert.Equal(1, await Store.Sessions.PruneAsync(T0, TimeSpan.FromSeconds(30), T0.AddDays(-30), 100, None));

        Assert.Null(await Store.Codes.TryRedeemAsync(stale.Hash, T0, None));
        Assert.NotNull(await Store.Codes.TryRedeemAsync(fresh.Hash, T0, None));
    }

    [Fact]
    public async Task Two_concurrent_pruners_both_succeed_and_together_delete_every_ended_session()
    {
        var ended = Enumerable.Range(0, 300)
            .Select(_ => NewSession(createdAt: T0.AddDays(-100)) with { RevokedAt = T0.AddDays(-60), RevokedReason = "old" });
        var live = Enumerable.Range(0, 20).Select(_ => NewSession()).ToList();
        foreach (var s in ended.Concat(live)) await Store.Sessions.CreateAsync(s, None);

        async Task<int> PruneUntilDone()
        {
            var total = 0;
            for (var n = -1; n != 0;)
            {
                n = await Store.Sessions.PruneAsync(T0, TimeSpan.FromSeconds(30), T0.AddDays(-30), 25, None);
                total += n;
            }
            return total;
        }

        var totals = await Task.WhenAll(Task.Run(PruneUntilDone), Task.Run(PruneUntilDone));

        Assert.Equal(300, totals.Sum());
        Assert.Equal(20, await Store.Sessions.CountAsync(None));
        foreach (var s in live) Assert.NotNull(await Store.Sessions.FindAsync(s.Id, None));
    }

    // ---- audit -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Appended_events_come_back_newest_first_with_every_field_and_an_increasing_id()
    {
        var first = NewEvent(T0, AuditTypes.LoginSucceeded, session: "sid-1");
        var second = NewEvent(T0.AddSeconds(1), AuditTypes.TokenIssued, session: "sid-1") with { IpAddress = null, Reason = null };
        await Store.Audit.AppendAsync(first, None);
        await Store.Audit.AppendAsync(second, None);

        var events = await Store.Audit.QueryAsync(new AuditQuery(), None);

        Assert.Equal(2, events.Count);
        Assert.True(events[0].Id > events[1].Id);
        Assert.Equivalent(second with { Id = events[0].Id }, events[0], strict: true);
        Assert.Equivalent(first with { Id = events[1].Id }, events[1], strict: true);
    }

    [Fact]
    public async Task Audit_queries_filter_by_user_client_session_and_type()
    {
        await Store.Audit.AppendAsync(NewEvent(T0, AuditTypes.LoginSucceeded, user: "alice", client: "web", session: "s1"), None);
        await Store.Audit.AppendAsync(NewEvent(T0, AuditTypes.TokenIssued, user: "alice", client: "cli", session: "s2"), None);
        await Store.Audit.AppendAsync(NewEvent(T0, AuditTypes.TokenIssued, user: "bob", client: "web", session: "s3"), None);
        await Store.Audit.AppendAsync(NewEvent(T0, AuditTypes.ClientChanged, user: null, client: "web", session: null), None);

        async Task<string[]> Sessions(AuditQuery q) =>
            (await Store.Audit.QueryAsync(q, None)).Select(e => e.SessionId ?? "-").ToArray();

        Assert.Equal(["s2", "s1"], await Sessions(new AuditQuery { UserId = "alice" }));
        Assert.Equal(["-", "s3", "s1"], await Sessions(new AuditQuery { ClientId = "web" }));
        Assert.Equal(["s3"], await Sessions(new AuditQuery { SessionId = "s3" }));
        Assert.Equal(["s3", "s2"], await Sessions(new AuditQuery { Type = AuditTypes.TokenIssued }));
        Assert.Equal(["s3"], await Sessions(new AuditQuery { ClientId = "web", Type = AuditTypes.TokenIssued }));
        Assert.Empty(await Sessions(new AuditQuery { UserId = "bob", ClientId = "cli" }));
        Assert.Equal(4, (await Store.Audit.QueryAsync(new AuditQuery(), None)).Count);
    }

    [Fact]
    public async Task Audit_queries_filter_by_time_from_inclusive_to_exclusive()
    {
        for (var i = 0; i < 5; i++) await Store.Audit.AppendAsync(NewEvent(T0.AddMinutes(i)), None);

        var window = await Store.Audit.QueryAsync(new AuditQuery { From = T0.AddMinutes(1), To = T0.AddMinutes(3) }, None);
        var since = await Store.Audit.QueryAsync(new AuditQuery { From = T0.AddMinutes(3) }, None);
        var until = await Store.Audit.QueryAsync(new AuditQuery { To = T0.AddMinutes(1) }, None);

        Assert.Equal([T0.AddMinutes(2), T0.AddMinutes(1)], window.Select(e => e.At));
        Assert.Equal([T0.AddMinutes(4), T0.AddMinutes(3)], since.Select(e => e.At));
        Assert.Equal([T0], until.Select(e => e.At));
    }

    [Fact]
    public async Task Audit_queries_page_backwards_from_the_newest_with_before_id_and_limit()
    {
        for (var i = 0; i < 7; i++) await Store.Audit.AppendAsync(NewEvent(T0.AddSeconds(i)), None);

        var pages = new List<DateTimeOffset[]>();
        long? before = null;
        while (true)
        {
            var page = await Store.Audit.QueryAsync(new AuditQuery { BeforeId = before, Limit = 3 }, None);
            if (page.Count == 0) break;
            pages.Add(page.Select(e => e.At).ToArray());
            before = page[^1].Id;
        }

        Assert.Equal(
            [
                [T0.AddSeconds(6), T0.AddSeconds(5), T0.AddSeconds(4)],
                [T0.AddSeconds(3), T0.AddSeconds(2), T0.AddSeconds(1)],
                [T0],
            ],
            pages);
    }

    [Fact]
    public async Task An_audit_limit_outside_one_to_a_thousand_is_clamped()
    {
        for (var i = 0; i < 3; i++) await Store.Audit.AppendAsync(NewEvent(T0.AddSeconds(i)), None);

        Assert.Single(await Store.Audit.QueryAsync(new AuditQuery { Limit = 0 }, None));
        Assert.Single(await Store.Audit.QueryAsync(new AuditQuery { Limit = -5 }, None));
        Assert.Equal(3, (await Store.Audit.QueryAsync(new AuditQuery { Limit = int.MaxValue }, None)).Count);
    }

    // ---- signing keys ----------------------------------------------------------------------------------------

    [Fact]
    public async Task Signing_keys_are_listed_in_activation_order_with_every_field_intact()
    {
        var next = NewKey("k-next", T0.AddDays(2));
        var current = NewKey("k-current", T0);
        var retired = NewKey("k-retired", T0.AddDays(-30), retiresAt: T0.AddDays(1));
        foreach (var k in new[] { next, current, retired }) await Store.Keys.AddAsync(k, None);

        var keys = await Store.Keys.ListAsync(None);

        Assert.Equal(["k-retired", "k-current", "k-next"], keys.Select(k => k.Kid));
        Assert.Equivalent(retired, keys[0], strict: true);
        Assert.Equivalent(current, keys[1], strict: true);
        Assert.Equal(next.ProtectedPrivateKey, keys[2].ProtectedPrivateKey);
    }

    [Fact]
    public async Task There_are_no_signing_keys_in_a_new_store()
    {
        Assert.Empty(await Store.Keys.ListAsync(None));
    }

    // ---- revocation feed -------------------------------------------------------------------------------------

    [Fact]
    public async Task Revocation_events_are_read_in_order_after_a_position_with_every_field()
    {
        var ended = Revocation(T0, session: "sid-1");
        var watermark = Revocation(T0.AddSeconds(1), user: "user-2", revokedBefore: T0.AddSeconds(1));
        var third = Revocation(T0.AddSeconds(2), session: "sid-3");
        var ids = new List<long>();
        foreach (var e in new[] { ended, watermark, third }) ids.Add(await Feed.AppendAsync(e, None));

        var all = await Feed.ReadAfterAsync(0, 100, None);
        var afterFirst = await Feed.ReadAfterAsync(ids[0], 1, None);

        Assert.True(ids[0] < ids[1] && ids[1] < ids[2]);
        Assert.Equal(ids, all.Select(e => e.Id));
        Assert.Equivalent(ended with { Id = ids[0] }, all[0], strict: true);
        Assert.Equivalent(watermark with { Id = ids[1] }, all[1], strict: true);
        Assert.Equal(ids[1], Assert.Single(afterFirst).Id);
        Assert.Empty(await Feed.ReadAfterAsync(ids[2], 100, None));
    }

    [Fact]
    public async Task A_clients_watermark_has_no_user_and_reads_back_as_written()
    {
        var clientWatermark = new RevocationEvent
        {
            At = T0, ClientId = "client-1", RevokedBefore = T0.AddSeconds(1), Reason = RevocationReasons.ClientSecretRotated,
        };

        var id = await Feed.AppendAsync(clientWatermark, None);

        var read = Assert.Single(await Feed.ReadAfterAsync(0, 100, None));
        Assert.Equivalent(clientWatermark with { Id = id }, read, strict: true);
        Assert.Null(read.UserId);
    }

    [Fact]
    public async Task Concurrent_revocations_get_distinct_ids_and_are_all_read()
    {
        var ids = await Task.WhenAll(Enumerable.Range(0, 40).Select(i =>
            Task.Run(() => Feed.AppendAsync(Revocation(T0.AddMilliseconds(i), session: $"sid-{i}"), None))));

        Assert.Equal(40, ids.Distinct().Count());
        Assert.Equal(ids.Order(), (await Feed.ReadAfterAsync(0, 1000, None)).Select(e => e.Id));
    }

    [Fact]
    public async Task A_receivers_position_starts_at_zero_and_only_moves_forward()
    {
        Assert.Equal(0, await Feed.GetCursorAsync("rs-1", None));

        await Feed.AckAsync("rs-1", 5, None);
        await Feed.AckAsync("rs-1", 3, None);
        await Feed.AckAsync("rs-2", 9, None);

        Assert.Equal(5, await Feed.GetCursorAsync("rs-1", None));
        Assert.Equal(9, await Feed.GetCursorAsync("rs-2", None));
        await Feed.AckAsync("rs-1", 8, None);
        Assert.Equal(8, await Feed.GetCursorAsync("rs-1", None));
    }

    [Fact]
    public async Task Pruning_the_feed_deletes_events_older_than_the_cutoff_in_bounded_batches()
    {
        for (var i = 0; i < 5; i++) await Feed.AppendAsync(Revocation(T0.AddMinutes(i)), None);

        Assert.Equal(2, await Feed.PruneAsync(T0.AddMinutes(3), 2, None));
        Assert.Equal(1, await Feed.PruneAsync(T0.AddMinutes(3), 2, None));
        Assert.Equal(0, await Feed.PruneAsync(T0.AddMinutes(3), 2, None));

        Assert.Equal([T0.AddMinutes(3), T0.AddMinutes(4)], (await Feed.ReadAfterAsync(0, 100, None)).Select(e => e.At));
    }

    // ---- DPoP replay cache -----------------------------------------------------------------------------------

    [Fact]
    public async Task A_replay_key_is_remembered_once_until_it_expires_and_may_be_used_again_after()
    {
        var key = Hash();

        Assert.True(await Replays.TryRememberAsync(key, T0, T0.AddMinutes(1), None));
        Assert.False(await Replays.TryRememberAsync(key, T0.AddSeconds(30), T0.AddMinutes(2), None));
        Assert.True(await Replays.TryRememberAsync(Hash(), T0.AddSeconds(30), T0.AddMinutes(2), None));

        Assert.True(await Replays.TryRememberAsync(key, T0.AddMinutes(1).AddMilliseconds(1), T0.AddMinutes(3), None));
        Assert.False(await Replays.TryRememberAsync(key, T0.AddMinutes(2), T0.AddMinutes(4), None));
    }

    [Fact]
    public async Task Of_concurrent_attempts_to_remember_one_key_exactly_one_succeeds()
    {
        var key = Hash();

        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ =>
            Task.Run(() => Replays.TryRememberAsync(key, T0, T0.AddMinutes(1), None))));

        Assert.Single(results, r => r);
    }

    [Fact]
    public async Task Pruning_forgets_expired_replay_keys_and_keeps_live_ones()
    {
        var expired = Hash();
        var live = Hash();
        await Replays.TryRememberAsync(expired, T0, T0.AddMinutes(1), None);
        await Replays.TryRememberAsync(live, T0, T0.AddMinutes(10), None);

        Assert.Equal(1, await Store.Sessions.PruneAsync(T0.AddMinutes(5), TimeSpan.FromSeconds(30), T0.AddDays(-30), 100, None));

        Assert.False(await Replays.TryRememberAsync(live, T0.AddMinutes(5), T0.AddMinutes(20), None));
    }

    // ---- schema ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Migrating_again_is_harmless_and_keeps_the_data()
    {
        await Store.Clients.SaveAsync(NewClient("web"), None);
        var session = NewSession();
        await Store.Sessions.CreateAsync(session, None);

        await Store.MigrateAsync(None);
        await Store.MigrateAsync(None);

        Assert.NotNull(await Store.Clients.FindAsync("web", None));
        Assert.Equivalent(session, await Store.Sessions.FindAsync(session.Id, None), strict: true);
        Assert.True(Store.SchemaVersion >= 1);
    }

    [Fact]
    public async Task Every_store_implementation_is_at_the_same_schema_version()
    {
        var dir = Directory.CreateTempSubdirectory("tessera-schema-");
        try
        {
            // Neither constructor touches a database, so no server is needed to compare the versions.
            await using var sqlite = new SqliteStore(new SqliteStoreOptions { Path = Path.Combine(dir.FullName, "unused.db") });
            await using var postgres = new PostgresStore("Host=127.0.0.1;Database=unused");

            Assert.Equal(sqlite.SchemaVersion, postgres.SchemaVersion);
            Assert.Equal(sqlite.SchemaVersion, Store.SchemaVersion);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
