namespace Tessera.Core.Sessions;

/// <summary>Where revocations go so resource servers learn of them (the revocation feed). Called after the store committed.</summary>
public interface IRevocationPublisher
{
    Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct);

    /// <summary>
    /// Every access token of the user issued before <paramref name="before"/> (whole seconds: <c>iat</c> &lt; its second)
    /// is void. When the change also ended sessions, their own events cover the tokens of <paramref name="before"/>'s
    /// second; see <see cref="UserSessionsRevocation"/> and <see cref="RevocationTimes"/>.
    /// </summary>
    Task UserRevokedBeforeAsync(string userId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct);

    /// <summary>Every access token the client obtained before <paramref name="before"/> (whole seconds) is void, whoever it was issued for.</summary>
    Task ClientRevokedBeforeAsync(string clientId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct);
}

/// <summary>Publishes to the store's feed.</summary>
public sealed class FeedRevocationPublisher(IRevocationFeedStore feed) : IRevocationPublisher
{
    public Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct) =>
        feed.AppendAsync(new RevocationEvent { At = at, UserId = session.UserId, SessionId = session.Id, ClientId = session.ClientId, Reason = reason }, ct);

    public Task UserRevokedBeforeAsync(string userId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct) =>
        feed.AppendAsync(new RevocationEvent { At = at, UserId = userId, RevokedBefore = before, Reason = reason }, ct);

    public Task ClientRevokedBeforeAsync(string clientId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct) =>
        feed.AppendAsync(new RevocationEvent { At = at, ClientId = clientId, RevokedBefore = before, Reason = reason }, ct);
}

/// <summary>Publishes nowhere; for unit tests of the state machine.</summary>
public sealed class NoRevocationPublisher : IRevocationPublisher
{
    public Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct) => Task.CompletedTask;

    public Task UserRevokedBeforeAsync(string userId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct) => Task.CompletedTask;

    public Task ClientRevokedBeforeAsync(string clientId, DateTimeOffset before, string reason, DateTimeOffset at, CancellationToken ct) => Task.CompletedTask;
}
