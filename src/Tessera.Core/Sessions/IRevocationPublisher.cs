namespace Tessera.Core.Sessions;

/// <summary>Where revocations go so resource servers learn of them (the revocation feed). Called after the store committed.</summary>
public interface IRevocationPublisher
{
    Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct);

    /// <summary>Every session of the user that started before <paramref name="before"/> is void.</summary>
    Task UserRevokedBeforeAsync(string userId, DateTimeOffset before, string reason, CancellationToken ct);
}

/// <summary>Publishes to the store's feed.</summary>
public sealed class FeedRevocationPublisher(IRevocationFeedStore feed) : IRevocationPublisher
{
    public Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct) =>
        feed.AppendAsync(new RevocationEvent { At = at, UserId = session.UserId, SessionId = session.Id, ClientId = session.ClientId, Reason = reason }, ct);

    public Task UserRevokedBeforeAsync(string userId, DateTimeOffset before, string reason, CancellationToken ct) =>
        feed.AppendAsync(new RevocationEvent { At = before, UserId = userId, RevokedBefore = before, Reason = reason }, ct);
}

/// <summary>Publishes nowhere; for unit tests of the state machine.</summary>
public sealed class NoRevocationPublisher : IRevocationPublisher
{
    public Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct) => Task.CompletedTask;

    public Task UserRevokedBeforeAsync(string userId, DateTimeOffset before, string reason, CancellationToken ct) => Task.CompletedTask;
}
