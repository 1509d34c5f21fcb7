namespace Tessera.Bff.Sessions;

/// <summary>
/// Server-side session storage. Every backend replica sharing one store sees the same sessions, so a refresh made by
/// one replica is used by the others instead of being repeated. Implementations encrypt the tokens at rest.
/// </summary>
public interface IBffSessionStore
{
    Task<BffSession?> GetAsync(string key, CancellationToken ct);

    /// <summary>Inserts or replaces the session.</summary>
    Task SaveAsync(BffSession session, CancellationToken ct);

    /// <summary>True when a session was deleted.</summary>
    Task<bool> DeleteAsync(string key, CancellationToken ct);

    /// <summary>
    /// Back-channel logout: deletes the sessions with this Tessera session id (and subject, when both are given),
    /// or every session of the subject when only it is given. Returns how many ended.
    /// </summary>
    Task<int> DeleteByTesseraSessionAsync(string? subject, string? tesseraSessionId, CancellationToken ct);

    /// <summary>Deletes sessions past their expiry; returns how many.</summary>
    Task<int> PruneAsync(DateTimeOffset now, CancellationToken ct);
}
