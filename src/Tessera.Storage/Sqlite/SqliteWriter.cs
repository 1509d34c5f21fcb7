using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace Tessera.Storage.Sqlite;

/// <summary>
/// Every write goes through one connection on one thread, and the writes that queue up while a commit is under
/// way are committed together (group commit). SQLite has a single writer anyway; this turns its lock into a
/// queue and one commit for many writes. The writes of a batch run back to back in one transaction; if one throws,
/// the transaction is rolled back and the batch runs again with a savepoint per write, so one failing write fails
/// alone (a write that always fails thus costs its batch a second run). A caller hears back only after the commit
/// that holds its write: nothing is acknowledged before it is in the log. Each write is evaluated in order against
/// the result of the previous one, so compare-and-swap keeps its meaning.
/// </summary>
internal sealed class SqliteWriter : IAsyncDisposable
{
    private const int MaxBatch = 256;
    private readonly Channel<IWork> _queue = Channel.CreateUnbounded<IWork>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SqliteConnection _connection;
    private readonly Task _loop;
    private readonly PreparedCommands _commands;

    private interface IWork
    {
        void Run(SqliteWriter writer);
        void Complete();
        void Fail(Exception e);
    }

    private sealed class Work<T>(Func<SqliteWriter, T> body) : IWork
    {
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;
        public Task<T> Task => _tcs.Task;
        public void Run(SqliteWriter writer) => _result = body(writer);
        public void Complete() => _tcs.TrySetResult(_result);
        public void Fail(Exception e) => _tcs.TrySetException(e);
    }

    public SqliteWriter(string connectionString, Action<SqliteConnection> configure)
    {
        _connection = new SqliteConnection(connectionString);
        _connection.Open();
        configure(_connection);
        _commands = new PreparedCommands(_connection);
        // Its own thread, not the thread pool's: a batch runs for a few hundred microseconds, and on a small machine
        // taking one of the pool's few threads for that long held back the requests waiting to be read and answered.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop = done.Task;
        new Thread(() =>
        {
            try
            {
                Loop();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        { Name = "sqlite-writer", IsBackground = true }.Start();
    }

    public Task<T> WriteAsync<T>(Func<SqliteWriter, T> body)
    {
        var work = new Work<T>(body);
        if (!_queue.Writer.TryWrite(work)) throw new ObjectDisposedException(nameof(SqliteWriter));
        return work.Task;
    }

    /// <summary>A prepared command reused across writes; its parameters are cleared and refilled by the caller.</summary>
    public SqliteCommand Command(string sql) => _commands.For(sql);

    private void Loop()
    {
        var batch = new List<IWork>(MaxBatch);
        var reader = _queue.Reader;
        while (true)
        {
            var more = reader.WaitToReadAsync();
            if (!(more.IsCompleted ? more.Result : more.AsTask().GetAwaiter().GetResult())) break;
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var w)) batch.Add(w);
            if (!TryRunTogether(batch)) RunIsolated(batch);
        }
    }

    /// <summary>
    /// The common case: every write of the batch succeeds, so they run one after another in one transaction with
    /// nothing between them. If any throws, the whole transaction is rolled back (nothing of it was acknowledged)
    /// and <see cref="RunIsolated"/> runs the batch again with a savepoint per write. The bodies only touch the
    /// database, so running one again after a rollback is the same as running it once.
    /// </summary>
    private bool TryRunTogether(List<IWork> batch)
    {
        try
        {
            Exec("BEGIN IMMEDIATE");
            foreach (var w in batch) w.Run(this);
            Exec("COMMIT");
        }
        catch (Exception)
        {
            try { Exec("ROLLBACK"); } catch (SqliteException) { /* nothing was open */ }
            return false;
        }
        foreach (var w in batch) w.Complete();
        return true;
    }

    /// <summary>Each write in its own savepoint, so one failing write rolls back alone and fails alone.</summary>
    private void RunIsolated(List<IWork> batch)
    {
        var done = new List<IWork>(batch.Count);
        try
        {
            Exec("BEGIN IMMEDIATE");
            foreach (var w in batch)
            {
                Exec("SAVEPOINT w");
                try
                {
                    w.Run(this);
                    Exec("RELEASE w");
                    done.Add(w);
                }
                catch (Exception e)
                {
                    Exec("ROLLBACK TO w");
                    Exec("RELEASE w");
                    w.Fail(e);
                }
            }
            Exec("COMMIT");
            foreach (var w in done) w.Complete();
        }
        catch (Exception e)
        {
            try { Exec("ROLLBACK"); } catch (SqliteException) { /* nothing was open */ }
            foreach (var w in batch) w.Fail(e);
        }
    }

    private void Exec(string sql)
    {
        var cmd = Command(sql);
        cmd.ExecuteNonQuery();
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        _commands.Dispose();
        await _connection.DisposeAsync();
    }
}
