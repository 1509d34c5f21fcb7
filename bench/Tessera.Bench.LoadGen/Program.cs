using System.Globalization;
using System.Net;
using System.Text.Json;
using Tessera.Bench.LoadGen;

// Tessera.Bench.LoadGen: token-workload load generator (see bench/README.md).
//
//   suite  --system name=flavor@url@pid@clientId@secret[@db=PID][@scenarios=a,b] ... --out DIR [--meta KEY=VALUE ...]
//          (several nodes of one system: url1,url2,url3@pid1,pid2,pid3; db: the database server's main pid, whose
//          CPU and its children's is reported apart; scenarios: this system runs only these)
//          runs every scenario interleaved (A B C A B C ...), then the open-loop latency run, writes DIR/raw.json
//          and the report (DIR/latest.md + PNG charts)
//   run    --system ... --scenario refresh|client_credentials|introspection|login|refresh_fixed_rate [--rate R]
//   report --out DIR    rebuilds latest.md and the charts from DIR/raw.json
//
// Durations and sizes come from the environment: BENCH_WARMUP (s), BENCH_DURATION (s), BENCH_REPS,
// BENCH_FIRST_WARMUP (s, first repetition), BENCH_CONCURRENCY, BENCH_LOGIN_CONCURRENCY, BENCH_SCENARIOS (comma list), BENCH_FIXED_RATE (1/0).

// Socket completions run on the socket engine's own threads instead of hopping to the thread pool: what follows a
// completion here is tiny (parse an answer, record a latency, send the next request), and on the two cores it
// shares with the server the hop cost the load generator about a third of its CPU. Read by the runtime when the
// first socket is used, so it is set before anything else. Only this process; the servers are started by run.sh.
Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

var command = args.FirstOrDefault() ?? "help";
List<string> All(string name) => args.Select((a, i) => (a, i)).Where(x => x.a == "--" + name && x.i + 1 < args.Length).Select(x => args[x.i + 1]).ToList();
string? One(string name) => All(name).LastOrDefault();
double Env(string name, double fallback) => double.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : fallback;

var settings = new Settings(
    WarmupSeconds: Env("BENCH_WARMUP", 2),
    DurationSeconds: Env("BENCH_DURATION", 8),
    Reps: (int)Env("BENCH_REPS", 3),
    Concurrency: (int)Env("BENCH_CONCURRENCY", 32),
    LoginConcurrency: (int)Env("BENCH_LOGIN_CONCURRENCY", 4),
    Scenarios: (Environment.GetEnvironmentVariable("BENCH_SCENARIOS") ?? "refresh,client_credentials,introspection,login")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
    FixedRate: Env("BENCH_FIXED_RATE", 1) != 0,
    FirstWarmupSeconds: Env("BENCH_FIRST_WARMUP", 10));

var jsonOptions = new JsonSerializerOptions { WriteIndented = true };

switch (command)
{
    case "suite":
    {
        var targets = All("system").Select(Target.Parse).ToList();
        var outDir = One("out") ?? "results";
        Directory.CreateDirectory(outDir);
        var meta = All("meta").Select(m => m.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
        using var http = NewHttpClient(settings.Concurrency);
        var runner = new Runner(http, settings, Console.Out);
        var results = new List<RunResult>();
        var started = DateTimeOffset.UtcNow;
        void Save() => File.WriteAllText(Path.Combine(outDir, "raw.json"), JsonSerializer.Serialize(new RawResults(settings, meta, started, DateTimeOffset.UtcNow, results), jsonOptions));

        Console.WriteLine($"suite: {targets.Count} systems, scenarios {string.Join(' ', settings.Scenarios)}, {settings.Reps} repetitions of {settings.WarmupSeconds}s warm-up + {settings.DurationSeconds}s, concurrency {settings.Concurrency} (login {settings.LoginConcurrency})");
        foreach (var t in targets.Where(t => t.SupportsLogin))
            await runner.SessionsAsync(t, settings.Concurrency);

        for (var rep = 1; rep <= settings.Reps; rep++)
        {
            foreach (var scenario in settings.Scenarios)
            {
                foreach (var t in targets.Where(t => Runner.Applies(t, scenario)))
                {
                    if (!ProcStats.Alive(t.Pids)) throw new InvalidOperationException($"{t.Name} (pid {t.Pid}) is not running any more");
                    var r = await runner.RunAsync(t, scenario, rep);
                    results.Add(r);
                    Print(r);
                    Save();
                }
            }
        }

        if (settings.FixedRate && settings.Scenarios.Contains(Runner.Refresh))
        {
            // Half of each system's own median maximum; Tessera's is the figure the targets speak of.
            var rates = targets.Where(t => Runner.Applies(t, Runner.RefreshFixedRate)).ToDictionary(t => t.Name, t => 0.5 * Report.Median(results.Where(r => r.System == t.Name && r.Scenario == Runner.Refresh && r.Failure is null).Select(r => r.Throughput)));
            Console.WriteLine("open-loop refresh at half of each system's median maximum: " + string.Join(", ", rates.Select(kv => $"{kv.Key} {kv.Value:F0}/s")));
            for (var rep = 1; rep <= settings.Reps; rep++)
            {
                foreach (var t in targets.Where(t => rates.GetValueOrDefault(t.Name) >= 1))
                {
                    var r = await runner.RunAsync(t, Runner.RefreshFixedRate, rep, rates[t.Name]);
                    results.Add(r);
                    Print(r);
                    Save();
                }
                // The machine's floor at Tessera's rate: the ceiling (no database) driven by the same open loop.
                if (targets.FirstOrDefault(t => t.Flavor == Flavor.Ceiling) is { } ceiling && rates.GetValueOrDefault(Report.TesseraName) >= 1)
                {
                    var r = await runner.RunAsync(ceiling, Runner.RefreshFixedRateFloor, rep, rates[Report.TesseraName]);
                    results.Add(r);
                    Print(r);
                    Save();
                }
            }
        }
        Save();
        Report.Write(outDir, JsonSerializer.Deserialize<RawResults>(File.ReadAllText(Path.Combine(outDir, "raw.json")))!);
        Console.WriteLine($"wrote {Path.Combine(outDir, "latest.md")}");
        return 0;
    }
    case "run":
    {
        var t = Target.Parse(One("system") ?? throw new ArgumentException("--system"));
        using var http = NewHttpClient(settings.Concurrency);
        var runner = new Runner(http, settings, Console.Out);
        var rate = One("rate") is { } rs ? double.Parse(rs, CultureInfo.InvariantCulture) : (double?)null;
        var r = await runner.RunAsync(t, One("scenario") ?? Runner.Refresh, 1, rate);
        Print(r);
        Console.WriteLine(JsonSerializer.Serialize(r, jsonOptions));
        return r.Failure is null ? 0 : 1;
    }
    case "report":
    {
        var outDir = One("out") ?? "results";
        Report.Write(outDir, JsonSerializer.Deserialize<RawResults>(File.ReadAllText(Path.Combine(outDir, "raw.json")))!);
        Console.WriteLine($"wrote {Path.Combine(outDir, "latest.md")}");
        return 0;
    }
    default:
        Console.WriteLine("usage: Tessera.Bench.LoadGen suite|run|report ... (see bench/README.md)");
        return command == "help" ? 0 : 2;
}

static HttpClient NewHttpClient(int concurrency) => new(new SocketsHttpHandler
{
    AllowAutoRedirect = false,
    UseCookies = false,
    AutomaticDecompression = DecompressionMethods.None,
    MaxConnectionsPerServer = Math.Max(concurrency * 2, 64),
    PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
    PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
    ConnectTimeout = TimeSpan.FromSeconds(10),
    UseProxy = false,
})
{
    Timeout = TimeSpan.FromSeconds(30),
};

static void Print(RunResult r)
{
    if (r.Failure is not null) return;
    var errors = r.Errors.Count == 0 ? "" : " errors: " + string.Join(", ", r.Errors.Select(kv => $"{kv.Key}×{kv.Value}"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"  [{r.Rep}] {r.Scenario,-19} {r.System,-14} {r.Throughput,9:F0}/s  p50 {r.P50Ms,6:F2} p90 {r.P90Ms,6:F2} p99 {r.P99Ms,7:F2} max {r.MaxMs,7:F1} ms  cpu {r.ServerCpuSeconds,5:F1}s ({r.ServerCpuUsPerOp:F0} µs/op){(r.DatabaseCpuSeconds is { } db ? $" + db {db:F1}s ({r.DatabaseCpuUsPerOp:F0} µs/op)" : "")}  rss {r.PeakRssMb:F0} MB{(r.Nodes > 1 ? $" (largest of {r.Nodes} nodes; cpu per node {string.Join(" ", (r.ServerCpuSecondsPerNode ?? []).Select(c => c.ToString("F1", CultureInfo.InvariantCulture)))}s)" : "")}  lost {r.SessionsLost}{errors}"));
}

public sealed record RawResults(Settings Settings, Dictionary<string, string> Meta, DateTimeOffset Started, DateTimeOffset Finished, List<RunResult> Results);
