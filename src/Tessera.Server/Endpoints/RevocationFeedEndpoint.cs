using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Keys;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Server.ClientAuthentication;
using Tessera.Server.Protocol;

namespace Tessera.Server.Endpoints;

/// <summary>
/// The revocation feed: Security Event Tokens (RFC 8417) carrying CAEP session-revoked events, delivered by
/// RFC 8936 poll-based delivery. A receiver is a confidential client with the <c>tessera.revocations</c> scope;
/// it acknowledges what it processed and gets what follows, in order, at least once.
/// </summary>
public static class RevocationFeedEndpoint
{
    public const string Path = "/connect/revocations";
    public const string ReceiverScope = "tessera.revocations";
    public const string SessionRevokedEvent = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string CredentialChangeEvent = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
    private const int MaxEventsCap = 1000;
    private static readonly TimeSpan LongPollMax = TimeSpan.FromSeconds(20);
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    public static void Map(WebApplication app) => app.MapPost(Path, HandleAsync);

    private sealed class PollRequest
    {
        public int? MaxEvents { get; set; }
        public bool? ReturnImmediately { get; set; }
        public List<string>? Ack { get; set; }
    }

    private static async Task HandleAsync(HttpContext http, ClientAuthenticator authenticator, IRevocationFeedStore feed, KeyRing keys, TesseraOptions options, TimeProvider time)
    {
        var ct = http.RequestAborted;
        var auth = await authenticator.AuthenticateAsync(http, new Dictionary<string, string>(), ct);
        if (auth.Failure is null && (auth.Client!.IsPublic || !auth.Client.Scopes.Contains(ReceiverScope)))
            auth = auth with { Client = null, Failure = new OAuthFailure(OAuthErrors.InvalidClient, "This client is not a registered revocation-feed receiver.") };
        if (auth.Failure is not null)
        {
            await OAuthResults.WriteErrorAsync(http, auth.Failure, auth.BasicUsed);
            return;
        }
        PollRequest? poll;
        try
        {
            poll = http.Request.ContentLength == 0 ? new PollRequest()
                : await JsonSerializer.DeserializeAsync<PollRequest>(http.Request.Body, new JsonSerializerOptions(JsonSerializerDefaults.Web), ct);
        }
        catch (JsonException)
        {
            poll = null;
        }
        if (poll is null || poll.MaxEvents is < 0 || poll.Ack?.Count > MaxEventsCap)
        {
            await OAuthResults.WriteErrorAsync(http, new OAuthFailure(OAuthErrors.InvalidRequest, "The body must be an RFC 8936 poll request."));
            return;
        }

        var receiver = auth.Client!.Id;
        var acked = poll.Ack?.Select(a => long.TryParse(a, out var id) ? id : 0).DefaultIfEmpty(0).Max() ?? 0;
        if (acked > 0) await feed.AckAsync(receiver, acked, ct);
        var cursor = await feed.GetCursorAsync(receiver, ct);
        var max = Math.Clamp(poll.MaxEvents ?? 100, 0, MaxEventsCap);

        IReadOnlyList<RevocationEvent> events = max == 0 ? [] : await feed.ReadAfterAsync(cursor, max + 1, ct);
        if (events.Count == 0 && max > 0 && poll.ReturnImmediately == false)
        {
            // Long poll (RFC 8936 §2.4.1): hold the request until something happens or the wait is over.
            // Waiting is measured on the real clock: it is about this connection, not about token lifetimes.
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (events.Count == 0 && waited.Elapsed < LongPollMax && !ct.IsCancellationRequested)
            {
                try { await Task.Delay(TimeSpan.FromMilliseconds(100), ct); } catch (OperationCanceledException) { return; }
                events = await feed.ReadAfterAsync(cursor, max + 1, ct);
            }
        }

        var key = await keys.GetCurrentAsync(ct);
        var sets = new Dictionary<string, string>();
        foreach (var e in events.Take(max))
            sets[e.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Sign(e, receiver, options.Issuer!, key);
        await OAuthResults.WriteJsonAsync(http, StatusCodes.Status200OK, new Dictionary<string, object> { ["sets"] = sets, ["moreAvailable"] = events.Count > max });
    }

    /// <summary>
    /// An RFC 8417 SET: <c>typ: secevent+jwt</c>, jti = the event's position in the feed. RFC 8417 §2.2: "events" holds
    /// one logical event, keyed by its type URI; the subject (SSF <c>sub_id</c>) says what it is about:
    /// <list type="bullet">
    /// <item>a session (complex subject: user + session, and Tessera's <c>sid</c> claim): CAEP session-revoked;</item>
    /// <item>a user (<c>iss_sub</c>) with Tessera's <c>revoked_before</c> claim: the user's access tokens with an <c>iat</c>
    /// before it are void. CAEP session-revoked, or credential-change (password, update) after a password reset;</item>
    /// <item>a client (complex subject: <c>application</c>) with <c>revoked_before</c>: every access token the client
    /// obtained before it is void. CAEP credential-change (credential type <c>client_secret</c>, update).</item>
    /// </list>
    /// </summary>
    private static string Sign(RevocationEvent e, string audience, string issuer, KeyRing.LoadedKey key)
    {
        var user = e.UserId is null ? null : new Dictionary<string, object> { ["format"] = "iss_sub", ["iss"] = issuer, ["sub"] = e.UserId };
        Dictionary<string, object> subject;
        if (e.SessionId is not null && user is not null)
            subject = new Dictionary<string, object> { ["format"] = "complex", ["user"] = user, ["session"] = new Dictionary<string, object> { ["format"] = "opaque", ["id"] = e.SessionId } };
        else if (user is not null)
            subject = user;
        else
            subject = new Dictionary<string, object> { ["format"] = "complex", ["application"] = new Dictionary<string, object> { ["format"] = "opaque", ["id"] = e.ClientId ?? "" } };

        var payload = new Dictionary<string, object>
        {
            // CAEP §2: "the time at which the event described by this SET occurred".
            ["event_timestamp"] = e.At.ToUnixTimeSeconds(),
            ["initiating_entity"] = InitiatingEntity(e.Reason),
            ["reason_admin"] = new Dictionary<string, string> { ["en"] = e.Reason },
            ["subject"] = subject,
        };
        var eventType = SessionRevokedEvent;
        // CAEP §3.3: credential_type is "password", ... "or any other credential type supported mutually by the
        // Transmitter and the Receiver"; change_type "update". Tessera's receivers know "client_secret".
        if (e.Reason == RevocationReasons.PasswordReset && e.SessionId is null && user is not null)
            (eventType, payload["credential_type"], payload["change_type"]) = (CredentialChangeEvent, "password", "update");
        else if (user is null)
            (eventType, payload["credential_type"], payload["change_type"]) = (CredentialChangeEvent, "client_secret", e.Reason == RevocationReasons.ClientDeleted ? "delete" : "update");

        var claims = new Dictionary<string, object>
        {
            ["jti"] = e.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["events"] = new Dictionary<string, object> { [eventType] = payload },
            ["sub_id"] = e.SessionId is null ? subject : user!,
        };
        if (e.SessionId is not null) claims["sid"] = e.SessionId;
        // Whole seconds, like the iat it is compared with: a token whose iat is before it is void.
        if (e.RevokedBefore is { } rb) claims["revoked_before"] = rb.ToUnixTimeSeconds();
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = e.At.UtcDateTime,
            TokenType = "secevent+jwt",
            Claims = claims,
            SigningCredentials = new SigningCredentials(key.PrivateKey, key.Algorithm),
        });
    }

    /// <summary>CAEP §2 <c>initiating_entity</c>: admin, user, policy or system.</summary>
    private static string InitiatingEntity(string reason) => reason switch
    {
        RevocationReasons.UserRevoked or RevocationReasons.Logout => "user",
        RevocationReasons.Reuse or RevocationReasons.CodeReplay => "policy",
        RevocationReasons.ClientRevoked => "system",
        _ => "admin",
    };
}
