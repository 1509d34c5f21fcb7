using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Crypto;
using Tessera.Core.Protocol;
using Tessera.Core.Refresh;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Server.Grants;
using Tessera.Storage.Sqlite;

namespace Tessera.Tests.Refresh;

/// <summary>A real SQLite store in a temporary folder; disposing it deletes the folder.</summary>
internal sealed class TempSqliteStore : IAsyncDisposable
{
    private readonly DirectoryInfo _dir;
    public SqliteStore Store { get; }

    private TempSqliteStore(DirectoryInfo dir, SqliteStore store)
    {
        _dir = dir;
        Store = store;
    }

    public static async Task<TempSqliteStore> CreateAsync()
    {
        var dir = Directory.CreateTempSubdirectory("tessera-refresh-");
        var store = new SqliteStore(new SqliteStoreOptions { Path = Path.Combine(dir.FullName, "tessera.db") });
        await store.MigrateAsync(CancellationToken.None);
        return new TempSqliteStore(dir, store);
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        try { _dir.Delete(recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Records what the state machine publishes to the revocation feed.</summary>
internal sealed class RecordingPublisher : IRevocationPublisher
{
    public ConcurrentQueue<(string SessionId, string Reason, DateTimeOffset At)> Sessions { get; } = new();

    public Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct)
    {
        Sessions.Enqueue((session.Id, reason, at));
        return Task.CompletedTask;
    }

    public Task UserRevokedBeforeAsync(string userId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct) => Task.CompletedTask;

    public Task ClientRevokedBeforeAsync(string clientId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct) => Task.CompletedTask;
}

/// <summary>
/// The refresh state machine wired the way the server wires it, over a real store, with a FakeTimeProvider.
/// Sessions start the way <see cref="AuthorizationCodeGrant"/> starts them.
/// </summary>
internal sealed class RefreshHarness
{
    /// <summary>Whole seconds, so the store's millisecond precision never moves a boundary.</summary>
    public static readonly DateTimeOffset T0 = new(2025, 6, 2, 8, 0, 0, TimeSpan.Zero);

    public const string FirefoxUa = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    public const string FirefoxUa2 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:129.0) Gecko/20100101 Firefox/129.0";
    public const string ChromeUa = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

    public ITesseraStore Store { get; }
    public FakeTimeProvider Time { get; }
    public TesseraOptions Options { get; } = new();
    public RefreshEvents Events { get; } = new();
    public RecordingPublisher Publisher { get; } = new();
    public SecretProtector Protector { get; } = new(RandomNumberGenerator.GetBytes(32));
    public RefreshTokenService Service { get; }

    public RefreshHarness(ITesseraStore store, FakeTimeProvider? time = null)
    {
        Store = store;
        Time = time ?? new FakeTimeProvider(T0);
        Service = new RefreshTokenService(store, Protector, Options, Events, Publisher, Time);
    }

    public DateTimeOffset Now => Time.GetUtcNow();

    public static Client PublicClient(string id, RefreshPolicy? policy = null) => new()
    {
        Id = id,
        RedirectUris = ["https://app.example.com/callback"],
        GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken],
        Scopes = ["openid", "profile", "email", "offline_access", "api.read", "api.write"],
        Resources = ["https://api.example.com"],
        FirstParty = true,
        Refresh = policy ?? new RefreshPolicy(),
    };

    public static Client ConfidentialClient(string id, RefreshPolicy? policy = null) =>
        PublicClient(id, policy) with { SecretHash = Handles.Hash(Handles.NewClientSecret()) };

    public async Task<Client> AddClientAsync(Client client)
    {
        await Store.Clients.SaveAsync(client, default);
        return client;
    }

    public async Task<User> AddUserAsync(string? username = null, IReadOnlyList<string>? allowedScopes = null)
    {
        var user = new User
        {
            Id = Handles.NewId(), Username = username ?? "u-" + Guid.NewGuid().ToString("N"), AllowedScopes = allowedScopes, CreatedAt = Now,
        };
        Assert.True(await Store.Users.CreateAsync(user, default));
        return user;
    }

    public async Task<User> UpdateUserAsync(User user, Func<User, User> change)
    {
        var current = await Store.Users.FindByIdAsync(user.Id, default) ?? throw new InvalidOperationException("user gone");
        var changed = change(current);
        await Store.Users.SaveAsync(changed, default);
        return changed;
    }

    /// <summary>What <see cref="AuthorizationCodeGrant"/> does after a successful code redemption with offline_access.</summary>
    public async Task<(Session Session, string RefreshToken)> StartSessionAsync(
        Client client, User user, IReadOnlyList<string>? scopes = null, string? userAgent = FirefoxUa, string? ip = "203.0.113.7")
    {
        var now = Now;
        var absolute = now + (client.Refresh.AbsoluteLifetime ?? Options.RefreshAbsoluteLifetime);
        var idle = now + (client.Refresh.IdleLifetime ?? Options.RefreshIdleLifetime);
        var family = Handles.NewFamily();
        var token = Handles.NewRefreshToken(family);
        var session = new Session
        {
            Id = Handles.NewId(),
            UserId = user.Id,
            ClientId = client.Id,
            Scopes = scopes ?? ["openid", "offline_access", "api.read", "api.write"],
            CreatedAt = now,
            AuthTime = now,
            LastUsedAt = now,
            IdleExpiresAt = idle < absolute ? idle : absolute,
            AbsoluteExpiresAt = absolute,
            UserAgent = userAgent,
            IpAddress = ip,
            FamilyHash = Handles.Hash(family),
            CurrentTokenHash = Handles.Hash(token),
        };
        await Store.Sessions.CreateAsync(session, default);
        await Store.Audit.AppendAsync(TokenResponder.Issued(session, client.Id, ip, now, "authorization_code with refresh token"), default);
        return (session, token);
    }

    public Task<(RefreshSuccess? Success, OAuthFailure? Failure)> RefreshAsync(
        Client client, string token, IReadOnlyList<string>? scopes = null, string? userAgent = FirefoxUa, string? ip = "203.0.113.7") =>
        Service.RefreshAsync(new RefreshRequest(client, token, scopes, ip, userAgent), default);

    public async Task<RefreshSuccess> RefreshOkAsync(Client client, string token, IReadOnlyList<string>? scopes = null, string? userAgent = FirefoxUa, string? ip = "203.0.113.7")
    {
        var (success, failure) = await RefreshAsync(client, token, scopes, userAgent, ip);
        Assert.True(failure is null, $"refresh refused: {failure?.Error} {failure?.Description} {failure?.AuditReason}");
        return success!;
    }

    public async Task<OAuthFailure> RefreshFailsAsync(Client client, string token, IReadOnlyList<string>? scopes = null, string? userAgent = FirefoxUa, string? ip = "203.0.113.7")
    {
        var (success, failure) = await RefreshAsync(client, token, scopes, userAgent, ip);
        Assert.True(success is null, "refresh unexpectedly succeeded");
        return failure!;
    }

    public async Task<Session> SessionAsync(string id) => await Store.Sessions.FindAsync(id, default) ?? throw new InvalidOperationException("session gone");

    public Task<IReadOnlyList<AuditEvent>> AuditAsync(string sessionId, string? type = null) =>
        Store.Audit.QueryAsync(new AuditQuery { SessionId = sessionId, Type = type, Limit = 1000 }, default);
}

/// <summary>
/// Issue 3, "Shown by": unit tests of the state machine with FakeTimeProvider for every lifetime edge, over a real SQLite file.
/// </summary>
public sealed class RefreshStateMachineTests : IAsyncLifetime
{
    private TempSqliteStore _db = null!;
    private RefreshHarness _h = null!;

    public async Task InitializeAsync()
    {
        _db = await TempSqliteStore.CreateAsync();
        _h = new RefreshHarness(_db.Store);
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);

    private async Task<(Client Client, User User, Session Session, string Token)> StartAsync(
        Client? client = null, IReadOnlyList<string>? scopes = null, IReadOnlyList<string>? allowedScopes = null, string? userAgent = RefreshHarness.FirefoxUa)
    {
        client = await _h.AddClientAsync(client ?? RefreshHarness.PublicClient("spa-" + Guid.NewGuid().ToString("N")[..8]));
        var user = await _h.AddUserAsync(allowedScopes: allowedScopes);
        var (session, token) = await _h.StartSessionAsync(client, user, scopes, userAgent);
        return (client, user, session, token);
    }

    private async Task AssertRefusedAuditedAsync(string sessionId, string reasonFragment)
    {
        var refused = await _h.AuditAsync(sessionId, AuditTypes.RefreshRefused);
        Assert.Contains(refused, e => e.Reason is not null && e.Reason.Contains(reasonFragment, StringComparison.Ordinal));
    }

    // ---- rotation basics ---------------------------------------------------------------------------------------

    [Fact]
    public async Task Refresh_RotatesTheToken_SlidesIdle_AndRecordsDeviceFacts()
    {
        var (client, _, session, t0) = await StartAsync();
        _h.Time.Advance(TimeSpan.FromHours(5));

        var r = await _h.RefreshOkAsync(client, t0, userAgent: RefreshHarness.FirefoxUa2, ip: "198.51.100.9");

        Assert.NotEqual(t0, r.RefreshToken);
        Assert.True(Handles.TryGetFamily(r.RefreshToken, out var family) && Handles.TryGetFamily(t0, out var family0) && family == family0,
            "the successor carries the session's family part");
        Assert.False(r.Replayed);
        Assert.Equal(session.Scopes, r.Scopes);
        Assert.Equal(TimeSpan.FromDays(14), r.RefreshExpiresIn);
        var stored = await _h.SessionAsync(session.Id);
        Assert.Equal(_h.Now + TimeSpan.FromDays(14), stored.IdleExpiresAt);
        Assert.Equal(_h.Now, stored.LastUsedAt);
        Assert.Equal("198.51.100.9", stored.IpAddress);
        Assert.Equal(RefreshHarness.FirefoxUa2, stored.UserAgent);
        Assert.True(Handles.HashEquals(Handles.Hash(r.RefreshToken), stored.CurrentTokenHash));
        Assert.True(Handles.HashEquals(Handles.Hash(t0), stored.PreviousTokenHash));
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.Refreshed));
    }

    [Fact]
    public async Task UnknownOrMalformedToken_IsInvalidGrant()
    {
        var (client, _, _, _) = await StartAsync();
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, "garbage")).Error);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, Handles.NewRefreshToken(Handles.NewFamily()))).Error);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, "")).Error);
    }

    // ---- idle expiry -------------------------------------------------------------------------------------------

    [Fact]
    public async Task IdleExpiry_ExactlyAtTheBoundary_IsRefused()
    {
        var (client, _, session, t0) = await StartAsync();
        _h.Time.SetUtcNow(session.IdleExpiresAt);

        var failure = await _h.RefreshFailsAsync(client, t0);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        await AssertRefusedAuditedAsync(session.Id, "idle-expired");
        var stored = await _h.SessionAsync(session.Id);
        Assert.Null(stored.RevokedAt);
        Assert.True(Handles.HashEquals(Handles.Hash(t0), stored.CurrentTokenHash), "a refused refresh consumes nothing");
    }

    [Fact]
    public async Task IdleExpiry_OneTickBeforeTheBoundary_IsAccepted_AndSlidesTheWindow()
    {
        var (client, _, session, t0) = await StartAsync();
        _h.Time.SetUtcNow(session.IdleExpiresAt - Tick);

        var r = await _h.RefreshOkAsync(client, t0);

        var stored = await _h.SessionAsync(session.Id);
        Assert.True(stored.IdleExpiresAt > session.IdleExpiresAt);
        Assert.True(r.RefreshExpiresIn > TimeSpan.FromDays(13));
        // The slid window has its own boundary: still refused exactly there.
        _h.Time.SetUtcNow(stored.IdleExpiresAt);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, r.RefreshToken)).Error);
    }

    [Fact]
    public async Task IdleExpiry_PerClientIdleLifetime_IsHonoured()
    {
        var client = RefreshHarness.PublicClient("short-idle", new RefreshPolicy { IdleLifetime = TimeSpan.FromHours(1) });
        var (c, _, session, t0) = await StartAsync(client);
        Assert.Equal(RefreshHarness.T0 + TimeSpan.FromHours(1), session.IdleExpiresAt);

        _h.Time.Advance(TimeSpan.FromMinutes(59));
        var r = await _h.RefreshOkAsync(c, t0);
        Assert.Equal(TimeSpan.FromHours(1), r.RefreshExpiresIn);

        _h.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(c, r.RefreshToken)).Error);
    }

    // ---- absolute expiry ---------------------------------------------------------------------------------------

    [Fact]
    public async Task AbsoluteCap_RotationNeverExtendsPastTheAbsoluteExpiry()
    {
        var client = RefreshHarness.PublicClient("capped", new RefreshPolicy { IdleLifetime = TimeSpan.FromDays(14), AbsoluteLifetime = TimeSpan.FromDays(20) });
        var (c, _, session, token) = await StartAsync(client);
        var absolute = RefreshHarness.T0 + TimeSpan.FromDays(20);
        Assert.Equal(absolute, session.AbsoluteExpiresAt);

        // Refresh every 3 days: the idle expiry slides until it hits the cap and then stays there.
        for (var day = 3; day < 20; day += 3)
        {
            _h.Time.SetUtcNow(RefreshHarness.T0 + TimeSpan.FromDays(day));
            var r = await _h.RefreshOkAsync(c, token);
            token = r.RefreshToken;
            var stored = await _h.SessionAsync(session.Id);
            Assert.True(stored.IdleExpiresAt <= absolute, $"day {day}: idle {stored.IdleExpiresAt} past absolute {absolute}");
            Assert.Equal(absolute, stored.AbsoluteExpiresAt);
            Assert.True(r.RefreshExpiresIn <= absolute - _h.Now, $"day {day}: refresh_expires_in {r.RefreshExpiresIn} beyond the absolute expiry");
            Assert.Equal((_h.Now + TimeSpan.FromDays(14) < absolute ? _h.Now + TimeSpan.FromDays(14) : absolute) - _h.Now, r.RefreshExpiresIn);
        }

        _h.Time.SetUtcNow(absolute - Tick);
        var last = await _h.RefreshOkAsync(c, token);
        Assert.Equal(Tick, last.RefreshExpiresIn);
        Assert.Equal(absolute, (await _h.SessionAsync(session.Id)).IdleExpiresAt);

        _h.Time.SetUtcNow(absolute);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(c, last.RefreshToken)).Error);
        await AssertRefusedAuditedAsync(session.Id, "absolute");
        Assert.Null((await _h.SessionAsync(session.Id)).RevokedAt);
    }

    [Fact]
    public async Task AbsoluteShorterThanIdle_CapsTheFirstIdleExpiryToo()
    {
        var client = RefreshHarness.PublicClient("short-abs", new RefreshPolicy { IdleLifetime = TimeSpan.FromDays(14), AbsoluteLifetime = TimeSpan.FromDays(2) });
        var (c, _, session, t0) = await StartAsync(client);
        Assert.Equal(session.AbsoluteExpiresAt, session.IdleExpiresAt);

        _h.Time.Advance(TimeSpan.FromDays(1));
        var r = await _h.RefreshOkAsync(c, t0);
        Assert.Equal(TimeSpan.FromDays(1), r.RefreshExpiresIn);
        Assert.Equal(session.AbsoluteExpiresAt, (await _h.SessionAsync(session.Id)).IdleExpiresAt);
    }

    // ---- retry window and reuse --------------------------------------------------------------------------------

    [Fact]
    public async Task RetryWindow_AtExactly30Seconds_ReturnsTheSameSuccessor()
    {
        var (client, _, session, t0) = await StartAsync();
        var first = await _h.RefreshOkAsync(client, t0);

        _h.Time.Advance(TimeSpan.FromSeconds(30));
        var replay = await _h.RefreshOkAsync(client, t0);

        Assert.True(replay.Replayed);
        Assert.Equal(first.RefreshToken, replay.RefreshToken);
        Assert.Equal(first.Scopes, replay.Scopes);
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.Refreshed));
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.RefreshRetried));
        // The replay did not fork the family: the successor is still the one current token.
        var next = await _h.RefreshOkAsync(client, first.RefreshToken);
        Assert.False(next.Replayed);
    }

    [Fact]
    public async Task RetryWindow_OneTickAfter30Seconds_IsReuse_AndKillsTheSession()
    {
        var (client, _, session, t0) = await StartAsync();
        var first = await _h.RefreshOkAsync(client, t0);

        _h.Time.Advance(TimeSpan.FromSeconds(30) + Tick);
        var failure = await _h.RefreshFailsAsync(client, t0);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        var stored = await _h.SessionAsync(session.Id);
        Assert.NotNull(stored.RevokedAt);
        Assert.Equal(RevocationReasons.Reuse, stored.RevokedReason);
        Assert.Null(stored.CurrentTokenHash);
        Assert.Null(stored.ProtectedCurrentToken);
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.ReuseDetected));
        Assert.Contains(_h.Publisher.Sessions, p => p.SessionId == session.Id && p.Reason == RevocationReasons.Reuse);
        // The successor and everything after it stop working.
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, first.RefreshToken)).Error);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t0)).Error);
    }

    [Fact]
    public async Task RetryWindow_PerClientWindow_IsHonoured()
    {
        var client = RefreshHarness.PublicClient("short-window", new RefreshPolicy { RetryWindow = TimeSpan.FromSeconds(5) });
        var (c, _, session, t0) = await StartAsync(client);
        var first = await _h.RefreshOkAsync(c, t0);

        _h.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(first.RefreshToken, (await _h.RefreshOkAsync(c, t0)).RefreshToken);
        _h.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(c, t0)).Error);
        Assert.Equal(RevocationReasons.Reuse, (await _h.SessionAsync(session.Id)).RevokedReason);
    }

    [Fact]
    public async Task SuccessorUsed_ThenOldTokenInsideTheWindow_IsReuse_RevokesTheSession_AndIsAudited()
    {
        var (client, _, session, t0) = await StartAsync();
        var t1 = (await _h.RefreshOkAsync(client, t0)).RefreshToken;
        _h.Time.Advance(TimeSpan.FromSeconds(2));
        var t2 = (await _h.RefreshOkAsync(client, t1)).RefreshToken;
        _h.Time.Advance(TimeSpan.FromSeconds(2));

        // t0 was consumed 4 s ago, but its successor t1 was used: no more retry, this is theft or a bug.
        var failure = await _h.RefreshFailsAsync(client, t0);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        var stored = await _h.SessionAsync(session.Id);
        Assert.Equal(RevocationReasons.Reuse, stored.RevokedReason);
        var reuse = Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.ReuseDetected));
        Assert.Equal(client.Id, reuse.ClientId);
        Assert.False(string.IsNullOrEmpty(reuse.Reason));
        Assert.Single(_h.Publisher.Sessions, p => p.SessionId == session.Id);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t2)).Error);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t1)).Error);
        // Revoking happens once: later presentations are refusals, not new reuse events.
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.ReuseDetected));
    }

    [Fact]
    public async Task PreviousToken_AfterSuccessorUsed_IsReuse_EvenThoughItWasJustRotated()
    {
        var (client, _, session, t0) = await StartAsync();
        var t1 = (await _h.RefreshOkAsync(client, t0)).RefreshToken;
        var t2 = (await _h.RefreshOkAsync(client, t1)).RefreshToken;
        // t1 is now "previous" with an open window: the same t2 comes back.
        Assert.Equal(t2, (await _h.RefreshOkAsync(client, t1)).RefreshToken);
        var t3 = (await _h.RefreshOkAsync(client, t2)).RefreshToken;
        Assert.NotEqual(t2, t3);
        // t1 is two generations old now.
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t1)).Error);
        Assert.Equal(RevocationReasons.Reuse, (await _h.SessionAsync(session.Id)).RevokedReason);
    }

    [Fact]
    public async Task ConcurrentRefreshes_OfOneToken_YieldOneSuccessor()
    {
        var (client, _, session, t0) = await StartAsync();
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() => _h.RefreshOkAsync(client, t0))));
        Assert.Single(results.Select(r => r.RefreshToken).Distinct());
        Assert.Single(results, r => !r.Replayed);
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.Refreshed));
    }

    // ---- session and user state --------------------------------------------------------------------------------

    [Fact]
    public async Task RevokedSession_IsInvalidGrant_ForTheCurrentAndThePreviousToken()
    {
        var (client, _, session, t0) = await StartAsync();
        var t1 = (await _h.RefreshOkAsync(client, t0)).RefreshToken;
        Assert.True(await _h.Store.Sessions.RevokeAsync(session.Id, _h.Now, RevocationReasons.UserRevoked, default));

        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t1)).Error);
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t0)).Error);
        await AssertRefusedAuditedAsync(session.Id, "session revoked");
        Assert.Equal(RevocationReasons.UserRevoked, (await _h.SessionAsync(session.Id)).RevokedReason);
    }

    public static TheoryData<string> AccountStates => new() { "disabled", "locked", "deleted" };

    [Theory]
    [MemberData(nameof(AccountStates))]
    public async Task UserDisabledLockedOrDeleted_IsInvalidGrant_AndConsumesNothing(string state)
    {
        var (client, user, session, t0) = await StartAsync();
        switch (state)
        {
            case "disabled": await _h.UpdateUserAsync(user, u => u with { Disabled = true }); break;
            case "locked": await _h.UpdateUserAsync(user, u => u with { LockedUntil = _h.Now + TimeSpan.FromHours(1) }); break;
            default: Assert.True(await _h.Store.Users.DeleteAsync(user.Id, default)); break;
        }

        var failure = await _h.RefreshFailsAsync(client, t0);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        await AssertRefusedAuditedAsync(session.Id, state switch { "disabled" => "user disabled", "locked" => "user locked", _ => "no longer exists" });
        var stored = await _h.SessionAsync(session.Id);
        Assert.True(Handles.HashEquals(Handles.Hash(t0), stored.CurrentTokenHash));

        if (state == "disabled")
        {
            await _h.UpdateUserAsync(user, u => u with { Disabled = false });
            await _h.RefreshOkAsync(client, t0);
        }
        else if (state == "locked")
        {
            _h.Time.Advance(TimeSpan.FromHours(1));
            await _h.RefreshOkAsync(client, t0);
        }
    }

    [Fact]
    public async Task RevokedBeforeWatermark_VoidsOlderSessions_NotNewerOnes()
    {
        var (client, user, old, oldToken) = await StartAsync();
        _h.Time.Advance(TimeSpan.FromMinutes(10));
        await _h.UpdateUserAsync(user, u => u with { RevokedBefore = _h.Now });
        var (atWatermark, atWatermarkToken) = await _h.StartSessionAsync(client, user);
        _h.Time.Advance(TimeSpan.FromMinutes(1));
        var (newer, newerToken) = await _h.StartSessionAsync(client, user);

        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, oldToken)).Error);
        await AssertRefusedAuditedAsync(old.Id, "revoked-before");
        await _h.RefreshOkAsync(client, atWatermarkToken);
        await _h.RefreshOkAsync(client, newerToken);
        Assert.NotEqual(atWatermark.Id, newer.Id);
    }

    // ---- client binding ----------------------------------------------------------------------------------------

    [Fact]
    public async Task ClientMismatch_IsInvalidGrant_AndDoesNotRevokeOrConsume()
    {
        var (client, _, session, t0) = await StartAsync();
        var other = await _h.AddClientAsync(RefreshHarness.PublicClient("other-" + Guid.NewGuid().ToString("N")[..8]));
        var t1 = (await _h.RefreshOkAsync(client, t0)).RefreshToken;

        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(other, t1)).Error);
        // Not even the just-rotated token from another client counts as reuse.
        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(other, t0)).Error);

        var stored = await _h.SessionAsync(session.Id);
        Assert.Null(stored.RevokedAt);
        Assert.True(Handles.HashEquals(Handles.Hash(t1), stored.CurrentTokenHash));
        Assert.Empty(await _h.AuditAsync(session.Id, AuditTypes.ReuseDetected));
        await AssertRefusedAuditedAsync(session.Id, "another client");
        await _h.RefreshOkAsync(client, t1);
    }

    // ---- scopes ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task ScopeWidening_IsInvalidScope_IsAudited_AndDoesNotConsumeTheToken()
    {
        var (client, _, session, t0) = await StartAsync(scopes: ["openid", "offline_access", "api.read"]);

        var failure = await _h.RefreshFailsAsync(client, t0, ["openid", "api.read", "api.write"]);

        Assert.Equal(OAuthErrors.InvalidScope, failure.Error);
        var stored = await _h.SessionAsync(session.Id);
        Assert.True(Handles.HashEquals(Handles.Hash(t0), stored.CurrentTokenHash));
        Assert.Null(stored.PreviousTokenHash);
        Assert.Null(stored.RevokedAt);
        Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.RefreshRefused));
        var r = await _h.RefreshOkAsync(client, t0);
        Assert.Equal(new[] { "openid", "offline_access", "api.read" }, r.Scopes);
    }

    [Fact]
    public async Task Downscoping_GivesANarrowerToken_AndTheSessionKeepsItsScopes()
    {
        var (client, _, session, t0) = await StartAsync(scopes: ["openid", "offline_access", "api.read", "api.write"]);

        var narrow = await _h.RefreshOkAsync(client, t0, ["api.read"]);
        Assert.Equal(new[] { "api.read" }, narrow.Scopes);
        Assert.Equal(session.Scopes, (await _h.SessionAsync(session.Id)).Scopes);

        var full = await _h.RefreshOkAsync(client, narrow.RefreshToken);
        Assert.Equal(session.Scopes, full.Scopes);
    }

    [Fact]
    public async Task PermissionsNarrowed_GiveANarrowerToken_AndWideningThemAgainRestoresTheGrant()
    {
        var (client, user, session, t0) = await StartAsync(scopes: ["openid", "offline_access", "api.read", "api.write"]);

        user = await _h.UpdateUserAsync(user, u => u with { AllowedScopes = ["api.read"] });
        var narrowed = await _h.RefreshOkAsync(client, t0);
        Assert.Equal(new[] { "openid", "offline_access", "api.read" }, narrowed.Scopes);
        Assert.Equal(session.Scopes, (await _h.SessionAsync(session.Id)).Scopes);

        await _h.UpdateUserAsync(user, u => u with { AllowedScopes = null });
        var restored = await _h.RefreshOkAsync(client, narrowed.RefreshToken);
        Assert.Equal(session.Scopes, restored.Scopes);
    }

    [Fact]
    public async Task ClientScopesNarrowed_DropTheScopeFromTheNewToken()
    {
        var (client, _, _, t0) = await StartAsync(scopes: ["openid", "offline_access", "api.read", "api.write"]);
        client = await _h.AddClientAsync(client with { Scopes = ["openid", "offline_access", "api.read"] });

        var r = await _h.RefreshOkAsync(client, t0);

        Assert.Equal(new[] { "openid", "offline_access", "api.read" }, r.Scopes);
    }

    [Fact]
    public async Task PermissionsWithNothingLeft_IsInvalidGrant_AndConsumesNothing()
    {
        var (client, user, session, t0) = await StartAsync(scopes: ["offline_access", "api.read", "api.write"]);
        await _h.UpdateUserAsync(user, u => u with { AllowedScopes = [] });

        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t0)).Error);
        await AssertRefusedAuditedAsync(session.Id, "no requested scope");
        Assert.True(Handles.HashEquals(Handles.Hash(t0), (await _h.SessionAsync(session.Id)).CurrentTokenHash));
        Assert.Null((await _h.SessionAsync(session.Id)).RevokedAt);
    }

    // ---- rotation off ------------------------------------------------------------------------------------------

    [Fact]
    public async Task RotationOff_ForAConfidentialClient_ReturnsTheSameToken_SlidesIdle_AndRecordsTheDevice()
    {
        var client = RefreshHarness.ConfidentialClient("backend", new RefreshPolicy { Rotate = false });
        var (c, _, session, t0) = await StartAsync(client);

        _h.Time.Advance(TimeSpan.FromDays(3));
        var r1 = await _h.RefreshOkAsync(c, t0, userAgent: RefreshHarness.FirefoxUa2, ip: "198.51.100.20");
        Assert.Equal(t0, r1.RefreshToken);
        Assert.Equal(TimeSpan.FromDays(14), r1.RefreshExpiresIn);
        var stored = await _h.SessionAsync(session.Id);
        Assert.Equal(_h.Now + TimeSpan.FromDays(14), stored.IdleExpiresAt);
        Assert.Equal(_h.Now, stored.LastUsedAt);
        Assert.True(Handles.HashEquals(Handles.Hash(t0), stored.CurrentTokenHash));
        Assert.Null(stored.PreviousTokenHash);
        // Issue 3: "each refresh records IP and user agent on the session".
        Assert.Equal("198.51.100.20", stored.IpAddress);
        Assert.Equal(RefreshHarness.FirefoxUa2, stored.UserAgent);

        // Thirteen days later (inside the slid window, past the original one) the same token still works.
        _h.Time.Advance(TimeSpan.FromDays(13));
        Assert.True(_h.Now > session.IdleExpiresAt);
        Assert.Equal(t0, (await _h.RefreshOkAsync(c, t0)).RefreshToken);
        Assert.Equal(2, (await _h.AuditAsync(session.Id, AuditTypes.Refreshed)).Count);
    }

    [Fact]
    public async Task RotationOff_IsIgnoredForAPublicClient()
    {
        var client = RefreshHarness.PublicClient("spa-norotate", new RefreshPolicy { Rotate = false });
        var (c, _, _, t0) = await StartAsync(client);

        var r = await _h.RefreshOkAsync(c, t0);

        Assert.NotEqual(t0, r.RefreshToken);
    }

    // ---- rate limit --------------------------------------------------------------------------------------------

    [Fact]
    public async Task RateLimit_RefusesTheBurstWith429_AndDoesNotConsumeTheToken()
    {
        var client = RefreshHarness.PublicClient("limited", new RefreshPolicy { MaxRefreshesPerMinute = 2 });
        var (c, _, session, t0) = await StartAsync(client);
        var t1 = (await _h.RefreshOkAsync(c, t0)).RefreshToken;
        _h.Time.Advance(TimeSpan.FromSeconds(10));
        var t2 = (await _h.RefreshOkAsync(c, t1)).RefreshToken;
        _h.Time.Advance(TimeSpan.FromSeconds(10));

        var failure = await _h.RefreshFailsAsync(c, t2);

        Assert.Equal(429, failure.Status);
        Assert.Equal(OAuthErrors.InvalidRequest, failure.Error);
        var stored = await _h.SessionAsync(session.Id);
        Assert.True(Handles.HashEquals(Handles.Hash(t2), stored.CurrentTokenHash), "the refused refresh must not consume the token");
        Assert.Null(stored.RevokedAt);
        await AssertRefusedAuditedAsync(session.Id, "rate limit");

        // A replay inside the retry window is not a new refresh; it still works.
        Assert.Equal(t2, (await _h.RefreshOkAsync(c, t1)).RefreshToken);

        // Once the minute has passed, the same token refreshes.
        _h.Time.Advance(TimeSpan.FromSeconds(41));
        var t3 = await _h.RefreshOkAsync(c, t2);
        Assert.NotEqual(t2, t3.RefreshToken);
    }

    // ---- policy hook -------------------------------------------------------------------------------------------

    [Fact]
    public async Task UserAgentFamilyPolicy_RefusesAChangedFamily_WithTheReasonAudited()
    {
        _h.Events.OnValidateRefresh = UserAgentFamilyPolicy.Validate;
        var (client, _, session, t0) = await StartAsync(userAgent: RefreshHarness.FirefoxUa);

        var failure = await _h.RefreshFailsAsync(client, t0, userAgent: RefreshHarness.ChromeUa);

        Assert.Equal(OAuthErrors.InvalidGrant, failure.Error);
        var refused = Assert.Single(await _h.AuditAsync(session.Id, AuditTypes.RefreshRefused));
        Assert.Contains("policy", refused.Reason);
        Assert.Contains("Firefox", refused.Reason);
        Assert.Contains("Chrome", refused.Reason);
        var stored = await _h.SessionAsync(session.Id);
        Assert.True(Handles.HashEquals(Handles.Hash(t0), stored.CurrentTokenHash));
        Assert.Null(stored.RevokedAt);
    }

    [Fact]
    public async Task UserAgentFamilyPolicy_AllowsTheSameFamily()
    {
        _h.Events.OnValidateRefresh = UserAgentFamilyPolicy.Validate;
        var (client, _, _, t0) = await StartAsync(userAgent: RefreshHarness.FirefoxUa);

        var r = await _h.RefreshOkAsync(client, t0, userAgent: RefreshHarness.FirefoxUa2);
        await _h.RefreshOkAsync(client, r.RefreshToken, userAgent: RefreshHarness.FirefoxUa);
    }

    [Fact]
    public async Task Policy_CanNarrowScopes_ButNeverAddThem()
    {
        _h.Events.OnValidateRefresh = ctx =>
        {
            ctx.Scopes = ctx.Scopes.Where(s => s != "api.write").Append("admin").ToList();
            return Task.CompletedTask;
        };
        var (client, _, session, t0) = await StartAsync(scopes: ["openid", "offline_access", "api.read", "api.write"]);

        var r = await _h.RefreshOkAsync(client, t0);

        Assert.Equal(new[] { "openid", "offline_access", "api.read" }, r.Scopes);
        Assert.Equal(session.Scopes, (await _h.SessionAsync(session.Id)).Scopes);
    }

    [Fact]
    public async Task Policy_RemovingEveryScope_IsInvalidGrant()
    {
        _h.Events.OnValidateRefresh = ctx =>
        {
            ctx.Scopes = [];
            return Task.CompletedTask;
        };
        var (client, _, session, t0) = await StartAsync();

        Assert.Equal(OAuthErrors.InvalidGrant, (await _h.RefreshFailsAsync(client, t0)).Error);
        await AssertRefusedAuditedAsync(session.Id, "policy");
        Assert.True(Handles.HashEquals(Handles.Hash(t0), (await _h.SessionAsync(session.Id)).CurrentTokenHash));
    }
}
