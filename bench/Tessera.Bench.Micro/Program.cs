// Resource-server validation, in process (BenchmarkDotNet): the baseline row of issue 4 until Tessera's
// ResourceServer library (with its cache of validated tokens and revocation check) exists.
//
//   dotnet Tessera.Bench.Micro.dll [--out results/micro.json] [--quick]
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tessera.Bench.Micro;

[MemoryDiagnoser]
public class AccessTokenBenchmarks
{
    private const string Issuer = "http://127.0.0.1:5101";
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private ECDsaSecurityKey _key = null!;
    private SecurityTokenDescriptor _descriptor = null!;
    private TokenValidationParameters _parameters = null!;
    private string _token = null!;

    [GlobalSetup]
    public void Setup()
    {
        _key = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "bench-key" };
        var now = DateTime.UtcNow;
        // The shape of a Tessera access token (RFC 9068): typ at+jwt, iss, aud, sub, client_id, scope, sid, jti, times.
        _descriptor = new SecurityTokenDescriptor
        {
            Issuer = Issuer, Audience = "https://api.bench.example", IssuedAt = now, NotBefore = now, Expires = now.AddMinutes(5), TokenType = "at+jwt",
            Claims = new Dictionary<string, object>
            {
                ["client_id"] = "bench", ["jti"] = "Yl3oYk5vRzq0g2nq8Jd2Fw", ["sub"] = "doYCL1_NxWzKk_xpDQFRSw", ["scope"] = "offline_access api",
                ["sid"] = "q9Yw1bX0nP3u7m2kR8s6Tg", ["auth_time"] = new DateTimeOffset(now).ToUnixTimeSeconds(),
            },
            SigningCredentials = new SigningCredentials(_key, SecurityAlgorithms.EcdsaSha256),
        };
        _token = _handler.CreateToken(_descriptor);
        // What a resource server checks: signature by a published key, ES256 only, type, issuer, audience, lifetime.
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = Issuer, ValidAudience = "https://api.bench.example", ValidTypes = ["at+jwt"], ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            IssuerSigningKey = _key, RequireExpirationTime = true, TryAllIssuerSigningKeys = false,
        };
        if (!_handler.ValidateTokenAsync(_token, _parameters).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("setup token does not validate");
    }

    [Benchmark(Description = "Validate ES256 access token (JsonWebTokenHandler, no cache)")]
    public async Task<bool> ValidateEs256() => (await _handler.ValidateTokenAsync(_token, _parameters)).IsValid;

    [Benchmark(Description = "Create ES256 access token (JsonWebTokenHandler)")]
    public string CreateEs256() => _handler.CreateToken(_descriptor);
}

public static class MicroProgram
{
    public static int Main(string[] args)
    {
        var outIndex = Array.IndexOf(args, "--out");
        var output = outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : "micro.json";
        var quick = args.Contains("--quick");
        // In process (no child build), short: the figure is a baseline, not a regression gate.
        var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(quick ? 2 : 4).WithIterationCount(quick ? 4 : 8).WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(quick ? 250 : 500));
        var config = ManualConfig.CreateMinimumViable().AddJob(job).AddDiagnoser(MemoryDiagnoser.Default)
            .WithOptions(ConfigOptions.DisableOptimizationsValidator)
            .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "tessera-bench-bdn"));
        var summary = BenchmarkRunner.Run<AccessTokenBenchmarks>(config);
        var rows = summary.Reports.Where(r => r.ResultStatistics is not null).Select(r => new
        {
            name = r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo.Trim('\''),
            meanNs = r.ResultStatistics!.Mean,
            stdDevNs = r.ResultStatistics.StandardDeviation,
            allocatedBytes = r.GcStats.GetBytesAllocatedPerOperation(r.BenchmarkCase) ?? 0,
        }).ToList();
        File.WriteAllText(output, JsonSerializer.Serialize(new { rows, runtime = Environment.Version.ToString(), machine = Environment.MachineName }, new JsonSerializerOptions { WriteIndented = true }));
        foreach (var r in rows) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.name}: {r.meanNs / 1000:F1} µs ({1e9 / r.meanNs:F0}/s per core), {r.allocatedBytes} B"));
        return rows.Count == 2 ? 0 : 1;
    }
}
