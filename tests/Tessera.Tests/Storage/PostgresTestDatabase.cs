using Npgsql;

namespace Tessera.Tests.Storage;

/// <summary>
/// A throw-away database on the PostgreSQL server named by <c>TESSERA_TEST_POSTGRES</c> (./test.sh starts one and
/// sets it). Each instance creates its own database and drops it on disposal.
/// </summary>
internal sealed class PostgresTestDatabase : IAsyncDisposable
{
    public const string Variable = "TESSERA_TEST_POSTGRES";
    public const string MissingMessage = $"{Variable} is not set: run ./test.sh, which starts a throw-away PostgreSQL";

    private readonly string _adminConnectionString;

    private PostgresTestDatabase(string adminConnectionString, string name, string connectionString)
    {
        _adminConnectionString = adminConnectionString;
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }

    /// <summary>Connects to the new database.</summary>
    public string ConnectionString { get; }

    /// <summary>The server to test against. Its absence is a failure, never a skip, on CI and on a developer's machine.</summary>
    public static string ServerConnectionString()
    {
        var value = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrWhiteSpace(value)) return value;
        var where = string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"))
            ? "" : " (CI is set, and CI must run the PostgreSQL tests)";
        throw new InvalidOperationException(MissingMessage + where);
    }

    public static async Task<PostgresTestDatabase> CreateAsync()
    {
        var server = ServerConnectionString();
        // The admin connection is not pooled, so nothing of ours is left connected when the database is dropped.
        var admin = new NpgsqlConnectionStringBuilder(server) { Pooling = false }.ConnectionString;
        var name = $"tessera_test_{Guid.NewGuid():N}";
        await using (var c = new NpgsqlConnection(admin))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
            await cmd.ExecuteNonQueryAsync();
        }
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        return new PostgresTestDatabase(admin, name, connectionString);
    }

    public async ValueTask DisposeAsync()
    {
        await using var c = new NpgsqlConnection(_adminConnectionString);
        await c.OpenAsync();
        // FORCE ends connections still open to it (PostgreSQL 13+), for instance a pool a failed test left behind.
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", c);
        await cmd.ExecuteNonQueryAsync();
    }
}
