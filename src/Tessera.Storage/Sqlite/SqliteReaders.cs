using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;

namespace Tessera.Storage.Sqlite;

/// <summary>
/// Read connections kept open with their prepared statements, so a hot query is bound and stepped, not parsed
/// again on every request. A connection serves one caller at a time (rented, then returned). In WAL mode
/// readers never wait for the writer, and each statement is reset when its reader is disposed, which ends its
/// read snapshot: the next use sees every commit made since.
/// </summary>
internal sealed class SqliteReaders(string connectionString) : IDisposable
{
    private const int MaxIdle = 64;
    private readonly ConcurrentBag<Reader> _idle = [];
    private volatile bool _disposed;

    internal sealed class Reader(SqliteConnection connection) : IDisposable
    {
        private readonly PreparedCommands _commands = new(connection);

        public SqliteCommand Command(string sql) => _commands.For(sql);

        public void Dispose()
        {
            _commands.Dispose();
            connection.Dispose();
        }
    }

    public Reader Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_idle.TryTake(out var r)) return r;
        var c = new SqliteConnection(connectionString);
        c.Open();
        using (var pragma = c.CreateCommand())
        {
            pragma.CommandText = "PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;";
            pragma.ExecuteNonQuery();
        }
        return new Reader(c);
    }

    /// <summary>A reader whose query threw is not returned: it is closed, and the next caller opens a fresh one.</summary>
    public void Return(Reader r, bool healthy)
    {
        if (!healthy || _disposed || _idle.Count >= MaxIdle)
        {
            r.Dispose();
            return;
        }
        _idle.Add(r);
        if (_disposed && _idle.TryTake(out var late)) late.Dispose();
    }

    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryTake(out var r)) r.Dispose();
    }
}
