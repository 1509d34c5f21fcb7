using System.Diagnostics;
using System.Threading.Channels;
using HdrHistogram;

namespace Tessera.Bench.LoadGen;

/// <summary>One measured run of one scenario against one system.</summary>
public sealed record RunResult
{
    public required string System { get; init; }
    public required string Scenario { get; init; }
    public required int Rep { get; init; }
    public int Concurrency { get; init; }
    public double Seconds { get; init; }
    public long Successes { get; init; }
    public double Throughput { get; init; }
    public Dictionary<string, long> Errors { get; init; } = [];
    public long SessionsLost { get; init; }
    public double P50Ms { get; init; }
    public double P90Ms { get; init; }
    public double P99Ms { get; init; }
    public double P999Ms { get; init; }
    public double MaxMs { get; init; }
    public double MeanMs { get; init; }
    /// <summary>Server processes (the system's nodes, summed).</summary>
    public int Nodes { get; init; } = 1;
    /// <summary>CPU seconds of the server processes over the window, summed over the nodes.</summary>
    public double ServerCpuSeconds { get; init; }
    /// <summary>Server CPU per successful operation, in microseconds.</summary>
    public double ServerCpuUsPerOp { get; init; }
    /// <summary>CPU seconds of each node over the window, in the order of the nodes (several nodes only: shows the load was spread).</summary>
    public double[]? ServerCpuSecondsPerNode { get; init; }
    /// <summary>CPU seconds of the separate database server (PostgreSQL: postmaster and its children) over the window; null without one.</summary>
    public double? DatabaseCpuSeconds { get; init; }
    public double? DatabaseCpuUsPerOp { get; init; }
    /// <summary>Peak RSS (VmHWM) of the largest node.</summary>
    public double PeakRssMb { get; init; }
    /// <summary>Peak RSS of each node, in the order of the nodes (several nodes only).</summary>
    public double[]? PeakRssPerNodeMb { get; init; }
    public double LoadGenCpuSeconds { get; init; }
    /// <summary>CPU seconds that processes other than the server, its database server and the load generator used during the window (a shared machine).</summary>
    public double OtherCpuSeconds { get; init; }
    /// <summary>Open-loop runs: the fixed rate asked for (operations per second).</summary>
    public double? TargetRate { get; init; }
    public string? Failure { get; init; }
}

public sealed record Settings(double WarmupSeconds, double DurationSeconds, int Reps, int Concurrency, int LoginConcurrency, IReadOnlyList<string> Scenarios, bool FixedRate, double FirstWarmupSeconds = 10);

/// <summary>Drives the scenarios. Closed loop: N virtual clients, each sends its next request when the last answered. Open loop: a fixed rate.</summary>
public sealed class Runner(HttpClient http, Settings settings, TextWriter log)
{
    public const string Refresh = "refresh";
    public const string ClientCredentials = "client_credentials";
    public const string Introspection = "introspection";
    public const string Login = "login";
    public const string RefreshFixedRate = "refresh_fixed_rate";
    /// <summary>The ceiling driven at Tessera's open-loop rate: what this machine and load generator add at that rate.</summary>
    public const string RefreshFixedRateFloor = "refresh_fixed_rate_floor";

    private readonly Dictionary<string, List<SessionState>> _pools = [];

    private readonly record struct Outcome(bool Ok, string? Error, bool SessionLost = false)
    {
        public static readonly Outcome Success = new(true, null);
    }

    public static bool Applies(Target t, string scenario) => (t.Scenarios is null || t.Scenarios.Contains(scenario)) && scenario switch
    {
        Login => t.SupportsLogin,
        Introspection => t.SupportsJwtIntrospection,
        _ => true,
    };

    /// <summary>Each virtual client's own session, made through the real authorization-code flow (not timed).</summary>
    public async Task<List<SessionState>> SessionsAsync(Target t, int count)
    {
        if (!_pools.TryGetValue(t.Name, out var pool)) _pools[t.Name] = pool = [];
        using var client = new OAuthClient(http, t);
        var missing = count - pool.Count;
        if (missing <= 0) return pool;
        var sw = Stopwatch.StartNew();
        var made = new SessionState[missing];
        using var gate = new SemaphoreSlim(Math.Max(1, settings.LoginConcurrency));
        await Task.WhenAll(Enumerable.Range(0, missing).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        made[i] = await client.LoginAsync(CancellationToken.None);
                        return;
                    }
                    catch (Exception e) when (attempt < 3 && e is FlowException or HttpRequestException or TaskCanceledException or IOException or System.Net.Sockets.SocketException)
                    {
                        await Task.Delay(200);
                    }
                }
            }
            finally
            {
                gate.Release();
            }
        }));
        pool.AddRange(made);
        log.WriteLine($"  seeded {missing} sessions on {t.Name} in {sw.Elapsed.TotalSeconds:F1}s");
        return pool;
    }

    public async Task<RunResult> RunAsync(Target t, string scenario, int rep, double? rate = null)
    {
        try
        {
            return scenario switch
            {
                Refresh => await RefreshClosedAsync(t, rep),
                ClientCredentials => await ClosedLoopAsync(t, scenario, rep, settings.Concurrency, (c, _, ct) => ClientCredentialsOnce(c, ct)),
                Introspection => await IntrospectionAsync(t, rep),
                Login => await ClosedLoopAsync(t, scenario, rep, settings.LoginConcurrency, (c, _, ct) => LoginOnce(c, ct)),
                RefreshFixedRate => await RefreshFixedRateAsync(t, rep, rate ?? throw new ArgumentException("rate")),
                RefreshFixedRateFloor => await RefreshFixedRateAsync(t, rep, rate ?? throw new ArgumentException("rate")) with { Scenario = RefreshFixedRateFloor },
                _ => throw new ArgumentException("unknown scenario " + scenario),
            };
        }
        catch (Exception e)
        {
            log.WriteLine($"  {t.Name} {scenario}: FAILED {e.GetType().Name}: {e.Message}");
            return new RunResult { System = t.Name, Scenario = scenario, Rep = rep, Failure = e.GetType().Name + ": " + e.Message, TargetRate = rate };
        }
    }

    private async Task<RunResult> RefreshClosedAsync(Target t, int rep)
    {
        var pool = await SessionsAsync(t, settings.Concurrency);
        return await ClosedLoopAsync(t, Refresh, rep, settings.Concurrency, (c, i, ct) => RefreshOnce(c, pool, i, ct));
    }

    private static async Task<Outcome> RefreshOnce(OAuthClient c, List<SessionState> pool, int i, CancellationToken ct)
    {
        var s = pool[i];
        var a = await c.RefreshAsync(s, ct);
        if (a.Ok && a.RefreshToken is not null && a.AccessToken is not null)
        {
            s.RefreshToken = a.RefreshToken;
            s.AccessToken = a.AccessToken;
            return Outcome.Success;
        }
        if (a.Ok) return new Outcome(false, "200 no_refresh_token");
        if (a.Error == "invalid_grant")
        {
            // The session is gone (a rotating service must lose none). Start a new one so the load stays the same.
            pool[i] = await c.LoginAsync(ct);
            return new Outcome(false, a.ErrorKey, SessionLost: true);
        }
        return new Outcome(false, a.ErrorKey);
    }

    private static async Task<Outcome> ClientCredentialsOnce(OAuthClient c, CancellationToken ct)
    {
        var a = await c.ClientCredentialsAsync(ct);
        return a.Ok && a.AccessToken is not null ? Outcome.Success : new Outcome(false, a.Ok ? "200 no_access_token" : a.ErrorKey);
    }

    private static async Task<Outcome> LoginOnce(OAuthClient c, CancellationToken ct)
    {
        try
        {
            await c.LoginAsync(ct);
            return Outcome.Success;
        }
        catch (FlowException e)
        {
            return new Outcome(false, e.Code);
        }
    }

    private async Task<RunResult> IntrospectionAsync(Target t, int rep)
    {
        // A live access token: a user's (from a refresh of a seeded session) where there are users, else a client's.
        using var client = new OAuthClient(http, t);
        string token;
        if (t.Flavor == Flavor.Ceiling)
        {
            token = (await client.ClientCredentialsAsync(CancellationToken.None)).AccessToken ?? throw new InvalidOperationException("no token from the ceiling");
        }
        else
        {
            var pool = await SessionsAsync(t, 1);
            var a = await client.RefreshAsync(pool[0], CancellationToken.None);
            if (!a.Ok || a.AccessToken is null || a.RefreshToken is null) throw new InvalidOperationException("could not refresh the introspection session: " + a.ErrorKey);
            pool[0].RefreshToken = a.RefreshToken;
            pool[0].AccessToken = token = a.AccessToken;
        }
        return await ClosedLoopAsync(t, Introspection, rep, settings.Concurrency, async (c, _, ct) =>
        {
            var a = await c.IntrospectAsync(token, ct);
            return a.Ok && a.Active == true ? Outcome.Success : new Outcome(false, a.Ok ? "200 inactive" : a.ErrorKey);
        });
    }

    /// <summary>
    /// N workers in a closed loop for warm-up + duration. A request counts when it started and ended inside the
    /// measured window. Workers stop by a flag, never by cancelling a request in flight (a cancelled refresh would
    /// leave the client without its newest token and look like reuse).
    /// </summary>
    private async Task<RunResult> ClosedLoopAsync(Target t, string scenario, int rep, int concurrency, Func<OAuthClient, int, CancellationToken, Task<Outcome>> op)
    {
        using var client = new OAuthClient(http, t);
        var stop = 0;
        long windowStart = long.MaxValue, windowEnd = long.MaxValue;
        var histograms = new LongHistogram[concurrency];
        var errors = new Dictionary<string, long>[concurrency];
        var successes = new long[concurrency];
        var lost = new long[concurrency];
        var workers = Enumerable.Range(0, concurrency).Select(i => Task.Run(async () =>
        {
            var h = histograms[i] = new LongHistogram(60_000_000, 3);
            var e = errors[i] = [];
            while (Volatile.Read(ref stop) == 0)
            {
                var t0 = Stopwatch.GetTimestamp();
                Outcome o;
                try
                {
                    o = await op(client, i, CancellationToken.None);
                }
                catch (Exception ex)
                {
                    o = new Outcome(false, "exception " + (ex is FlowException f ? f.Code : ex.GetType().Name));
                }
                var t1 = Stopwatch.GetTimestamp();
                if (t0 < Volatile.Read(ref windowStart) || t1 > Volatile.Read(ref windowEnd)) continue;
                if (o.Ok)
                {
                    successes[i]++;
                    h.RecordValue(Math.Max(1, (long)Stopwatch.GetElapsedTime(t0, t1).TotalMicroseconds));
                }
                else
                {
                    e[o.Error!] = e.GetValueOrDefault(o.Error!) + 1;
                    if (o.SessionLost) lost[i]++;
                    if (!o.SessionLost) await Task.Delay(5); // a refused request is not a reason to spin
                }
            }
        })).ToArray();

        var (before, seconds) = await MeasureWindowAsync(t, rep, () => Volatile.Write(ref windowStart, Stopwatch.GetTimestamp()), () => Volatile.Write(ref windowEnd, Stopwatch.GetTimestamp()));
        var after = Sample.Take(t);
        Volatile.Write(ref stop, 1);
        await Task.WhenAll(workers);

        var all = new LongHistogram(60_000_000, 3);
        foreach (var h in histograms) all.Add(h);
        var mergedErrors = new Dictionary<string, long>();
        foreach (var e in errors)
            foreach (var (k, v) in e) mergedErrors[k] = mergedErrors.GetValueOrDefault(k) + v;
        return Result(t, scenario, rep, concurrency, seconds, successes.Sum(), mergedErrors, lost.Sum(), all, before, after, null);
    }

    /// <summary>The /proc figures at one moment: the server's nodes, their database server, the load generator, the machine.</summary>
    private sealed record Sample(double[] NodeCpu, double? DatabaseCpu, double Self, double Busy, long[] PeakRssKb)
    {
        public double Cpu => NodeCpu.Sum();

        public static Sample Take(Target t) => new(
            t.Pids.Select(ProcStats.CpuSeconds).ToArray(),
            t.DatabasePid is { } db ? ProcStats.TreeCpuSeconds(db) : null,
            ProcStats.CpuSeconds(Environment.ProcessId),
            ProcStats.MachineBusySeconds(),
            t.Pids.Select(p => ProcStats.StatusKb(p, "VmHWM")).ToArray());
    }

    /// <summary>Warm-up, then the measured window: CPU read and peak RSS reset at its start.</summary>
    private async Task<(Sample Before, double Seconds)> MeasureWindowAsync(Target t, int rep, Action start, Action end)
    {
        // The first repetition of a scenario warms up longer: the JITs (.NET tiered compilation with dynamic PGO,
        // V8) are still recompiling hot code seconds after start, and that must not count against any system.
        await Task.Delay(TimeSpan.FromSeconds(rep == 1 ? Math.Max(settings.WarmupSeconds, settings.FirstWarmupSeconds) : settings.WarmupSeconds));
        ProcStats.ResetPeakRss(t.Pids);
        var before = Sample.Take(t);
        var sw = Stopwatch.StartNew();
        start();
        await Task.Delay(TimeSpan.FromSeconds(settings.DurationSeconds));
        end();
        return (before, sw.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Open loop at a fixed rate over the seeded sessions. Latency runs from the moment a request was due, not from
    /// when it could be sent, so a stalled server is not hidden (no coordinated omission). A session has at most
    /// one refresh in flight; when all are busy the next request waits, and its wait counts as latency.
    /// </summary>
    private async Task<RunResult> RefreshFixedRateAsync(Target t, int rep, double rate)
    {
        var pool = await SessionsAsync(t, settings.Concurrency);
        using var client = new OAuthClient(http, t);
        var idle = Channel.CreateUnbounded<int>();
        for (var i = 0; i < pool.Count; i++) idle.Writer.TryWrite(i);
        var h = new LongHistogram(60_000_000, 3);
        var gate = new object();
        var errors = new Dictionary<string, long>();
        long successes = 0, lost = 0, inFlight = 0;
        var freq = (double)Stopwatch.Frequency;
        var begin = Stopwatch.GetTimestamp();
        var warmEnd = begin + (long)(settings.WarmupSeconds * freq);
        var end = warmEnd + (long)(settings.DurationSeconds * freq);
        ProcStats.ResetPeakRss(t.Pids);
        Sample? before = null;
        long sent = 0;

        async Task Fire(int slot, long due)
        {
            Outcome o;
            try
            {
                o = await RefreshOnce(client, pool, slot, CancellationToken.None);
            }
            catch (Exception ex)
            {
                o = new Outcome(false, "exception " + ex.GetType().Name);
            }
            var done = Stopwatch.GetTimestamp();
            if (due >= warmEnd && due < end)
            {
                lock (gate)
                {
                    if (o.Ok)
                    {
                        successes++;
                        h.RecordValue(Math.Max(1, (long)Stopwatch.GetElapsedTime(due, done).TotalMicroseconds));
                    }
                    else
                    {
                        errors[o.Error!] = errors.GetValueOrDefault(o.Error!) + 1;
                        if (o.SessionLost) lost++;
                    }
                }
            }
            idle.Writer.TryWrite(slot);
            Interlocked.Decrement(ref inFlight);
        }

        while (true)
        {
            var now = Stopwatch.GetTimestamp();
            if (now >= end) break;
            if (before is null && now >= warmEnd)
            {
                ProcStats.ResetPeakRss(t.Pids);
                before = Sample.Take(t);
            }
            var dueCount = (long)((now - begin) / freq * rate);
            while (sent < dueCount)
            {
                var due = begin + (long)(sent / rate * freq);
                sent++;
                var slot = await idle.Reader.ReadAsync();
                Interlocked.Increment(ref inFlight);
                _ = Fire(slot, due);
            }
            await Task.Delay(1);
        }
        var after = Sample.Take(t);
        before ??= after;
        var drain = Stopwatch.StartNew();
        while (Interlocked.Read(ref inFlight) > 0 && drain.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(5);
        lock (gate)
            return Result(t, RefreshFixedRate, rep, pool.Count, settings.DurationSeconds, successes, errors, lost, h, before, after, rate);
    }

    private static RunResult Result(Target t, string scenario, int rep, int concurrency, double seconds, long successes, Dictionary<string, long> errors,
        long lost, LongHistogram h, Sample before, Sample after, double? rate)
    {
        double Ms(double percentile) => h.TotalCount == 0 ? 0 : h.GetValueAtPercentile(percentile) / 1000.0;
        var cpu = after.Cpu - before.Cpu;
        var selfCpu = after.Self - before.Self;
        double? dbCpu = after.DatabaseCpu is { } d1 && before.DatabaseCpu is { } d0 ? Math.Max(0, d1 - d0) : null;
        var peakKb = after.PeakRssKb.Max();
        return new RunResult
        {
            System = t.Name, Scenario = scenario, Rep = rep, Concurrency = concurrency, Seconds = seconds, Successes = successes,
            Throughput = successes / seconds, Errors = errors, SessionsLost = lost,
            P50Ms = Ms(50), P90Ms = Ms(90), P99Ms = Ms(99), P999Ms = Ms(99.9), MaxMs = h.TotalCount == 0 ? 0 : h.GetMaxValue() / 1000.0,
            MeanMs = h.TotalCount == 0 ? 0 : h.GetMean() / 1000.0,
            Nodes = t.Nodes, ServerCpuSeconds = cpu, ServerCpuUsPerOp = successes == 0 ? 0 : cpu / successes * 1e6,
            ServerCpuSecondsPerNode = t.Nodes > 1 ? after.NodeCpu.Zip(before.NodeCpu, (a, b) => a - b).ToArray() : null,
            DatabaseCpuSeconds = dbCpu, DatabaseCpuUsPerOp = dbCpu is { } db && successes > 0 ? db / successes * 1e6 : null,
            PeakRssMb = peakKb / 1024.0, PeakRssPerNodeMb = t.Nodes > 1 ? after.PeakRssKb.Select(k => k / 1024.0).ToArray() : null,
            LoadGenCpuSeconds = selfCpu, TargetRate = rate,
            OtherCpuSeconds = Math.Max(0, after.Busy - before.Busy - cpu - selfCpu - (dbCpu ?? 0)),
        };
    }
}
