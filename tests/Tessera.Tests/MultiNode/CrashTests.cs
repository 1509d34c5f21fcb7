using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Xunit.Abstractions;
using Tessera.Core.Audit;
using Tessera.Core.Tokens;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.MultiNode;

/// <summary>
/// Crash safety: under refresh load across three nodes, one node is SIGKILLed in the middle and started again on its
/// port. Nothing acknowledged is lost: every refresh token a client received in a 200 either is its chain's newest and
/// still works, or was rotated by exactly one recorded rotation; no session forks or is revoked for reuse.
/// </summary>
[Collection(MultiNodeCollection.Name)]
public sealed class CrashTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Clients = 16;
    private static readonly TimeSpan LoadBeforeKill = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan DownTime = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LoadAfterRestart = TimeSpan.FromSeconds(2);
    private TesseraCluster? _cluster;

    private TesseraCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster did not start.");

    // The default 30-second retry window: a client whose answer died with the node asks again with the same token.
    public async Task InitializeAsync() => _cluster = await TesseraCluster.StartAsync(3);

    public async Task DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync();
    }

    /// <summary>One virtual client: its session's chain of refresh tokens, each received in a 200.</summary>
    private sealed class Chain(int index, string first)
    {
        public int Index { get; } = index;
        public List<string> Tokens { get; } = [first];
        public string Newest => Tokens[^1];
        public int Refreshes, TransportFailures;
        public string? SessionId;
    }

    [Fact]
    public async Task A_node_killed_under_refresh_load_and_restarted_loses_nothing_acknowledged_and_consumes_nothing_twice()
    {
        output.WriteLine(Cluster.StartupReport);
        var nodes = Cluster.Nodes;
        var victim = nodes[1];

        // Sixteen sessions of one signed-in browser, their codes exchanged on all three nodes.
        using var browser = nodes[0].NewClient(new CookieContainer());
        var chains = new List<Chain>();
        for (var i = 0; i < Clients; i++)
            chains.Add(new Chain(i, await TesseraCluster.StartSessionAsync(browser, nodes[i % 3].Http)));

        var unexpected = new ConcurrentQueue<string>();
        var servedByVictimAfterRestart = 0;
        var restarted = false;
        using var stop = new CancellationTokenSource();
        var total = Stopwatch.StartNew();

        async Task RunAsync(Chain chain)
        {
            var next = chain.Index;
            var failedLast = false;
            // After the stop signal a client still finishes a refresh whose answer it lost, so every rotation that
            // committed is acknowledged (through the retry window) before the checks; bounded by the attempt count.
            for (var attempt = 0; (!stop.IsCancellationRequested || failedLast) && attempt < 100_000; attempt++)
            {
                var node = nodes[next++ % nodes.Count];
                TokenAnswer answer;
                try
                {
                    answer = await TesseraCluster.RefreshAsync(node.Http, chain.Newest);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    // The node died under the request, or is down: the same token goes to the next node.
                    chain.TransportFailures++;
                    failedLast = true;
                    if (chain.TransportFailures > 5000) { unexpected.Enqueue($"client {chain.Index}: too many transport failures ({e.Message})"); return; }
                    await Task.Delay(10);
                    continue;
                }
                failedLast = false;
                if (answer.Status != HttpStatusCode.OK || answer.RefreshToken is not { } successor)
                {
                    unexpected.Enqueue($"client {chain.Index} on node {node.Name}: {(int)answer.Status} {answer.Body}");
                    return;
                }
                if (chain.Tokens.Contains(successor))
                {
                    unexpected.Enqueue($"client {chain.Index} on node {node.Name}: got an old token of its chain back (position {chain.Tokens.IndexOf(successor)} of {chain.Tokens.Count})");
                    return;
                }
                chain.Tokens.Add(successor);
                chain.Refreshes++;
                if (node == victim && Volatile.Read(ref restarted)) Interlocked.Increment(ref servedByVictimAfterRestart);
            }
        }

        var load = chains.Select(c => Task.Run(() => RunAsync(c))).ToList();

        await Task.Delay(LoadBeforeKill);
        var before = chains.Sum(c => c.Refreshes);
        victim.Kill();
        output.WriteLine($"killed node {victim.Name} after {before} refreshes at {total.ElapsedMilliseconds} ms");
        await Task.Delay(DownTime);
        await victim.StartAsync();
        Volatile.Write(ref restarted, true);
        output.WriteLine($"node {victim.Name} answering again at {total.ElapsedMilliseconds} ms");
        await Task.Delay(LoadAfterRestart);
        stop.Cancel();
        var finished = await Task.WhenAny(Task.WhenAll(load), Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.True(finished != null && load.All(t => t.IsCompleted), "the virtual clients did not stop within 20 s");
        await Task.WhenAll(load);
        output.WriteLine($"{chains.Sum(c => c.Refreshes)} refreshes acknowledged, {chains.Sum(c => c.TransportFailures)} transport failures, " +
            $"{servedByVictimAfterRestart} served by the restarted node, load ended at {total.ElapsedMilliseconds} ms");

        Assert.True(unexpected.IsEmpty, "unexpected answers:\n" + string.Join("\n", unexpected.Take(20)) + "\n" + Cluster.Logs());
        Assert.True(chains.Sum(c => c.TransportFailures) > 0 || before > 0, "the load never ran");
        Assert.All(chains, c => Assert.True(c.Refreshes > 0, $"client {c.Index} never refreshed"));
        Assert.True(servedByVictimAfterRestart > 0, "the restarted node served no refresh");

        // The database: every chain's newest token is its session's current one and the one before is the previous
        // one; no session is revoked; exactly one rotation was recorded per successor a client received; no reuse.
        await using (var db = Cluster.OpenDatabase())
        {
            foreach (var chain in chains)
            {
                Assert.True(Handles.TryGetFamily(chain.Newest, out var family));
                await using var cmd = new Npgsql.NpgsqlCommand("SELECT id, current_hash, previous_hash, revoked_at FROM sessions WHERE family_hash = @f", db);
                cmd.Parameters.AddWithValue("f", Handles.Hash(family));
                await using var r = await cmd.ExecuteReaderAsync();
                Assert.True(await r.ReadAsync(), $"client {chain.Index}: no session");
                chain.SessionId = r.GetString(0);
                Assert.Equal(Handles.Hash(chain.Newest), r.GetFieldValue<byte[]>(1));
                Assert.Equal(Handles.Hash(chain.Tokens[^2]), r.GetFieldValue<byte[]>(2));
                Assert.True(r.IsDBNull(3), $"client {chain.Index}: session revoked");
                Assert.False(await r.ReadAsync());
            }
        }
        Assert.Equal(Clients, chains.Select(c => c.SessionId).Distinct().Count());
        foreach (var chain in chains)
        {
            var rotations = await Cluster.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE session_id = @s AND type = @t", ("s", chain.SessionId!), ("t", AuditTypes.Refreshed));
            Assert.True(rotations == chain.Tokens.Count - 1,
                $"client {chain.Index}: {chain.Tokens.Count - 1} successors received, {rotations} rotations recorded");
        }
        Assert.Equal(0, await Cluster.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE type IN (@reuse, @refused)",
            ("reuse", AuditTypes.ReuseDetected), ("refused", AuditTypes.RefreshRefused)));
        Assert.Equal(0, await Cluster.ScalarAsync("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL"));

        // And the newest token of every chain still works, on any node (the restarted one included).
        foreach (var chain in chains)
        {
            var answer = await TesseraCluster.RefreshAsync(nodes[chain.Index % 3].Http, chain.Newest);
            Assert.True(answer.Status == HttpStatusCode.OK && answer.RefreshToken is not null && !chain.Tokens.Contains(answer.RefreshToken),
                $"client {chain.Index}: the newest acknowledged token was refused on node {nodes[chain.Index % 3].Name}: {(int)answer.Status} {answer.Body}");
        }
        Assert.True(total.Elapsed < TimeSpan.FromSeconds(90), $"the crash test took {total.Elapsed}");
    }
}
