using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>
/// One receiver of Tessera's revocation feed (RFC 8936 poll-based delivery of RFC 8417 Security Event Tokens). Each
/// poll acknowledges what the previous one delivered and was applied, so the feed resumes where this receiver stopped,
/// and delivers in order, at least once. Each event is verified (signature from the authority's JWKS, issuer, audience
/// = this receiver, <c>typ: secevent+jwt</c>) before it is applied to the <see cref="RevocationState"/>.
/// </summary>
internal sealed class RevocationFeedClient : IDisposable
{
    /// <summary>An event that fails verification this many times in a row is skipped (and reported in <c>setErrs</c>), so one bad event cannot stop the feed for good.</summary>
    internal const int MaxAttemptsPerEvent = 3;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly TesseraAccessTokenOptions _options;
    private readonly Func<CancellationToken, Task<OpenIdConnectConfiguration>> _configuration;
    private readonly Action _refreshConfiguration;
    private readonly RevocationState _state;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly Uri _endpoint;
    private readonly AuthenticationHeaderValue _authorization;
    private readonly HashSet<string> _algorithms;
    private readonly TimeSpan _window;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false, MaximumTokenSizeInBytes = TesseraTokenHandler.MaxTokenLength };
    private readonly List<string> _pendingAcks = [];
    private readonly Dictionary<string, SetError> _pendingErrors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _attempts = new(StringComparer.Ordinal);

    public RevocationFeedClient(TesseraAccessTokenOptions options, Func<CancellationToken, Task<OpenIdConnectConfiguration>> configuration, Action refreshConfiguration,
        RevocationState state, TimeProvider time, ILogger logger, HttpMessageHandler? handler = null)
    {
        _options = options;
        _configuration = configuration;
        _refreshConfiguration = refreshConfiguration;
        _state = state;
        _time = time;
        _logger = logger;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };
        _endpoint = new Uri(options.ResolvedFeedEndpoint);
        // RFC 6749 §2.3.1: client id and secret are form-encoded before they are joined and base64-encoded.
        _authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(
            Uri.EscapeDataString(options.FeedClientId!) + ":" + Uri.EscapeDataString(options.FeedClientSecret!))));
        _algorithms = new HashSet<string>(options.ValidAlgorithms, StringComparer.Ordinal);
        _window = options.MaxAccessTokenLifetime + options.ClockSkew;
    }

    public Uri Endpoint => _endpoint;

    /// <summary>What one poll did.</summary>
    internal readonly record struct Outcome(int Delivered, int Applied, int Ignored, bool MoreAvailable, bool Stalled);

    /// <summary>Thrown when the feed answers with an error status: the message holds the status and OAuth error code, nothing else.</summary>
    internal sealed class FeedRefusedException(int status, string error) : Exception($"The revocation feed answered {status} ({error}).")
    {
        public int Status { get; } = status;
        public string Error { get; } = error;
    }

    private sealed record PollRequest(int MaxEvents, bool ReturnImmediately, IReadOnlyList<string> Ack, IReadOnlyDictionary<string, SetError>? SetErrs);

    private sealed record SetError(string Err, string Description);

    /// <summary>Sends one poll (with the acknowledgements owed), applies what comes back, and returns what happened.</summary>
    public async Task<Outcome> PollOnceAsync(CancellationToken ct)
    {
        var body = new PollRequest(_options.MaxEventsPerPoll, !_options.LongPoll, [.. _pendingAcks], _pendingErrors.Count > 0 ? new Dictionary<string, SetError>(_pendingErrors) : null);
        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = JsonContent.Create(body, options: Json) };
        request.Headers.Authorization = _authorization;
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // Tessera holds a long poll for at most 20 s; anything much longer is a dead connection.
        timeout.CancelAfter(_options.LongPoll ? TimeSpan.FromSeconds(60) : TimeSpan.FromSeconds(15));

        JsonDocument document;
        using (var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token))
        {
            if (!response.IsSuccessStatusCode) throw new FeedRefusedException((int)response.StatusCode, await ErrorCodeAsync(response, timeout.Token));
            document = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(timeout.Token), default, timeout.Token);
        }

        // The feed has the acknowledgements now (RFC 8936 §2.4.2): they are not owed any more.
        _pendingAcks.Clear();
        _pendingErrors.Clear();
        using (document)
        {
            var root = document.RootElement;
            var more = root.TryGetProperty("moreAvailable", out var m) && m.ValueKind == JsonValueKind.True;
            var sets = new List<(string Jti, string Set)>();
            if (root.TryGetProperty("sets", out var s) && s.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in s.EnumerateObject())
                {
                    if (p.Value.ValueKind == JsonValueKind.String) sets.Add((p.Name, p.Value.GetString()!));
                }
            }
            // Tessera's jti is the event's position in the feed: apply in that order, and acknowledge only a prefix that was applied.
            sets.Sort((a, b) => long.TryParse(a.Jti, out var x) && long.TryParse(b.Jti, out var y) ? x.CompareTo(y) : string.CompareOrdinal(a.Jti, b.Jti));

            int applied = 0, ignored = 0;
            var stalled = false;
            OpenIdConnectConfiguration? configuration = null;
            var refreshed = false;
            foreach (var (jti, set) in sets)
            {
                configuration ??= await _configuration(ct);
                var (result, reason) = await ApplyAsync(jti, set, configuration);
                if (result == EventResult.Invalid && !refreshed)
                {
                    // Perhaps a key we have not seen yet: fetch the authority's keys again, once per poll.
                    refreshed = true;
                    _refreshConfiguration();
                    configuration = await _configuration(ct);
                    (result, reason) = await ApplyAsync(jti, set, configuration);
                }
                if (result == EventResult.Invalid)
                {
                    var attempt = _attempts[jti] = _attempts.GetValueOrDefault(jti) + 1;
                    if (attempt < MaxAttemptsPerEvent)
                    {
                        Log.EventInvalid(_logger, jti, reason!, attempt);
                        stalled = true;
                        break;
                    }
                    Log.EventSkipped(_logger, jti, attempt, reason!);
                    _pendingErrors[jti] = new SetError("invalid_request", "The event failed verification: " + reason);
                }
                _attempts.Remove(jti);
                _pendingAcks.Add(jti);
                if (result == EventResult.Applied) applied++;
                else ignored++;
            }
            var pruned = _state.Prune();
            _state.MarkSynced();
            Log.PollProcessed(_logger, applied, ignored, pruned, _state.SessionCount, _state.UserCount, _state.ClientCount);
            return new Outcome(sets.Count, applied, ignored, more, stalled);
        }
    }

    private enum EventResult { Applied, Ignored, Invalid }

    private async Task<(EventResult Result, string? Reason)> ApplyAsync(string jti, string set, OpenIdConnectConfiguration configuration)
    {
        JsonWebToken jwt;
        try
        {
            jwt = _handler.ReadJsonWebToken(set);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenException or FormatException or JsonException)
        {
            return (EventResult.Invalid, "malformed");
        }
        if (TesseraTokenHandler.CheckHeader(jwt, _algorithms) is { } problem) return (EventResult.Invalid, problem);
        var parameters = new TokenValidationParameters
        {
            ValidIssuer = _options.Issuer,
            ValidAudience = _options.FeedClientId,
            ValidTypes = TesseraAccessTokenDefaults.SecurityEventTokenTypes,
            ValidAlgorithms = _algorithms,
            IssuerSigningKeys = configuration.SigningKeys,
            TryAllIssuerSigningKeys = true,
            RequireSignedTokens = true,
            // RFC 8417 §2.2: a SET states a fact; it has no exp.
            ValidateLifetime = false,
            RequireExpirationTime = false,
        };
        var validation = await _handler.ValidateTokenAsync(jwt, parameters);
        if (!validation.IsValid) return (EventResult.Invalid, validation.Exception?.GetType().Name ?? "invalid");
        if (!string.Equals(jwt.Issuer, _options.Issuer, StringComparison.Ordinal)) return (EventResult.Invalid, "issuer");
        if (!string.Equals(jwt.Id, jti, StringComparison.Ordinal)) return (EventResult.Invalid, "jti does not match its key in the response");

        using var payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(jwt.EncodedPayload));
        var claims = payload.RootElement;
        if (!claims.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Object
            || !(events.TryGetProperty(TesseraAccessTokenDefaults.SessionRevokedEvent, out _) || events.TryGetProperty(TesseraAccessTokenDefaults.CredentialChangeEvent, out _)))
        {
            Log.EventIgnored(_logger, jti);
            return (EventResult.Ignored, null);
        }
        // An event whose every token has expired already changes nothing (a receiver catching up after a long pause).
        var now = _time.GetUtcNow();
        if (claims.TryGetProperty("iat", out var iat) && iat.TryGetInt64(out var issuedAt)
            && DateTimeOffset.FromUnixTimeSeconds(issuedAt) + _window < now)
            return (EventResult.Ignored, null);

        var changed = false;
        if (claims.TryGetProperty("sid", out var sid) && sid.ValueKind == JsonValueKind.String && sid.GetString() is { Length: > 0 } sessionId)
        {
            _state.RevokeSession(sessionId, _window);
            changed = true;
        }
        // Tessera's revoked_before: the subject's access tokens with an iat before it (whole seconds) are void. The
        // subject (SSF sub_id) is a user (iss_sub: its sub) or a client (a complex subject naming only the application).
        if (claims.TryGetProperty("revoked_before", out var rb) && rb.TryGetInt64(out var revokedBefore)
            && claims.TryGetProperty("sub_id", out var subId) && subId.ValueKind == JsonValueKind.Object)
        {
            if (StringMember(subId, "sub") is { } subject)
            {
                _state.RevokeBefore(subject, revokedBefore, _window);
                changed = true;
            }
            else if (StringMember(subId, "format") == "complex" && !subId.TryGetProperty("user", out _) && !subId.TryGetProperty("session", out _)
                && subId.TryGetProperty("application", out var application) && application.ValueKind == JsonValueKind.Object
                && StringMember(application, "id") is { } clientId)
            {
                _state.RevokeClientBefore(clientId, revokedBefore, _window);
                changed = true;
            }
        }
        if (!changed) Log.EventIgnored(_logger, jti);
        return (changed ? EventResult.Applied : EventResult.Ignored, null);
    }

    private static string? StringMember(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s ? s : null;

    private static async Task<string> ErrorCodeAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            if (doc.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String)
            {
                var code = e.GetString()!;
                // Only an OAuth error code (RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E) goes into a log line.
                return code.Length <= 64 && code.All(c => c is >= ' ' and <= '~' and not '"' and not '\\') ? code : "unreadable error";
            }
        }
        catch (JsonException)
        {
        }
        return "no error code";
    }

    public void Dispose() => _http.Dispose();
}
