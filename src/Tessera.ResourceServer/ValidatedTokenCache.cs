using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Tessera.ResourceServer;

/// <summary>
/// Tokens already validated, keyed by the SHA-256 of the token (the token itself is never kept as a key), each kept
/// until its own <c>exp</c> plus the clock skew. Bounded: when full, expired entries go first, then arbitrary ones.
/// Only successes are cached, so garbage sent by a stranger cannot fill it. An entry is about the token alone: how it
/// was presented and its DPoP proof (RFC 9449) belong to each request and are checked on every one, cached or not.
/// </summary>
internal sealed class ValidatedTokenCache(int capacity)
{
    internal readonly record struct Key(UInt128 High, UInt128 Low);

    /// <param name="Jkt">The token's <c>cnf.jkt</c> when it is DPoP-bound: the key every request's proof must be signed with.</param>
    internal sealed record Entry(ClaimsIdentity Identity, JsonWebToken Token, long ExpiresAtMs, string? SessionId, string Subject, long IssuedAt, string ClientId, string? Jkt = null);

    private readonly ConcurrentDictionary<Key, Entry> _entries = new();
    private int _count;
    private int _sweeping;

    public int Capacity => capacity;

    public int Count => Volatile.Read(ref _count);

    public static Key KeyOf(string token)
    {
        var length = Encoding.UTF8.GetMaxByteCount(token.Length);
        byte[]? rented = null;
        var bytes = length <= 2048 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            var written = Encoding.UTF8.GetBytes(token, bytes);
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(bytes[..written], hash);
            return new Key(MemoryMarshal.Read<UInt128>(hash), MemoryMarshal.Read<UInt128>(hash[16..]));
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public bool TryGet(Key key, long nowMs, out Entry entry)
    {
        if (_entries.TryGetValue(key, out entry!))
        {
            if (entry.ExpiresAtMs > nowMs) return true;
            Remove(key);
        }
        entry = null!;
        return false;
    }

    public void Add(Key key, Entry entry, long nowMs)
    {
        if (capacity <= 0 || entry.ExpiresAtMs <= nowMs) return;
        if (Count >= capacity) Sweep(nowMs);
        if (Count >= capacity) return;
        if (_entries.TryAdd(key, entry)) Interlocked.Increment(ref _count);
    }

    public void Remove(Key key)
    {
        if (_entries.TryRemove(key, out _)) Interlocked.Decrement(ref _count);
    }

    /// <summary>Drops expired entries; if more than three quarters of the room is still taken, drops arbitrary entries down to that.</summary>
    public void Sweep(long nowMs)
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        try
        {
            foreach (var (key, entry) in _entries)
            {
                if (entry.ExpiresAtMs <= nowMs) Remove(key);
            }
            var target = capacity * 3 / 4;
            if (Count <= target) return;
            foreach (var key in _entries.Keys)
            {
                if (Count <= target) break;
                Remove(key);
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }
}
