using Tessera.Core.Passwords;

namespace Tessera.Server.Hosting;

/// <summary>Host-level settings under the <c>Tessera</c> section (the protocol settings are in TesseraOptions).</summary>
public sealed class ServerSettings
{
    /// <summary>Where the SQLite file, the development master key and the data-protection keys live. Default <c>data</c>.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary><c>sqlite</c> (default) or <c>postgres</c>.</summary>
    public string Store { get; set; } = "sqlite";

    /// <summary>SQLite file; default <c>{DataDirectory}/tessera.db</c>.</summary>
    public string? SqlitePath { get; set; }

    /// <summary>PRAGMA synchronous=FULL: fsync every commit. Default false (NORMAL: WAL, safe against crashes, may lose the last commits on power loss).</summary>
    public bool SqliteFullSync { get; set; }

    /// <summary>Npgsql connection string when Store is postgres.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>
    /// Base64 of 32 random bytes that encrypts signing keys and retry-window copies at rest. Required with postgres
    /// (every node must share it). With sqlite and none configured, one is generated in the data directory.
    /// </summary>
    public string? MasterKey { get; set; }

    /// <summary>Seed a demo confidential client, public client and user at start-up, and print how to try them.</summary>
    public bool Demo { get; set; }

    /// <summary>Argon2id memory in KiB (default 19456 = 19 MiB), iterations (2), parallelism (1): OWASP's minimum.</summary>
    public int Argon2MemoryKiB { get; set; } = 19456;
    public int Argon2Iterations { get; set; } = 2;
    public int Argon2Parallelism { get; set; } = 1;

    /// <summary>How often the pruning job runs. Default 5 minutes.</summary>
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Requests per minute per client IP; 0 turns a limit off. Behind a proxy, configure forwarded headers so the IP is the client's.</summary>
    public RateLimitSettings RateLimits { get; set; } = new();

    /// <summary>Growing pauses and temporary lockouts after failed sign-ins and client authentications, per source address.</summary>
    public ThrottlingSettings Throttling { get; set; } = new();

    public PasswordHashParameters Argon2 => new(Argon2MemoryKiB, Argon2Iterations, Argon2Parallelism);

    public IEnumerable<string> Validate()
    {
        if (Store is not ("sqlite" or "postgres"))
            yield return "Tessera:Store must be 'sqlite' or 'postgres'.";
        if (Store == "postgres" && string.IsNullOrWhiteSpace(PostgresConnectionString))
            yield return "Tessera:PostgresConnectionString is required when Tessera:Store is 'postgres', for example Host=db;Username=tessera;Password=…;Database=tessera.";
        if (Store == "postgres" && string.IsNullOrWhiteSpace(MasterKey))
            yield return "Tessera:MasterKey is required with postgres so every node can read the signing keys: set it to the Base64 of 32 random bytes (openssl rand -base64 32).";
        if (MasterKey is not null && !IsValidKey(MasterKey))
            yield return "Tessera:MasterKey must be the Base64 of exactly 32 bytes (openssl rand -base64 32).";
        if (Argon2MemoryKiB < 19456 || Argon2Iterations < 2 || Argon2Parallelism < 1)
            yield return "Tessera:Argon2MemoryKiB/Argon2Iterations/Argon2Parallelism must be at least OWASP's 19456/2/1.";
        if (RateLimits.Token < 0 || RateLimits.Login < 0 || RateLimits.Authorize < 0 || RateLimits.Other < 0)
            yield return "Tessera:RateLimits values are requests per minute per IP and cannot be negative (0 turns a limit off).";
        if (PruneInterval < TimeSpan.FromSeconds(1))
            yield return "Tessera:PruneInterval must be at least 00:00:01.";
        foreach (var problem in Throttling.Validate())
            yield return problem;
    }

    private static bool IsValidKey(string value)
    {
        Span<byte> buffer = stackalloc byte[64];
        return Convert.TryFromBase64String(value, buffer, out var n) && n == 32;
    }
}

/// <summary>Per-IP fixed-window limits (requests per minute) for each kind of endpoint.</summary>
public sealed class RateLimitSettings
{
    /// <summary>Token, revocation, introspection and feed endpoints. Default 6000 (100/s).</summary>
    public int Token { get; set; } = 6000;
    /// <summary>Sign-in form posts. Default 30.</summary>
    public int Login { get; set; } = 30;
    /// <summary>Authorization and consent. Default 600.</summary>
    public int Authorize { get; set; } = 600;
    /// <summary>Everything else (userinfo, account, admin API, discovery). Default 1200.</summary>
    public int Other { get; set; } = 1200;
}

/// <summary>
/// Failure throttles of the front door (<c>Tessera:Throttling</c>). Each counts failures per key in memory on this node
/// (in a cluster every node counts on its own), with at most <see cref="MaxTrackedEntries"/> keys per throttle.
/// </summary>
public sealed class ThrottlingSettings
{
    /// <summary>
    /// Failed sign-ins from one address, whatever the username (credential stuffing spreads over many accounts from
    /// few addresses). Default: 20 free, then a pause of 1 s doubling up to 5 min; from 50 failures a 1-hour lockout.
    /// </summary>
    public ThrottlePolicy LoginPerAddress { get; set; } = new()
    {
        PauseAfter = 20, FirstPause = TimeSpan.FromSeconds(1), MaxPause = TimeSpan.FromMinutes(5),
        LockoutAfter = 50, Lockout = TimeSpan.FromHours(1), ForgetAfter = TimeSpan.FromHours(1),
    };

    /// <summary>
    /// Failed client authentications from one address, whatever the client id (spraying many clients). Higher than the
    /// per-client threshold because machines behind one NAT address share it. Default: 50 free, 1 s doubling up to
    /// 5 min; from 200 failures a 15-minute lockout.
    /// </summary>
    public ThrottlePolicy ClientPerAddress { get; set; } = new()
    {
        PauseAfter = 50, FirstPause = TimeSpan.FromSeconds(1), MaxPause = TimeSpan.FromMinutes(5),
        LockoutAfter = 200, Lockout = TimeSpan.FromMinutes(15), ForgetAfter = TimeSpan.FromHours(1),
    };

    /// <summary>
    /// Failed authentications of one client id from one address (guessing one client's secret). Keyed by address too,
    /// so a guesser never locks the real client out at its own address. A success from that address clears the count.
    /// Default: 5 free, 1 s doubling up to 5 min; from 20 failures a 15-minute lockout.
    /// </summary>
    public ThrottlePolicy ClientPerClientAndAddress { get; set; } = new()
    {
        PauseAfter = 5, FirstPause = TimeSpan.FromSeconds(1), MaxPause = TimeSpan.FromMinutes(5),
        LockoutAfter = 20, Lockout = TimeSpan.FromMinutes(15), ForgetAfter = TimeSpan.FromHours(1),
    };

    /// <summary>
    /// The most keys each throttle tracks (default 50,000: at worst some tens of MiB per throttle). When full, expired keys go first, then the
    /// oldest ones not in a pause: memory stays bounded however many addresses or client ids an attacker uses.
    /// </summary>
    public int MaxTrackedEntries { get; set; } = 50_000;

    public IEnumerable<string> Validate()
    {
        foreach (var problem in LoginPerAddress.Validate("Tessera:Throttling:LoginPerAddress")) yield return problem;
        foreach (var problem in ClientPerAddress.Validate("Tessera:Throttling:ClientPerAddress")) yield return problem;
        foreach (var problem in ClientPerClientAndAddress.Validate("Tessera:Throttling:ClientPerClientAndAddress")) yield return problem;
        if (MaxTrackedEntries is < 100 or > 10_000_000)
            yield return "Tessera:Throttling:MaxTrackedEntries must be between 100 and 10000000 (keys tracked per throttle).";
    }
}

/// <summary>
/// One failure throttle: after <see cref="PauseAfter"/> failures each further failure starts a pause of
/// <see cref="FirstPause"/>, doubling with every failure up to <see cref="MaxPause"/>; from <see cref="LockoutAfter"/>
/// failures each one locks out for <see cref="Lockout"/>. Attempts refused during a pause are not counted. The count
/// is forgotten after <see cref="ForgetAfter"/> without failures (measured from the end of the last pause).
/// </summary>
public sealed class ThrottlePolicy
{
    /// <summary>Failures before the first pause; the failure that reaches it starts the pause. 0 turns this throttle off.</summary>
    public int PauseAfter { get; set; }

    /// <summary>The first pause; each further failure doubles it.</summary>
    public TimeSpan FirstPause { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest pause before a lockout.</summary>
    public TimeSpan MaxPause { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Failures from which each further failure locks out for <see cref="Lockout"/>; 0: never a lockout, only pauses.</summary>
    public int LockoutAfter { get; set; }

    /// <summary>How long a lockout lasts.</summary>
    public TimeSpan Lockout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>A key with no failure for this long (after its last pause ended) starts again from zero.</summary>
    public TimeSpan ForgetAfter { get; set; } = TimeSpan.FromHours(1);

    public bool Enabled => PauseAfter > 0;

    /// <summary>The pause the <paramref name="failures"/>-th failure starts (null: none yet), and whether it is a lockout.</summary>
    public (TimeSpan? Pause, bool Lockout) PauseFor(int failures)
    {
        if (!Enabled || failures < PauseAfter) return (null, false);
        if (LockoutAfter > 0 && failures >= LockoutAfter) return (Lockout, true);
        // FirstPause × 2^(failures − PauseAfter), capped without ever overflowing a TimeSpan.
        var doublings = failures - PauseAfter;
        if (doublings >= 62 || FirstPause.Ticks > MaxPause.Ticks >> doublings) return (MaxPause, false);
        return (TimeSpan.FromTicks(FirstPause.Ticks << doublings), false);
    }

    public IEnumerable<string> Validate(string name)
    {
        if (PauseAfter < 0)
            yield return $"{name}:PauseAfter cannot be negative (0 turns the throttle off).";
        if (!Enabled) yield break;
        if (FirstPause <= TimeSpan.Zero || MaxPause < FirstPause || MaxPause > TimeSpan.FromDays(1))
            yield return $"{name}:FirstPause must be positive and {name}:MaxPause at least as long and at most 1.00:00:00 (for example 00:00:01 and 00:05:00).";
        if (LockoutAfter < 0 || (LockoutAfter > 0 && LockoutAfter < PauseAfter))
            yield return $"{name}:LockoutAfter must be 0 (no lockout) or at least {name}:PauseAfter.";
        if (LockoutAfter > 0 && (Lockout <= TimeSpan.Zero || Lockout > TimeSpan.FromDays(1)))
            yield return $"{name}:Lockout must be positive and at most 1.00:00:00 (a lockout is temporary; disable accounts or clients for longer).";
        if (ForgetAfter < TimeSpan.FromSeconds(1) || ForgetAfter > TimeSpan.FromDays(7))
            yield return $"{name}:ForgetAfter must be between 00:00:01 and 7.00:00:00.";
    }
}
