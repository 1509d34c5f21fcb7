using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Tessera.ResourceServer;

/// <summary>
/// The proof <c>jti</c>s seen by this process, each until its proof could no longer be accepted anyway. RFC 9449
/// §11.1: "servers can store the jti value of each DPoP proof for the time window in which the respective DPoP proof
/// JWT would be accepted to prevent multiple uses of the same DPoP proof", and "In order to guard against memory
/// exhaustion attacks, a server that is tracking jti values should reject DPoP proof JWTs with unnecessarily large jti
/// values or store only a hash thereof." Only the SHA-256 of (key thumbprint, jti) is kept, so one client's jti can
/// never block another's. Bounded: when full, expired entries are swept; a live entry is never dropped, so a full
/// cache refuses new proofs rather than letting a replay through.
/// </summary>
internal sealed class DpopReplayCache(int capacity)
{
    private readonly record struct Key(UInt128 High, UInt128 Low);

    private readonly ConcurrentDictionary<Key, long> _expiries = new();
    private int _count;
    private int _sweeping;
    private long _nextSweepMs;

    public int Count => Volatile.Read(ref _count);

    public enum Outcome { First, Replay, Full }

    /// <summary>Remembers the proof until <paramref name="expiresAtMs"/>; <see cref="Outcome.First"/> only the first time within that window.</summary>
    public Outcome TryRemember(string thumbprint, string jti, long nowMs, long expiresAtMs)
    {
        var key = KeyOf(thumbprint, jti);
        while (true)
        {
            if (_expiries.TryGetValue(key, out var seenUntil))
            {
                if (seenUntil > nowMs) return Outcome.Replay;
                // An expired entry of the same proof: take its place (exactly one concurrent caller wins the swap).
                if (_expiries.TryUpdate(key, expiresAtMs, seenUntil)) return Outcome.First;
                continue;
            }
            if (Count >= capacity)
            {
                SweepExpired(nowMs);
                if (Count >= capacity) return Outcome.Full;
            }
            if (_expiries.TryAdd(key, expiresAtMs))
            {
                Interlocked.Increment(ref _count);
                // Past a quarter full, expired entries are also dropped now and then, so the cache shrinks when traffic does.
                if (Count > capacity / 4) SweepExpired(nowMs);
                return Outcome.First;
            }
        }
    }

    /// <summary>Drops expired entries, at most once a second (a full cache of live entries is not rescanned on every request).</summary>
    internal void SweepExpired(long nowMs)
    {
        if (nowMs < Volatile.Read(ref _nextSweepMs) || Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        try
        {
            Volatile.Write(ref _nextSweepMs, nowMs + 1000);
            foreach (var (key, until) in _expiries)
            {
                if (until <= nowMs && _expiries.TryRemove(new KeyValuePair<Key, long>(key, until))) Interlocked.Decrement(ref _count);
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private static Key KeyOf(string thumbprint, string jti)
    {
        Span<byte> hash = stackalloc byte[32];
        // The thumbprint is base64url (no NUL), so the separator keeps (a, b) and (a', b') apart.
        SHA256.HashData(Encoding.UTF8.GetBytes(thumbprint + "\0" + jti), hash);
        return new Key(MemoryMarshal.Read<UInt128>(hash), MemoryMarshal.Read<UInt128>(hash[16..]));
    }
}
