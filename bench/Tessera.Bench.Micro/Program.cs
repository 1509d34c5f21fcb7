// Resource-server validation, in process (BenchmarkDotNet): raw JsonWebTokenHandler ES256 validation (the baseline),
// and Tessera.ResourceServer's token handler with its cache of validated tokens and its revocation check, with
// 100,000 revoked sessions in the revocation window (issue 4's and issue 6's targets).
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
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Tessera.ResourceServer;

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
        SetupLibrary();
    }

    [Benchmark(Description = "Validate ES256 access token (JsonWebTokenHandler, no cache)")]
    public async Task<bool> ValidateEs256() => (await _handler.ValidateTokenAsync(_token, _parameters)).IsValid;

    // ---- Tessera.ResourceServer: the token handler the library installs into JwtBearer --------------------------

    private const string Sid = "q9Yw1bX0nP3u7m2kR8s6Tg";
    private TesseraTokenHandler _library = null!;
    private RevocationState _revocations = null!;
    private long _iat;

    private void SetupLibrary()
    {
        _revocations = new RevocationState(TimeProvider.System);
        // The window holds 100,000 revoked sessions (and watermarks of 1,000 users), none of them this token's.
        for (var i = 0; i < 100_000; i++) _revocations.RevokeSession("revoked-session-" + i.ToString(CultureInfo.InvariantCulture), TimeSpan.FromMinutes(10));
        for (var i = 0; i < 1_000; i++) _revocations.RevokeBefore("revoked-user-" + i.ToString(CultureInfo.InvariantCulture), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), TimeSpan.FromMinutes(10));
        var options = new TesseraAccessTokenOptions { Authority = Issuer, Audience = "https://api.bench.example", RequireHttpsMetadata = false };
        _library = new TesseraTokenHandler(options, [SecurityAlgorithms.EcdsaSha256], _revocations, TimeProvider.System, NullLogger.Instance);
        _iat = new JsonWebToken(_token).GetPayloadValue<long>("iat");
        // The first validation verifies the signature and fills the cache; the benchmark measures the requests after it.
        if (!_library.ValidateTokenAsync(_token, _parameters).GetAwaiter().GetResult().IsValid) throw new InvalidOperationException("the library refuses the setup token");
        if (_library.Cache.Count != 1) throw new InvalidOperationException("the setup token was not cached");
    }

    [Benchmark(Description = "Tessera.ResourceServer: validate a repeated token (cache hit, revocation check included)")]
    public async Task<bool> ValidateWithLibraryCache() => (await _library.ValidateTokenAsync(_token, _parameters)).IsValid;

    [Benchmark(Description = "Tessera.ResourceServer: revocation check alone (100k revoked sessions in the window)")]
    public bool RevocationCheck() => _revocations.IsRevoked(Sid, "doYCL1_NxWzKk_xpDQFRSw", "bench", _iat);

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
        return rows.Count == 4 ? 0 : 1;
    }
}
