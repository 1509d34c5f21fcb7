using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Crypto;
using Tessera.Core.Refresh;
using Tessera.Core.Sessions;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Storage.Sqlite;

namespace Tessera.Tests.Refresh;

public sealed class PolicyNarrowingTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), "tessera-narrow-" + Guid.NewGuid().ToString("N") + ".db");
    private SqliteStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = new SqliteStore(new SqliteStoreOptions { Path = _path });
        await _store.MigrateAsync(default);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        foreach (var f in new[] { _path, _path + "-wal", _path + "-shm" }) File.Delete(f);
    }

    [Fact]
    public async Task APolicy_NarrowsTheScopes_AndTheReasonIsAudited()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var events = new RefreshEvents { OnValidateRefresh = c => { c.Narrow(["openid", "offline_access"], "unfamiliar network"); return Task.CompletedTask; } };
        var service = new RefreshTokenService(_store, new SecretProtector(RandomNumberGenerator.GetBytes(32)), new TesseraOptions(), events, new NoRevocationPublisher(), time);
        var client = new Client { Id = "c", GrantTypes = [GrantTypes.RefreshToken], Scopes = ["openid", "offline_access", "api.read"] };
        var user = new User { Id = "u", Username = "u", CreatedAt = time.GetUtcNow() };
        await _store.Users.CreateAsync(user, default);
        var family = Handles.NewFamily();
        var token = Handles.NewRefreshToken(family);
        var now = time.GetUtcNow();
        await _store.Sessions.CreateAsync(new Session
        {
            Id = "s", UserId = "u", ClientId = "c", Scopes = ["openid", "offline_access", "api.read"], CreatedAt = now, AuthTime = now, LastUsedAt = now,
            IdleExpiresAt = now.AddDays(1), AbsoluteExpiresAt = now.AddDays(2), FamilyHash = Handles.Hash(family), CurrentTokenHash = Handles.Hash(token),
        }, default);

        var (success, failure) = await service.RefreshAsync(new RefreshRequest(client, token, null, "127.0.0.1", "test"), default);

        Assert.Null(failure);
        Assert.Equal(["openid", "offline_access"], success!.Scopes);
        var audit = await _store.Audit.QueryAsync(new AuditQuery { SessionId = "s", Type = AuditTypes.RefreshNarrowed }, default);
        Assert.Equal("policy: unfamiliar network", Assert.Single(audit).Reason);
    }
}
