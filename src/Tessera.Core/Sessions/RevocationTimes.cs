namespace Tessera.Core.Sessions;

/// <summary>
/// The instants revocations are compared at. The store keeps times in Unix milliseconds, access tokens carry <c>iat</c>
/// in whole seconds (RFC 7519 §2 NumericDate), so "before T" needs care on both scales.
/// </summary>
public static class RevocationTimes
{
    /// <summary>
    /// A user's "revoked before" watermark, cut to the store's millisecond precision. Sessions are stored with
    /// millisecond times too, so a session that starts at or after the watermark (a new sign-in right after "sign out
    /// everywhere") is never taken for an older one.
    /// </summary>
    public static DateTimeOffset Watermark(DateTimeOffset now) => DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds());

    /// <summary>
    /// The start of the whole second after <paramref name="t"/>: as a feed watermark (<c>iat</c> before it is void) it
    /// covers every token issued up to <paramref name="t"/>, including those issued in <paramref name="t"/>'s own second.
    /// For a change that ends no session (a lock, narrower permissions, a new client secret) there are no per-session
    /// events to cover that second, so it is refused whole: a token issued in the rest of that second is refused too,
    /// and its holder gets a new one a second later. Of the two possible mistakes this is the safe one; the other would
    /// let anyone who keeps fetching tokens (say, with a stolen client secret) keep one for its whole lifetime.
    /// </summary>
    public static DateTimeOffset AfterSecondOf(DateTimeOffset t) => DateTimeOffset.FromUnixTimeSeconds(t.ToUnixTimeSeconds() + 1);
}
