using System.Diagnostics;
using System.Net;
using Xunit.Abstractions;
using System.Text.Json;
using Tessera.Core.Audit;
using Tessera.Core.Sessions;

namespace Tessera.Tests.MultiNode;

/// <summary>
/// Three Tessera processes on loopback ports sharing one PostgreSQL database and nothing else: they serve one JWKS,
/// of 300 parallel refreshes of one token spread over them exactly one rotates, a reuse shown to one node ends the
/// session on all, and a browser's sign-in (cookie and antiforgery) works whichever node it reaches.
/// </summary>
[Collection(MultiNodeCollection.Name)]
public sealed class MultiNodeTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>The server-wide retry window, short so that reuse after it can be shown quickly.</summary>
    private static readonly TimeSpan RetryWindow = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The burst's client keeps a 30-second window of its own (a per-client override, declared in configuration on
    /// every node): all 300 requests must arrive inside the window, however slow a loaded test machine is.
    /// </summary>
    private const string BurstClient = "spa-burst";
    private static readonly TimeSpan BurstWindow = TimeSpan.FromSeconds(30);

    private TesseraCluster? _cluster;

    private TesseraCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster did not start.");

    public async Task InitializeAsync() => _cluster = await TesseraCluster.StartAsync(3,
    [
        $"--Tessera:RefreshRetryWindow={RetryWindow:c}",
        $"--Tessera:Clients:0:Id={BurstClient}",
        $"--Tessera:Clients:0:RedirectUris:0={TesseraCluster.RedirectUri}",
        "--Tessera:Clients:0:GrantTypes:0=authorization_code", "--Tessera:Clients:0:GrantTypes:1=refresh_token",
        "--Tessera:Clients:0:Scopes:0=openid", "--Tessera:Clients:0:Scopes:1=offline_access", "--Tessera:Clients:0:Scopes:2=api.read",
        "--Tessera:Clients:0:FirstParty=true",
        $"--Tessera:Clients:0:RefreshRetryWindow={BurstWindow:c}",
    ]);

    public async Task DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Three_nodes_on_one_database_serve_one_jwks_rotate_once_detect_reuse_everywhere_and_share_the_sign_in()
    {
        output.WriteLine(Cluster.StartupReport);
        var (a, b, c) = (Cluster.Nodes[0], Cluster.Nodes[1], Cluster.Nodes[2]);

        // (1) One key set: every node reads the signing keys from the database.
        var jwks = new List<string>();
        foreach (var node in Cluster.Nodes)
        {
            var response = await node.Http.GetAsync(".well-known/jwks.json");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            jwks.Add(await response.Content.ReadAsStringAsync());
        }
        Assert.NotEmpty(JsonDocument.Parse(jwks[0]).RootElement.GetProperty("keys").EnumerateArray());
        Assert.All(jwks, j => Assert.Equal(jwks[0], j));
        foreach (var node in Cluster.Nodes)
        {
            var discovery = JsonDocument.Parse(await node.Http.GetStringAsync(".well-known/openid-configuration")).RootElement;
            Assert.Equal(Cluster.Issuer, discovery.GetProperty("issuer").GetString());
        }

        // (2) A session made through the code flow on node A, then 300 parallel refreshes of its token, round-robin
        // over the three nodes, fired together: exactly one successor, which every 200 carries.
        using var browser = a.NewClient(new CookieContainer());
        var original = await TesseraCluster.StartSessionAsync(browser, a.Http, BurstClient);
        await WarmUpAsync(browser);

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var burst = Enumerable.Range(0, 300).Select(async i =>
        {
            await go.Task;
            return await TesseraCluster.RefreshAsync(Cluster.Nodes[i % 3].Http, original, BurstClient);
        }).ToList();
        var clock = Stopwatch.StartNew();
        go.SetResult();
        var answers = await Task.WhenAll(burst);
        clock.Stop();
        output.WriteLine($"300 parallel refreshes over 3 nodes took {clock.ElapsedMilliseconds} ms");

        Assert.DoesNotContain(answers, r => (int)r.Status >= 500);
        Assert.True(clock.Elapsed < BurstWindow, $"the burst took {clock.Elapsed}, longer than its {BurstWindow} retry window");
        var refused = answers.Where(r => r.Status != HttpStatusCode.OK).ToList();
        if (refused.Count > 0)
            Assert.Fail($"{refused.Count} of 300 refreshes refused, e.g. {(int)refused[0].Status} {refused[0].Body}\n{Cluster.Logs()}");
        var successor = Assert.Single(answers.Select(r => r.RefreshToken).Distinct());
        Assert.NotNull(successor);
        Assert.NotEqual(original, successor);

        var burstSession = await SessionOfAsync(successor);
        Assert.Equal(1, await CountEventsAsync(burstSession, AuditTypes.Refreshed));
        Assert.Equal(299, await CountEventsAsync(burstSession, AuditTypes.RefreshRetried));
        Assert.Equal(0, await CountEventsAsync(burstSession, AuditTypes.ReuseDetected));
        // The one successor is live: it rotates (once more) on a node of its own choosing.
        var next = await TesseraCluster.RefreshAsync(c.Http, successor, BurstClient);
        Assert.True(next.Status == HttpStatusCode.OK && next.RefreshToken is not null && next.RefreshToken != successor, $"successor refused: {(int)next.Status} {next.Body}");

        // (3) A session rotated on node A; after the 2-second retry window its replaced token comes back on node B:
        // reuse. The session is revoked in the database, so the successor is refused by A, B and C alike.
        var first = await TesseraCluster.StartSessionAsync(browser, a.Http);
        var rotatedOnA = await TesseraCluster.RefreshAsync(a.Http, first);
        Assert.True(rotatedOnA.Status == HttpStatusCode.OK, $"rotation on A: {(int)rotatedOnA.Status} {rotatedOnA.Body}");
        var rotated = rotatedOnA.RefreshToken!;
        var sessionId = await SessionOfAsync(rotated);
        await Task.Delay(RetryWindow + TimeSpan.FromSeconds(1));

        var reuse = await TesseraCluster.RefreshAsync(b.Http, first);
        Assert.Equal(HttpStatusCode.BadRequest, reuse.Status);
        Assert.Equal("invalid_grant", reuse.Error);
        Assert.True(await CountEventsAsync(sessionId, AuditTypes.ReuseDetected) == 1, "no reuse recorded; the session's audit log:\n" + await EventsAsync(sessionId));
        Assert.Equal(1, await Cluster.ScalarAsync("SELECT COUNT(*) FROM sessions WHERE id = @id AND revoked_at IS NOT NULL AND revoked_reason = @reason", ("id", sessionId), ("reason", RevocationReasons.Reuse)));
        foreach (var node in Cluster.Nodes)
        {
            var refusedEverywhere = await TesseraCluster.RefreshAsync(node.Http, rotated);
            Assert.True(refusedEverywhere.Status == HttpStatusCode.BadRequest && refusedEverywhere.Error == "invalid_grant",
                $"node {node.Name} accepted the successor in a revoked session: {(int)refusedEverywhere.Status} {refusedEverywhere.Body}");
        }
        Assert.Equal(1, await CountEventsAsync(sessionId, AuditTypes.Refreshed));

        // (4) One key ring for data protection: the sign-in cookie node A set is valid on B and C, and an antiforgery
        // token from B's form is accepted by C.
        var cookies = new CookieContainer();
        using (var onA = a.NewClient(cookies)) await TesseraCluster.SignInAsync(onA);
        foreach (var node in new[] { b, c })
        {
            using var there = node.NewClient(cookies);
            var account = await there.GetAsync("account");
            var html = await account.Content.ReadAsStringAsync();
            Assert.True(account.StatusCode == HttpStatusCode.OK, $"node {node.Name} did not accept A's sign-in cookie: {(int)account.StatusCode} {account.Headers.Location}\n{Cluster.Logs()}");
            Assert.Contains($"Signed in as <strong>{TesseraCluster.Username}</strong>", html, StringComparison.Ordinal);
        }
        var fresh = new CookieContainer();
        using (var formOnB = b.NewClient(fresh))
        using (var postOnC = c.NewClient(fresh))
            await TesseraCluster.SignInAsync(formOnB, postTo: postOnC);

        // The key ring is in the database, once, and encrypted with the master key.
        Assert.Equal(1, await Cluster.ScalarAsync("SELECT COUNT(*) FROM dataprotection_keys WHERE friendly_name LIKE 'key-%'"));
        Assert.Equal(0, await Cluster.ScalarAsync("SELECT COUNT(*) FROM dataprotection_keys WHERE xml LIKE '%<masterKey%' OR xml NOT LIKE '%encryptedKey%'"));
    }

    /// <summary>
    /// A throw-away session refreshed on every node, then 90 parallel refreshes of its token: each node has compiled its
    /// refresh and retry paths and holds open connections, so the measured burst is not mostly start-up cost.
    /// </summary>
    private async Task WarmUpAsync(HttpClient browser)
    {
        var token = await TesseraCluster.StartSessionAsync(browser, Cluster.Nodes[0].Http, BurstClient);
        foreach (var node in Cluster.Nodes)
        {
            var answer = await TesseraCluster.RefreshAsync(node.Http, token, BurstClient);
            Assert.True(answer.Status == HttpStatusCode.OK, $"warm-up refresh on {node.Name}: {(int)answer.Status} {answer.Body}");
            token = answer.RefreshToken!;
        }
        var parallel = await Task.WhenAll(Enumerable.Range(0, 90).Select(i => TesseraCluster.RefreshAsync(Cluster.Nodes[i % 3].Http, token, BurstClient)));
        Assert.All(parallel, r => Assert.Equal(HttpStatusCode.OK, r.Status));
    }

    private Task<long> CountEventsAsync(string sessionId, string type) =>
        Cluster.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE session_id = @s AND type = @t", ("s", sessionId), ("t", type));

    /// <summary>The session's audit log except the retry-window replays, for failure messages.</summary>
    private async Task<string> EventsAsync(string sessionId)
    {
        await using var c = Cluster.OpenDatabase();
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT id, at, type, reason FROM audit_events WHERE session_id = @s AND type <> @retry ORDER BY id", c);
        cmd.Parameters.AddWithValue("s", sessionId);
        cmd.Parameters.AddWithValue("retry", AuditTypes.RefreshRetried);
        await using var r = await cmd.ExecuteReaderAsync();
        var lines = new List<string>();
        while (await r.ReadAsync()) lines.Add($"{r.GetInt64(0)} {DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)):HH:mm:ss.fff} {r.GetString(2)} {(r.IsDBNull(3) ? "" : r.GetString(3))}");
        return string.Join("\n", lines);
    }

    private async Task<string> SessionOfAsync(string refreshToken)
    {
        Assert.True(Core.Tokens.Handles.TryGetFamily(refreshToken, out var family));
        await using var c = Cluster.OpenDatabase();
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT id FROM sessions WHERE family_hash = @f", c);
        cmd.Parameters.AddWithValue("f", Core.Tokens.Handles.Hash(family));
        return (string)(await cmd.ExecuteScalarAsync() ?? throw new InvalidOperationException("no session for the token"));
    }
}
