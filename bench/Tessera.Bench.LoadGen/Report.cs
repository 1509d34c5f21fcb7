using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;

namespace Tessera.Bench.LoadGen;

/// <summary>Writes results/latest.md and the PNG charts from raw.json (and micro.json from BenchmarkDotNet when present).</summary>
public static class Report
{
    public const string TesseraName = "tessera";
    public const string CeilingName = "ceiling";

    /// <summary>Tessera itself ("tessera", on SQLite: the figures the targets speak of) and its other set-ups ("tessera-pg1", "tessera-pg3": PostgreSQL).</summary>
    public static bool IsTessera(string system) => system == TesseraName || system.StartsWith(TesseraName + "-", StringComparison.Ordinal);

    private static readonly string[] ScenarioOrder = [Runner.Refresh, Runner.ClientCredentials, Runner.Introspection, Runner.Login, Runner.RefreshFixedRate, Runner.RefreshFixedRateFloor];

    private static readonly Dictionary<string, string> ScenarioTitles = new()
    {
        [Runner.Refresh] = "Refresh rotation (closed loop)",
        [Runner.ClientCredentials] = "client_credentials",
        [Runner.Introspection] = "Introspection of a live access token",
        [Runner.Login] = "Full login: authorize + login form + code + PKCE exchange",
        [Runner.RefreshFixedRate] = "Refresh at a fixed rate (open loop, half of the system's max)",
        [Runner.RefreshFixedRateFloor] = "Floor: the ceiling at Tessera's open-loop rate",
    };

    private static readonly string[] Palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

    /// <summary>Each system keeps its colour whichever systems a run has.</summary>
    private static readonly Dictionary<string, string> SystemColors = new()
    {
        [TesseraName] = "#1f77b4", ["openiddict"] = "#ff7f0e", ["oidc-provider"] = "#2ca02c", [CeilingName] = "#7f7f7f",
        ["tessera-pg1"] = "#9467bd", ["tessera-pg3"] = "#8c564b",
    };

    public static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return 0;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private sealed record Figure(double Median, double Min, double Max);

    private static Figure Fig(IEnumerable<double> values)
    {
        var v = values.ToArray();
        return v.Length == 0 ? new Figure(0, 0, 0) : new Figure(Median(v), v.Min(), v.Max());
    }

    private static string F(double v) => v switch
    {
        >= 100 => v.ToString("F0", CultureInfo.InvariantCulture),
        >= 10 => v.ToString("F1", CultureInfo.InvariantCulture),
        _ => v.ToString("F2", CultureInfo.InvariantCulture),
    };

    private static string Mmm(Figure f) => $"{F(f.Median)} ({F(f.Min)}–{F(f.Max)})";

    public static void Write(string outDir, RawResults raw)
    {
        var ok = raw.Results.Where(r => r.Failure is null).ToList();
        var systems = raw.Results.Select(r => r.System).Distinct().ToList();
        var peers = systems.Where(s => !IsTessera(s) && s != CeilingName).ToList();
        var variants = systems.Where(s => IsTessera(s) && s != TesseraName).ToList();
        var withDatabase = ok.Any(r => r.DatabaseCpuSeconds is not null);
        var scenarios = ScenarioOrder.Where(s => ok.Any(r => r.Scenario == s)).ToList();
        Figure Tp(string system, string scenario) => Fig(ok.Where(r => r.System == system && r.Scenario == scenario).Select(r => r.Throughput));
        Figure P99(string system, string scenario) => Fig(ok.Where(r => r.System == system && r.Scenario == scenario).Select(r => r.P99Ms));
        bool Has(string system, string scenario) => ok.Any(r => r.System == system && r.Scenario == scenario);

        var md = new StringBuilder();
        var meta = raw.Meta;
        md.AppendLine("# Tessera benchmark: latest run");
        md.AppendLine();
        md.AppendLine($"Run {raw.Started:yyyy-MM-dd HH:mm} UTC to {raw.Finished:HH:mm} UTC, produced by `{meta.GetValueOrDefault("command", "bench/run.sh")}`.");
        md.AppendLine($"Machine: {meta.GetValueOrDefault("machine", "?")}. Load generator on the same machine; every server bound to 127.0.0.1.");
        md.AppendLine($"Each figure: {raw.Settings.Reps} repetitions of {F(raw.Settings.WarmupSeconds)} s warm-up (discarded; {F(raw.Settings.FirstWarmupSeconds)} s before the first repetition of each scenario) + {F(raw.Settings.DurationSeconds)} s measured, the systems interleaved " +
            $"(A B C … A B C …); median (min–max) over the repetitions. Closed loop with {raw.Settings.Concurrency} virtual clients ({raw.Settings.LoginConcurrency} for the login flow).");
        md.AppendLine($"Tessera: {meta.GetValueOrDefault("tessera", "SQLite")}.");
        md.AppendLine();
        var described = systems.Where(s => meta.ContainsKey("system:" + s)).ToList();
        if (described.Count > 0)
        {
            md.AppendLine("Systems:");
            md.AppendLine();
            foreach (var s in described) md.AppendLine($"- `{s}`: {meta["system:" + s]}");
            md.AppendLine();
        }
        if (meta.TryGetValue("postgres", out var postgres))
        {
            md.AppendLine($"PostgreSQL: {postgres}");
            md.AppendLine();
        }
        var other = ok.Where(r => r.Seconds > 0).Select(r => r.OtherCpuSeconds / r.Seconds).ToList();
        if (other.Count > 0 && Median(other) > 0.05)
        {
            md.AppendLine($"**The machine was shared during this run**: processes other than the server under test and the load generator used a median of {F(Median(other))} " +
                $"cores (up to {F(other.Max())}) of the 2 during the measured windows (column \"other processes' CPU\" below). Absolute figures are lower and noisier than on a quiet machine; " +
                "the interleaving spreads the disturbance over all systems, so the ratios are the figures to read.");
            md.AppendLine();
        }

        // ---- targets ------------------------------------------------------------------------------------------
        md.AppendLine("## Tessera against the targets of issue 4");
        md.AppendLine();
        md.AppendLine("| target | measured | met |");
        md.AppendLine("|---|---|---|");
        string FasterPeer(string scenario, out double value)
        {
            var best = peers.Where(p => Has(p, scenario)).Select(p => (p, Tp(p, scenario).Median)).OrderByDescending(x => x.Median).FirstOrDefault();
            value = best.Median;
            return best.p ?? "-";
        }
        foreach (var scenario in new[] { Runner.Refresh, Runner.ClientCredentials })
        {
            if (!Has(TesseraName, scenario)) continue;
            var t = Tp(TesseraName, scenario).Median;
            var peer = FasterPeer(scenario, out var pv);
            if (pv > 0) md.AppendLine($"| {scenario}: ≥ 5× the faster peer | {F(t / pv)}× ({F(t)}/s vs {peer} {F(pv)}/s) | {(t >= 5 * pv ? "yes" : "no")} |");
            if (scenario == Runner.Refresh && Has(CeilingName, scenario))
            {
                var c = Tp(CeilingName, scenario).Median;
                md.AppendLine($"| refresh: ≥ 50% of the ceiling | {F(100 * t / c)}% ({F(t)}/s vs {F(c)}/s) | {(t >= 0.5 * c ? "yes" : "no")} |");
            }
        }
        if (Has(TesseraName, Runner.RefreshFixedRate))
        {
            var p = P99(TesseraName, Runner.RefreshFixedRate);
            var rate = ok.First(r => r.System == TesseraName && r.Scenario == Runner.RefreshFixedRate).TargetRate ?? 0;
            var floor = Has(CeilingName, Runner.RefreshFixedRateFloor) ? $"; the ceiling at the same rate: {Mmm(P99(CeilingName, Runner.RefreshFixedRateFloor))} ms" : "";
            md.AppendLine($"| p99 at half of max refresh throughput ({F(rate)}/s, open loop) ≤ 15 ms | {Mmm(p)} ms{floor} | {(p.Median <= 15 ? "yes" : "no")} |");
        }
        if (Has(TesseraName, Runner.Refresh))
        {
            var rss = ok.Where(r => r.System == TesseraName && r.Scenario is Runner.Refresh or Runner.RefreshFixedRate).Max(r => r.PeakRssMb);
            md.AppendLine($"| peak RSS under the refresh load ≤ 250 MB | {F(rss)} MB (highest VmHWM of any refresh run) | {(rss <= 250 ? "yes" : "no")} |");
        }
        var lostTotal = ok.Where(r => r.System == TesseraName && r.Scenario is Runner.Refresh or Runner.RefreshFixedRate).Sum(r => r.SessionsLost);
        md.AppendLine($"| a rotating service loses no session | {lostTotal} sessions lost | {(lostTotal == 0 ? "yes" : "no")} |");
        foreach (var v in variants.Where(v => Has(v, Runner.Refresh)))
        {
            var lost = ok.Where(r => r.System == v && r.Scenario is Runner.Refresh or Runner.RefreshFixedRate).Sum(r => r.SessionsLost);
            md.AppendLine($"| {v}: a rotating service loses no session | {lost} sessions lost | {(lost == 0 ? "yes" : "no")} |");
        }
        var micro = ReadMicro(outDir);
        var uncached = micro.FirstOrDefault(m => m.Name.StartsWith("Validate", StringComparison.Ordinal));
        var cached = micro.FirstOrDefault(m => m.Name.Contains("cache hit", StringComparison.Ordinal));
        var revocation = micro.FirstOrDefault(m => m.Name.Contains("revocation check alone", StringComparison.Ordinal));
        if (cached is not null)
            md.AppendLine($"| resource-server validation with the library's cache ≥ 100k/s per core | {F(1e9 / cached.MeanNs)}/s per core ({F(cached.MeanNs / 1000)} µs; revocation check included){(uncached is null ? "" : $"; without a cache {F(1e9 / uncached.MeanNs)}/s")} | {(1e9 / cached.MeanNs >= 100_000 ? "yes" : "no")} |");
        else if (uncached is not null)
            md.AppendLine($"| resource-server validation ≥ 100k/s per core | baseline only: raw JsonWebTokenHandler ES256 validation {F(1e9 / uncached.MeanNs)}/s per core | n/a |");
        if (revocation is not null)
            md.AppendLine($"| revocation check adds ≤ 1 µs | {F(revocation.MeanNs)} ns with 100,000 revoked sessions in the window | {(revocation.MeanNs <= 1000 ? "yes" : "no")} |");
        md.AppendLine();

        // ---- ratios -------------------------------------------------------------------------------------------
        md.AppendLine("## Ratios (medians)");
        md.AppendLine();
        md.AppendLine("| scenario | Tessera ops/s | " + string.Join(" | ", peers.Select(p => $"{p} ops/s | Tessera/{p}")) + " | ceiling ops/s | Tessera/ceiling |");
        md.AppendLine("|---|---:|" + string.Concat(peers.Select(_ => "---:|---:|")) + "---:|---:|");
        foreach (var scenario in scenarios.Where(s => s is not (Runner.RefreshFixedRate or Runner.RefreshFixedRateFloor)))
        {
            var t = Has(TesseraName, scenario) ? Tp(TesseraName, scenario).Median : double.NaN;
            var row = new StringBuilder($"| {scenario} | {(double.IsNaN(t) ? "–" : F(t))} |");
            foreach (var p in peers)
            {
                if (!Has(p, scenario)) { row.Append(" – | – |"); continue; }
                var v = Tp(p, scenario).Median;
                row.Append($" {F(v)} | {(double.IsNaN(t) || v == 0 ? "–" : F(t / v) + "×")} |");
            }
            if (Has(CeilingName, scenario))
            {
                var c = Tp(CeilingName, scenario).Median;
                row.Append($" {F(c)} | {(double.IsNaN(t) || c == 0 ? "–" : F(100 * t / c) + "%")} |");
            }
            else
            {
                row.Append(" – | – |");
            }
            md.AppendLine(row.ToString());
        }
        md.AppendLine();
        md.AppendLine("The login flow is not a like-for-like comparison: Tessera checks a password with Argon2id " +
            $"({meta.GetValueOrDefault("argon2", "m=19456 KiB, t=2, p=1")}) behind a real login form with antiforgery; both peers log the test user in without any password check.");
        md.AppendLine();

        // ---- Tessera's other set-ups (PostgreSQL) ---------------------------------------------------------------
        if (variants.Count > 0)
        {
            var bases = new List<string> { TesseraName };
            bases.AddRange(variants.SkipLast(1));
            bases.AddRange(peers);
            if (systems.Contains(CeilingName)) bases.Add(CeilingName);
            md.AppendLine("## Tessera on PostgreSQL (medians)");
            md.AppendLine();
            md.AppendLine("Each row's ops/s divided by the figure of the system named in the column (ceiling: as a percentage). " +
                "CPU per operation: the Tessera processes (summed over the nodes) + PostgreSQL (postmaster and all its backends).");
            md.AppendLine();
            md.AppendLine("| scenario | system | ops/s | " + string.Join(" | ", bases.Select(b => $"/ {b}")) + " | Tessera CPU µs/op | PostgreSQL CPU µs/op |");
            md.AppendLine("|---|---|---:|" + string.Concat(bases.Select(_ => "---:|")) + "---:|---:|");
            foreach (var scenario in scenarios.Where(s => s is not (Runner.RefreshFixedRate or Runner.RefreshFixedRateFloor)))
            {
                foreach (var v in variants.Where(v => Has(v, scenario)))
                {
                    var t = Tp(v, scenario).Median;
                    var row = new StringBuilder($"| {scenario} | {v} | {F(t)} |");
                    foreach (var b in bases)
                    {
                        if (b == v || variants.IndexOf(b) > variants.IndexOf(v) || !Has(b, scenario) || Tp(b, scenario).Median == 0) { row.Append(" – |"); continue; }
                        var bv = Tp(b, scenario).Median;
                        row.Append(b == CeilingName ? $" {F(100 * t / bv)}% |" : $" {F(t / bv)}× |");
                    }
                    var rs = ok.Where(r => r.System == v && r.Scenario == scenario).ToList();
                    var db = rs.Where(r => r.DatabaseCpuUsPerOp is not null).Select(r => r.DatabaseCpuUsPerOp!.Value).ToList();
                    row.Append($" {F(Median(rs.Select(r => r.ServerCpuUsPerOp)))} | {(db.Count == 0 ? "–" : F(Median(db)))} |");
                    md.AppendLine(row.ToString());
                }
            }
            md.AppendLine();
            if (variants.Any(v => Has(v, Runner.RefreshFixedRate)))
            {
                foreach (var v in variants.Where(v => Has(v, Runner.RefreshFixedRate)))
                {
                    var rate = ok.First(r => r.System == v && r.Scenario == Runner.RefreshFixedRate).TargetRate ?? 0;
                    md.AppendLine($"- {v}: refresh p99 at half of its own maximum ({F(rate)}/s, open loop): {Mmm(P99(v, Runner.RefreshFixedRate))} ms.");
                }
                md.AppendLine();
            }
        }

        // ---- per-scenario detail ------------------------------------------------------------------------------
        md.AppendLine("## Every figure");
        md.AppendLine();
        md.AppendLine("Median (min–max) over the repetitions. Latency in ms from HdrHistogram (closed loop: send to answer; open loop: from the moment the request was due). " +
            "Server CPU: utime+stime of the server's pid from /proc/pid/stat over the measured window, per successful operation" +
            (withDatabase
                ? "; with several nodes, summed over the nodes' pids. " +
                  "PostgreSQL CPU: utime+stime of the postmaster and of all its children (backends, background workers; ended ones through the postmaster's cutime+cstime), per successful operation, and in cores; " +
                  "\"–\" for the systems whose store runs inside the server process (SQLite) or in memory. " +
                  "Peak RSS: VmHWM from /proc/pid/status, reset (clear_refs) at the start of each measured window; with several nodes, the largest node's (PostgreSQL's memory is not in it). " +
                  "Other processes' CPU: the machine's busy time less the server, PostgreSQL and the load generator."
                : ". Peak RSS: VmHWM from /proc/pid/status, reset (clear_refs) at the start of each measured window."));
        md.AppendLine();
        foreach (var scenario in scenarios)
        {
            md.AppendLine($"### {ScenarioTitles[scenario]}");
            md.AppendLine();
            md.AppendLine("| system | ops/s | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/op | server CPU cores | " + (withDatabase ? "PostgreSQL CPU µs/op (cores) | " : "") +
                "peak RSS MB | load-gen CPU cores | other processes' CPU cores | errors | sessions lost |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|" + (withDatabase ? "---:|" : "") + "---:|---:|---:|---|---:|");
            foreach (var system in systems)
            {
                var rs = ok.Where(r => r.System == system && r.Scenario == scenario).ToList();
                var failed = raw.Results.Where(r => r.System == system && r.Scenario == scenario && r.Failure is not null).ToList();
                if (rs.Count == 0 && failed.Count == 0) continue;
                if (rs.Count == 0)
                {
                    md.AppendLine($"| {system} | failed: {failed[0].Failure} | | | | | | | | | | | {(withDatabase ? " |" : "")}");
                    continue;
                }
                var errors = rs.SelectMany(r => r.Errors).GroupBy(kv => kv.Key).Select(g => $"{g.Key} ×{g.Sum(kv => kv.Value)}").ToList();
                var name = system + (rs[0].TargetRate is { } rate ? $" @ {F(rate)}/s" : "");
                var dbRuns = rs.Where(r => r.DatabaseCpuSeconds is not null).ToList();
                var dbCell = dbRuns.Count == 0 ? "–" : $"{F(Median(dbRuns.Select(r => r.DatabaseCpuUsPerOp ?? 0)))} ({F(Median(dbRuns.Select(r => r.DatabaseCpuSeconds!.Value / r.Seconds)))})";
                var rssCell = Mmm(Fig(rs.Select(r => r.PeakRssMb))) + (rs[0].Nodes > 1 ? $", largest of {rs[0].Nodes} nodes" : "");
                md.AppendLine($"| {name} | {Mmm(Fig(rs.Select(r => r.Throughput)))} | {Mmm(Fig(rs.Select(r => r.P50Ms)))} | {Mmm(Fig(rs.Select(r => r.P90Ms)))} | " +
                    $"{Mmm(Fig(rs.Select(r => r.P99Ms)))} | {Mmm(Fig(rs.Select(r => r.MaxMs)))} | {Mmm(Fig(rs.Select(r => r.ServerCpuUsPerOp)))} | " +
                    $"{F(Median(rs.Select(r => r.ServerCpuSeconds / r.Seconds)))} | {(withDatabase ? dbCell + " | " : "")}{rssCell} | {F(Median(rs.Select(r => r.LoadGenCpuSeconds / r.Seconds)))} | {F(Median(rs.Select(r => r.OtherCpuSeconds / r.Seconds)))} | " +
                    $"{(errors.Count == 0 ? "none" : string.Join(", ", errors))}{(failed.Count > 0 ? $"; {failed.Count} run(s) failed" : "")} | {rs.Sum(r => r.SessionsLost)} |");
            }
            md.AppendLine();
        }
        var skipped = systems.SelectMany(s => ScenarioOrder.Take(4).Where(sc => raw.Settings.Scenarios.Contains(sc) && !raw.Results.Any(r => r.System == s && r.Scenario == sc)).Select(sc => $"{s}: {sc}")).ToList();
        if (skipped.Count > 0)
        {
            md.AppendLine("Not run: " + string.Join("; ", skipped) + " (the ceiling has no users or login; node oidc-provider answers `unsupported_token_type` to the introspection of a JWT access token: " +
                "it introspects only the opaque tokens it stores" + (variants.Count > 0 ? "; the PostgreSQL set-ups run the scenarios of BENCH_PG_SCENARIOS" : "") + ").");
            md.AppendLine();
        }

        // ---- micro --------------------------------------------------------------------------------------------
        if (micro.Count > 0)
        {
            md.AppendLine("## Resource-server validation (BenchmarkDotNet, in-process, one thread)");
            md.AppendLine();
            md.AppendLine("| benchmark | mean | per second per core | allocated |");
            md.AppendLine("|---|---:|---:|---:|");
            foreach (var m in micro)
                md.AppendLine($"| {m.Name} | {F(m.MeanNs / 1000)} µs | {F(1e9 / m.MeanNs)} | {m.AllocatedBytes} B |");
            md.AppendLine();
            md.AppendLine("The library rows call Tessera.ResourceServer's token handler (the one `AddTesseraAccessTokens` installs into JwtBearer) " +
                "directly, for a bearer token already validated once; each call checks the token against the revocation state, which holds 100,000 " +
                "revoked sessions and 1,000 user watermarks. ASP.NET Core's JwtBearer handler around it (reading the header, the authentication " +
                "ticket) is not in these figures.");
            md.AppendLine();
        }

        // ---- charts -------------------------------------------------------------------------------------------
        var charts = Charts(outDir, ok, systems, scenarios);
        md.AppendLine("## Charts");
        md.AppendLine();
        foreach (var (file, title) in charts) md.AppendLine($"![{title}]({file})");
        md.AppendLine();
        if (meta.TryGetValue("notes", out var notes)) md.AppendLine(notes);
        File.WriteAllText(Path.Combine(outDir, "latest.md"), md.ToString());
    }

    private sealed record MicroRow(string Name, double MeanNs, long AllocatedBytes);

    private static List<MicroRow> ReadMicro(string outDir)
    {
        var path = Path.Combine(outDir, "micro.json");
        if (!File.Exists(path)) return [];
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("rows").EnumerateArray()
            .Select(e => new MicroRow(e.GetProperty("name").GetString()!, e.GetProperty("meanNs").GetDouble(), e.GetProperty("allocatedBytes").GetInt64()))
            .ToList();
    }

    private static List<(string File, string Title)> Charts(string outDir, List<RunResult> ok, List<string> systems, List<string> scenarios)
    {
        var files = new List<(string, string)>();
        Color ColorOf(string system) => Color.FromHex(SystemColors.GetValueOrDefault(system) ?? Palette[systems.IndexOf(system) % Palette.Length]);

        // Throughput: one panel per scenario, one bar per system (median), whiskers min–max.
        var closed = scenarios.Where(s => s is not (Runner.RefreshFixedRate or Runner.RefreshFixedRateFloor)).ToList();
        var panels = new List<Plot>();
        foreach (var scenario in closed)
        {
            var plot = new Plot();
            var present = systems.Where(s => ok.Any(r => r.System == s && r.Scenario == scenario)).ToList();
            for (var i = 0; i < present.Count; i++)
            {
                var values = ok.Where(r => r.System == present[i] && r.Scenario == scenario).Select(r => r.Throughput).ToList();
                var med = Median(values);
                var bar = plot.Add.Bar(new Bar { Position = i, Value = med, FillColor = ColorOf(present[i]), Label = F(med), CenterLabel = false });
                bar.ValueLabelStyle.FontSize = 13;
                var whisker = plot.Add.Line(i, values.Min(), i, values.Max());
                whisker.Color = Colors.Black;
                whisker.LineWidth = 2;
            }
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, present.Count).Select(i => (double)i).ToArray(), present.ToArray());
            plot.Axes.Margins(bottom: 0, top: 0.15);
            plot.Title(ScenarioTitles[scenario]);
            plot.YLabel(scenario == Runner.Login ? "logins/s" : "requests/s");
            panels.Add(plot);
        }
        files.Add((SaveGrid(outDir, "throughput.png", panels), "Throughput per system per scenario (median, whiskers min–max)"));

        // Latency percentiles: p50 / p90 / p99 per system, one panel per scenario (closed loops and the open loop).
        panels = [];
        string[] names = ["p50", "p90", "p99"];
        Color[] shades = [Color.FromHex("#9ecae1"), Color.FromHex("#4292c6"), Color.FromHex("#08519c")];
        foreach (var scenario in scenarios)
        {
            var plot = new Plot();
            var present = systems.Where(s => ok.Any(r => r.System == s && r.Scenario == scenario)).ToList();
            for (var i = 0; i < present.Count; i++)
            {
                var rs = ok.Where(r => r.System == present[i] && r.Scenario == scenario).ToList();
                double[] values = [Median(rs.Select(r => r.P50Ms)), Median(rs.Select(r => r.P90Ms)), Median(rs.Select(r => r.P99Ms))];
                for (var k = 0; k < 3; k++)
                {
                    var bar = plot.Add.Bar(new Bar { Position = i * 4 + k, Value = values[k], FillColor = shades[k], Label = F(values[k]), CenterLabel = false });
                    bar.ValueLabelStyle.FontSize = 10;
                }
            }
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, present.Count).Select(i => i * 4 + 1.0).ToArray(),
                present.Select(s => s + (scenario is Runner.RefreshFixedRate or Runner.RefreshFixedRateFloor && ok.FirstOrDefault(r => r.System == s && r.Scenario == scenario)?.TargetRate is { } rate ? $"\n@{F(rate)}/s" : "")).ToArray());
            for (var k = 0; k < 3; k++) plot.Legend.ManualItems.Add(new LegendItem { LabelText = names[k], FillColor = shades[k] });
            plot.Legend.IsVisible = true;
            plot.Legend.Alignment = Alignment.UpperLeft;
            plot.Axes.Margins(bottom: 0, top: 0.15);
            plot.Title(ScenarioTitles[scenario]);
            plot.YLabel("latency ms");
            panels.Add(plot);
        }
        files.Add((SaveGrid(outDir, "latency.png", panels), "Latency percentiles per system per scenario (median of the repetitions)"));
        return files;
    }

    /// <summary>Renders the panels two per row into one PNG.</summary>
    private static string SaveGrid(string outDir, string file, List<Plot> panels)
    {
        const int w = 720, h = 420;
        var columns = panels.Count == 1 ? 1 : 2;
        var rows = (panels.Count + columns - 1) / columns;
        using var surface = SkiaSharp.SKSurface.Create(new SkiaSharp.SKImageInfo(w * columns, h * rows));
        surface.Canvas.Clear(SkiaSharp.SKColors.White);
        for (var i = 0; i < panels.Count; i++)
        {
            using var image = SkiaSharp.SKImage.FromEncodedData(panels[i].GetImageBytes(w, h, ImageFormat.Png));
            surface.Canvas.DrawImage(image, i % columns * w, i / columns * h);
        }
        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        using var stream = File.Create(Path.Combine(outDir, file));
        data.SaveTo(stream);
        return file;
    }
}
