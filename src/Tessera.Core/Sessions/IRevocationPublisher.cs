namespace Tessera.Core.Sessions;

/// <summary>Where revocations go so resource servers learn of them (the revocation feed). Called after the store committed.</summary>
public interface IRevocationPublisher
{
    Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct);
}

public sealed class NoRevocationPublisher : IRevocationPublisher
{
    public Task SessionRevokedAsync(Session session, string reason, DateTimeOffset at, CancellationToken ct) => Task.CompletedTask;
}
