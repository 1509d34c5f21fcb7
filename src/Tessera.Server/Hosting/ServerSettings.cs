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
