using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>
/// A stand-in for Tessera on a real loopback socket: discovery, a JWKS with one EC P-256 key (kid "k1") and one RSA
/// key (kid "r1"), and an RFC 8936 revocation feed with Tessera's shapes (Basic-authenticated receiver, jti = position,
/// ack moves the receiver's cursor, long poll). Tokens are assembled by hand, so a test can make any hostile shape.
/// </summary>
public sealed class LocalIssuer : IAsyncDisposable
{
    public const string FeedClientId = "api-feed";
    public const string FeedClientSecret = "feed-secret-0123456789";
    public const string SessionRevokedEvent = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string CredentialChangeEvent = "https://schemas.openid.net/secevent/caep/event-type/credential-change";

    private readonly WebApplication _app;
    private readonly List<string> _events = [];
    private readonly Lock _gate = new();
    private TaskCompletionSource _published = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _cursor;

    public string Issuer { get; }
    public ECDsa EcKey { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    public RSA RsaKey { get; } = RSA.Create(2048);
    public TimeProvider Time { get; }

    /// <summary>Every poll body the feed received, in order.</summary>
    public ConcurrentQueue<JsonElement> Polls { get; } = new();

    public long Cursor => Interlocked.Read(ref _cursor);

    private LocalIssuer(WebApplication app, string issuer, TimeProvider time)
    {
        _app = app;
        Issuer = issuer;
        Time = time;
    }

    public static async Task<LocalIssuer> StartAsync(TimeProvider? time = null)
    {
        var port = FreePort();
        var issuer = $"http://127.0.0.1:{port}";
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls(issuer);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        var local = new LocalIssuer(app, issuer, time ?? TimeProvider.System);
        app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = issuer, ["jwks_uri"] = issuer + "/.well-known/jwks.json", ["token_endpoint"] = issuer + "/connect/token",
            ["id_token_signing_alg_values_supported"] = new[] { "ES256", "RS256" },
        }));
        app.MapGet("/.well-known/jwks.json", () => Results.Json(new { keys = new[] { Jwk(local.EcKey, "k1"), Jwk(local.RsaKey, "r1") } }));
        app.MapPost("/connect/revocations", local.FeedAsync);
        await app.StartAsync();
        return local;
    }

    // ---- tokens -------------------------------------------------------------------------------------------------

    /// <summary>Claims of a good access token for <paramref name="audience"/>: what Tessera's TokenMinter writes.</summary>
    public Dictionary<string, object> AccessTokenClaims(string audience, string scope = "api.read", string? sid = null, string sub = "user-1", TimeSpan? lifetime = null, DateTimeOffset? now = null,
        string clientId = "web")
    {
        var at = now ?? Time.GetUtcNow();
        return new Dictionary<string, object>
        {
            ["iss"] = Issuer, ["sub"] = sub, ["aud"] = audience, ["client_id"] = clientId, ["jti"] = Guid.NewGuid().ToString("N"),
            ["scope"] = scope, ["sid"] = sid ?? "sid-" + Guid.NewGuid().ToString("N"), ["auth_time"] = at.ToUnixTimeSeconds(),
            ["iat"] = at.ToUnixTimeSeconds(), ["nbf"] = at.ToUnixTimeSeconds(), ["exp"] = (at + (lifetime ?? TimeSpan.FromMinutes(5))).ToUnixTimeSeconds(),
        };
    }

    public static Dictionary<string, object> Header(string alg = "ES256", string? kid = "k1", string? typ = "at+jwt")
    {
        var h = new Dictionary<string, object> { ["alg"] = alg };
        if (kid is not null) h["kid"] = kid;
        if (typ is not null) h["typ"] = typ;
        return h;
    }

    /// <summary>A compact JWS signed ES256 with <paramref name="key"/> (the issuer's key when null).</summary>
    public string SignEs256(Dictionary<string, object> header, Dictionary<string, object> payload, ECDsa? key = null) =>
        Assemble(header, payload, input => (key ?? EcKey).SignData(input, HashAlgorithmName.SHA256));

    public string SignRs256(Dictionary<string, object> header, Dictionary<string, object> payload) =>
        Assemble(header, payload, input => RsaKey.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));

    public static string SignHs256(Dictionary<string, object> header, Dictionary<string, object> payload, byte[] secret) =>
        Assemble(header, payload, input => HMACSHA256.HashData(secret, input));

    public static string Unsigned(Dictionary<string, object> header, Dictionary<string, object> payload) => Assemble(header, payload, _ => []);

    public static string Assemble(Dictionary<string, object> header, Dictionary<string, object> payload, Func<byte[], byte[]> sign)
    {
        var signingInput = Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(payload));
        return signingInput + "." + Base64UrlEncoder.Encode(sign(Encoding.ASCII.GetBytes(signingInput)));
    }

    public static Dictionary<string, string> Jwk(ECDsa key, string kid)
    {
        var p = key.ExportParameters(false);
        return new Dictionary<string, string>
        {
            ["kty"] = "EC", ["crv"] = "P-256", ["kid"] = kid, ["alg"] = "ES256", ["use"] = "sig",
            ["x"] = Base64UrlEncoder.Encode(p.Q.X!), ["y"] = Base64UrlEncoder.Encode(p.Q.Y!),
        };
    }

    public static Dictionary<string, string> Jwk(RSA key, string kid)
    {
        var p = key.ExportParameters(false);
        return new Dictionary<string, string>
        {
            ["kty"] = "RSA", ["kid"] = kid, ["alg"] = "RS256", ["use"] = "sig", ["n"] = Base64UrlEncoder.Encode(p.Modulus!), ["e"] = Base64UrlEncoder.Encode(p.Exponent!),
        };
    }

    // ---- the revocation feed ------------------------------------------------------------------------------------

    /// <summary>A SET the way Tessera's RevocationFeedEndpoint signs one; returns its jti.</summary>
    public string PublishSessionRevoked(string sid, string sub = "user-1") =>
        Publish(jti => SignSet(SetClaims(jti, sub, sid, null)));

    public string PublishRevokedBefore(string sub, DateTimeOffset before) =>
        Publish(jti => SignSet(SetClaims(jti, sub, null, before)));

    /// <summary>A client's watermark as Tessera publishes it after a secret rotation: CAEP credential-change about the application.</summary>
    public string PublishClientRevokedBefore(string clientId, DateTimeOffset before) =>
        Publish(jti => SignSet(ClientSetClaims(jti, clientId, before)));

    public Dictionary<string, object> ClientSetClaims(string jti, string clientId, DateTimeOffset before)
    {
        var subject = new Dictionary<string, object>
        {
            ["format"] = "complex", ["application"] = new Dictionary<string, object> { ["format"] = "opaque", ["id"] = clientId },
        };
        var now = Time.GetUtcNow().ToUnixTimeSeconds();
        return new Dictionary<string, object>
        {
            ["iss"] = Issuer, ["aud"] = FeedClientId, ["iat"] = now, ["jti"] = jti, ["sub_id"] = subject, ["revoked_before"] = before.ToUnixTimeSeconds(),
            ["events"] = new Dictionary<string, object>
            {
                [CredentialChangeEvent] = new Dictionary<string, object>
                {
                    ["subject"] = subject, ["credential_type"] = "client_secret", ["change_type"] = "update", ["event_timestamp"] = now,
                },
            },
        };
    }

    /// <summary>Publishes whatever <paramref name="make"/> builds for the next position (jti).</summary>
    public string Publish(Func<string, string> make)
    {
        lock (_gate)
        {
            var jti = (_events.Count + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            _events.Add(make(jti));
            _published.TrySetResult();
            _published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return jti;
        }
    }

    public Dictionary<string, object> SetClaims(string jti, string sub, string? sid, DateTimeOffset? revokedBefore)
    {
        var subject = new Dictionary<string, object> { ["format"] = "iss_sub", ["iss"] = Issuer, ["sub"] = sub };
        var claims = new Dictionary<string, object>
        {
            ["iss"] = Issuer, ["aud"] = FeedClientId, ["iat"] = Time.GetUtcNow().ToUnixTimeSeconds(), ["jti"] = jti, ["sub_id"] = subject,
            ["events"] = new Dictionary<string, object> { [SessionRevokedEvent] = new Dictionary<string, object> { ["subject"] = subject, ["event_timestamp"] = Time.GetUtcNow().ToUnixTimeSeconds() } },
        };
        if (sid is not null) claims["sid"] = sid;
        if (revokedBefore is { } rb) claims["revoked_before"] = rb.ToUnixTimeSeconds();
        return claims;
    }

    public string SignSet(Dictionary<string, object> claims, ECDsa? key = null) => SignEs256(Header(typ: "secevent+jwt"), claims, key);

    private async Task FeedAsync(HttpContext http)
    {
        var auth = http.Request.Headers.Authorization.ToString();
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{FeedClientId}:{FeedClientSecret}"));
        if (auth != expected)
        {
            http.Response.StatusCode = 401;
            http.Response.Headers.WWWAuthenticate = "Basic";
            await http.Response.WriteAsJsonAsync(new { error = "invalid_client" });
            return;
        }
        using var body = await JsonDocument.ParseAsync(http.Request.Body);
        var poll = body.RootElement.Clone();
        Polls.Enqueue(poll);
        if (poll.TryGetProperty("ack", out var ack))
        {
            foreach (var a in ack.EnumerateArray())
            {
                var id = long.Parse(a.GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                long seen;
                while ((seen = Interlocked.Read(ref _cursor)) < id && Interlocked.CompareExchange(ref _cursor, id, seen) != seen) { }
            }
        }
        var max = poll.TryGetProperty("maxEvents", out var m) ? m.GetInt32() : 100;
        var immediately = poll.TryGetProperty("returnImmediately", out var r) && r.GetBoolean();
        var (sets, more, wait) = Read(max);
        if (sets.Count == 0 && !immediately)
        {
            // Long poll, kept short here: the tests want answers in milliseconds.
            await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(2), http.RequestAborted));
            (sets, more, _) = Read(max);
        }
        await http.Response.WriteAsJsonAsync(new { sets, moreAvailable = more });
    }

    private (Dictionary<string, string> Sets, bool More, Task Wait) Read(int max)
    {
        lock (_gate)
        {
            var from = (int)Cursor;
            var sets = new Dictionary<string, string>();
            for (var i = from; i < _events.Count && sets.Count < max; i++)
                sets[(i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)] = _events[i];
            return (sets, from + sets.Count < _events.Count, _published.Task);
        }
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        EcKey.Dispose();
        RsaKey.Dispose();
    }
}
