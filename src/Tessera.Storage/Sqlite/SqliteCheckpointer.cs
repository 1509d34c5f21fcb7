using Microsoft.Data.Sqlite;

namespace Tessera.Storage.Sqlite;

/// <summary>
/// Copies the WAL back into the database file on its own connection and thread, so the writer never does it.
/// SQLite's automatic checkpoint runs inside the committing connection; with synchronous=NORMAL (or FULL) each one
/// fsyncs the WAL and the database file, and every queued write waited behind those fsyncs. Here the writer's
/// automatic checkpoint is only a safety net for a WAL this loop could not keep small.
/// <para>
/// Durability is unchanged: a passive checkpoint syncs the WAL before it copies and the database after, exactly as
/// the automatic one does, and a commit is acknowledged once its frames are in the WAL as before. Readers stay
/// cheap because a reader only searches the frames written after the last checkpoint.
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
    private readonly TimeSpan _interval;

    public SqliteCheckpointer(string connectionString, TimeSpan interval)
    {
        _interval = interval;
        _connection = new SqliteConnection(connectionString);
        _connection.Open();
        using (var pragma = _connection.CreateCommand())
        {
            // A restart waits for readers and the writer; a short wait, then the next round tries again.
            pragma.CommandText = "PRAGMA busy_timeout=200;";
            pragma.ExecuteNonQuery();
        }
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Frames in the WAL and frames already copied to the database, after this round.</summary>
    public (long Log, long Checkpointed) RunOnce()
    {
        var (busy, log, done) = Checkpoint("PASSIVE");
        if (busy == 0 && log > RestartAbovePages) (_, log, done) = Checkpoint("RESTART");
        return (log, done);
    }

    private (long Busy, long Log, long Done) Checkpoint(string mode)
    {
        using var cmd = _connection.CreateCommand();
        cmd.CommandText = $"PRAGMA wal_checkpoint({mode})";
        using var r = cmd.ExecuteReader();
        return r.Read() ? (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2)) : (1, 0, 0);
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(_interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    RunOnce();
                }
                catch (SqliteException)
                {
                    // Busy or a transient I/O error: the next round tries again, and the writer's safety net bounds the WAL.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
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
