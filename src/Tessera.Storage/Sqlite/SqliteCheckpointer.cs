using Microsoft.Data.Sqlite;

namespace Tessera.Storage.Sqlite;

/// <summary>
/// Copies the WAL back into the database file on its own connection and thread, so the writer never does it.
/// SQLite's automatic checkpoint runs inside the committing connection; with synchronous=NORMAL (or FULL) each one
/// fsyncs the WAL and the database file, and every queued write waited behind those fsyncs. Here the writer's
/// automatic checkpoint is only a safety net for a WAL this loop could not keep small.
/// <para>
/// Durability: this connection uses the store's synchronous setting, so a checkpoint syncs the WAL before it copies
/// and the database after, exactly as the automatic one does, and a commit is acknowledged once its frames are in the
/// WAL as before. With synchronous=NORMAL a power loss drops the commits since the last checkpoint, which now runs
/// every round. Keeping the WAL copied back also keeps reads cheap: a reader whose snapshot is fully copied back
/// reads the database file and does not search the WAL's index at all.
/// </para>
/// <para>
/// Under constant writes a passive checkpoint never finds the WAL fully copied when the writer begins its next
/// transaction, so the WAL would never start over; past <see cref="RestartAbovePages"/> a RESTART checkpoint holds the
/// writer back, copies the rest and waits (briefly) for readers. If a reader keeps the WAL longer than that wait, the
/// next restart is attempted only after a growing pause, so a long reader costs the writer at most one short wait
/// per pause.
/// </para>
/// </summary>
internal sealed class SqliteCheckpointer : IAsyncDisposable
{
    /// <summary>The writer's own automatic checkpoint, in pages, for when this loop falls behind (about 128 MB of 4 KiB pages).</summary>
    public const int WriterSafetyNetPages = 32768;

    /// <summary>Above this many frames (about 16 MB) the WAL is restarted from its beginning, which briefly holds the writer back.</summary>
    private const int RestartAbovePages = 4096;

    private readonly SqliteConnection _connection;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _restartPause;
    private int _roundsUntilRestart;

    public SqliteCheckpointer(string connectionString, TimeSpan interval, bool fullSync = false)
    {
        _connection = new SqliteConnection(connectionString);
        _connection.Open();
        using (var pragma = _connection.CreateCommand())
        {
            // The store's own setting, never the library's default: it decides whether a checkpoint syncs.
            // A restart holds the writer back while it waits for readers: 20 ms at most, then a pause (see above).
            pragma.CommandText = $"PRAGMA synchronous={(fullSync ? "FULL" : "NORMAL")}; PRAGMA busy_timeout=20;";
            pragma.ExecuteNonQuery();
        }
        // A round that fails is skipped; the writer's safety net bounds the WAL meanwhile.
        _loop = Task.Run(() => BackgroundRounds.RunAsync(interval, TimeProvider.System, runAtStart: false, () => RunOnce(), _stop.Token));
    }

    /// <summary>Frames in the WAL and frames already copied to the database, after this round.</summary>
    public (long Log, long Checkpointed) RunOnce()
    {
        var (busy, log, done) = Checkpoint("PASSIVE");
        if (busy != 0 || log <= RestartAbovePages) return (log, done);
        if (_roundsUntilRestart > 0)
        {
            _roundsUntilRestart--;
            return (log, done);
        }
        (busy, log, done) = Checkpoint("RESTART");
        // Could not finish (a reader kept the WAL): pause 10, 20, 40 ... up to 640 rounds before the next attempt.
        _restartPause = busy == 0 ? 0 : Math.Min(Math.Max(10, _restartPause * 2), 640);
        _roundsUntilRestart = _restartPause;
        return (log, done);
    }

    private (long Busy, long Log, long Done) Checkpoint(string mode)
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = $"PRAGMA wal_checkpoint({mode})";
        using var r = cmd.ExecuteReader();
        return r.Read() ? (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2)) : (1, 0, 0);
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _stop.Cancel();
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
        await _connection.DisposeAsync();
    }
}
