using System.Buffers.Binary;
using System.Collections.Concurrent;
using Tessera.Core.Storage;
using Tessera.Storage.Common;

namespace Tessera.Storage.Sqlite;

/// <summary>
/// Copies of sessions with their users, keyed by the SHA-256 of the session's current refresh token, so the common
/// refresh (the current token of a live session) needs no read transaction. On SQLite every commit empties each reader
/// connection's page cache, so that read was the most expensive statement of a refresh on the 2-core benchmark machine.
/// <para>
/// A copy is never trusted, so it needs no freshness rule: <see cref="ISessionStore.FindCopyByCurrentToken"/> lets a
/// caller act on it only through the rotation's compare-and-swap, which checks that the token is still current, the
/// session unrevoked, unexpired and at the copy's version, and the user at the copy's version, in the same transaction
/// as the write. Any change (by this process, another process on the same file, the CLI, or an edit with the sqlite3
/// shell, whose versions the migration-6 triggers bump) therefore turns a copy into one failed swap and a read; it can
/// never issue a token the database would refuse. A failed swap forgets the copy it was made from.
/// </para>
/// Copies come from reads of the refresh path and from this store's own rotations (the copy moves to the new token's
/// key). At <c>capacity</c> the whole set is dropped and refilled by later reads: bounded memory, no bookkeeping.
/// </summary>
internal sealed class SqliteSessionCopies(int capacity = SqliteSessionCopies.DefaultCapacity)
{
    public const int DefaultCapacity = 16_384;

    private readonly ConcurrentDictionary<byte[], SessionWithUser> _byCurrentToken = new(HashKey.Instance);
    private int _count;

    public SessionWithUser? Find(byte[] currentTokenHash) =>
        _byCurrentToken.TryGetValue(currentTokenHash, out var copy) ? copy : null;

    /// <summary>After a read: only a live session with a current token and an existing user is worth a copy.</summary>
    public void Remember(SessionWithUser found)
    {
        if (found.Session is { CurrentTokenHash: { } key, RevokedAt: null } && found.User is not null)
            Put(key, found);
    }

    /// <summary>
    /// After this store committed <paramref name="r"/>: the copy follows the session to its new token, with the values
    /// a read would now return (times at the store's millisecond precision).
    /// </summary>
    public void Rotated(Rotation r)
    {
        if (!TryForget(r.ExpectedCurrentHash, out var old) || old.Session.Id != r.SessionId) return;
        // A copy older than the row the swap checked would only cost a failed swap later: drop it now.
        if (r.ExpectedSessionVersion is { } v && old.Session.Version != v) return;
        if (r.ExpectedUserVersion is { } uv && old.User?.Version != uv) return;
        var now = Docs.At(Docs.Ms(r.Now));
        Put(r.NewCurrentHash, old with
        {
            Session = old.Session with
            {
                PreviousTokenHash = r.ExpectedCurrentHash, PreviousConsumedAt = now, CurrentTokenHash = r.NewCurrentHash,
                ProtectedCurrentToken = r.ProtectedNewToken, LastUsedAt = now, IdleExpiresAt = Docs.At(Docs.Ms(r.NewIdleExpiresAt)),
                IpAddress = r.IpAddress ?? old.Session.IpAddress, UserAgent = r.UserAgent ?? old.Session.UserAgent,
                Version = old.Session.Version + 1,
            },
        });
    }

    /// <summary>After a failed swap: whatever was remembered under that token is out of date.</summary>
    public void Forget(byte[] tokenHash) => TryForget(tokenHash, out _);

    public int Count => Volatile.Read(ref _count);

    private bool TryForget(byte[] key, out SessionWithUser copy)
    {
        if (!_byCurrentToken.TryRemove(key, out copy!)) return false;
        Interlocked.Decrement(ref _count);
        return true;
    }

    private void Put(byte[] key, SessionWithUser copy)
    {
        if (Volatile.Read(ref _count) >= capacity)
        {
            _byCurrentToken.Clear();
            Volatile.Write(ref _count, 0);
        }
        if (_byCurrentToken.TryAdd(key, copy)) Interlocked.Increment(ref _count);
        else _byCurrentToken[key] = copy;
    }

    /// <summary>Keys are SHA-256 outputs of existing tokens: their first eight bytes are already a uniform hash.</summary>
    private sealed class HashKey : IEqualityComparer<byte[]>
    {
        public static readonly HashKey Instance = new();
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] key) => key.Length >= 8 ? (int)BinaryPrimitives.ReadUInt64LittleEndian(key) : key.Length;
    }
}
