using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace Tessera.Bench.LoadGen;

/// <summary>
/// The timed requests (refresh, client_credentials, introspection, the code exchange) as plain HTTP/1.1 form POSTs
/// over kept-alive TCP connections, one connection per request in flight. The load generator runs on the same two
/// cores as the server it measures, so every microsecond it spends is taken from the server: HttpClient cost about
/// 30-40 µs of CPU per request, this about a third of that. It speaks only what these requests need, and refuses
/// anything else loudly (an error counted in the report, never a guess):
/// a status line, headers, and a body framed by Content-Length or chunked transfer coding (RFC 9112 §6-7); a
/// response with "Connection: close" or framed by the end of the connection closes the connection afterwards.
/// </summary>
public sealed class RawHttpEndpoint : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A connection idle longer than this is closed rather than reused: servers close idle keep-alive connections
    /// (node's default after 5 s), and a POST is never sent again on a fresh connection after a failure (a refresh
    /// sent twice would be reuse), so a connection the server may have closed is not tried.
    /// </summary>
    private static readonly TimeSpan MaxIdle = TimeSpan.FromSeconds(2);
    private readonly string _host;
    private readonly int _port;
    private readonly byte[] _head;
    private readonly ConcurrentBag<Connection> _idle = [];
    private volatile bool _disposed;

    public RawHttpEndpoint(Uri url, string authorization)
    {
        _host = url.Host;
        _port = url.Port;
        _head = Encoding.ASCII.GetBytes(
            $"POST {url.PathAndQuery} HTTP/1.1\r\nHost: {url.Authority}\r\nAuthorization: {authorization}\r\n" +
            "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: ");
    }

    /// <summary>POSTs the (already URL-encoded, ASCII) form and returns the status and the whole body.</summary>
    public async Task<(int Status, byte[] Body)> PostAsync(string form)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Connection? c = null;
        while (_idle.TryTake(out var idle))
        {
            if (System.Diagnostics.Stopwatch.GetElapsedTime(idle.LastUsed) < MaxIdle) { c = idle; break; }
            idle.Dispose();
        }
        c ??= await Connection.OpenAsync(_host, _port);
        try
        {
            var (status, body, reusable) = await c.ExchangeAsync(_head, form, Timeout);
            if (reusable && !_disposed) _idle.Add(c);
            else c.Dispose();
            return (status, body);
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryTake(out var c)) c.Dispose();
    }

    private sealed class Connection : IDisposable
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _timeout = new();
        private byte[] _send = new byte[2048];
        private byte[] _buf = new byte[8192];
        private int _start, _end;

        public long LastUsed { get; private set; } = System.Diagnostics.Stopwatch.GetTimestamp();

        private Connection(Socket socket) => _socket = socket;

        public static async Task<Connection> OpenAsync(string host, int port)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(host, port);
                return new Connection(socket);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public async Task<(int Status, byte[] Body, bool Reusable)> ExchangeAsync(byte[] head, string form, TimeSpan timeout)
        {
            if (!_timeout.TryReset()) throw new InvalidOperationException("a timed-out connection is not reused");
            _timeout.CancelAfter(timeout);
            var ct = _timeout.Token;

            var length = form.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var size = head.Length + length.Length + 4 + form.Length;
            if (_send.Length < size) _send = new byte[size * 2];
            head.CopyTo(_send, 0);
            var n = head.Length;
            n += Encoding.ASCII.GetBytes(length, _send.AsSpan(n));
            "\r\n\r\n"u8.CopyTo(_send.AsSpan(n));
            n += 4;
            n += Encoding.ASCII.GetBytes(form, _send.AsSpan(n));
            for (var sent = 0; sent < n;)
                sent += await _socket.SendAsync(_send.AsMemory(sent, n - sent), SocketFlags.None, ct);

            // Status line and headers.
            int headerEnd;
            while ((headerEnd = _buf.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
                if (!await FillAsync(ct)) throw new IOException("the server closed the connection before its headers ended");
            var headers = Encoding.ASCII.GetString(_buf, _start, headerEnd);
            _start += headerEnd + 4;
            var lines = headers.Split("\r\n");
            var statusParts = lines[0].Split(' ', 3);
            if (statusParts.Length < 2 || !statusParts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(statusParts[1], out var status))
                throw new IOException("not an HTTP/1.x status line");
            long? contentLength = null;
            var chunked = false;
            var close = statusParts[0] == "HTTP/1.0";
            foreach (var line in lines.AsSpan(1))
            {
                var colon = line.IndexOf(':');
                if (colon <= 0) continue;
                var name = line.AsSpan(0, colon).Trim();
                var value = line.AsSpan(colon + 1).Trim();
                if (name.Equals("content-length", StringComparison.OrdinalIgnoreCase)) contentLength = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                else if (name.Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase)) chunked = value.EndsWith("chunked", StringComparison.OrdinalIgnoreCase);
                else if (name.Equals("connection", StringComparison.OrdinalIgnoreCase))
                {
                    if (value.Contains("close", StringComparison.OrdinalIgnoreCase)) close = true;
                    else if (value.Contains("keep-alive", StringComparison.OrdinalIgnoreCase)) close = false;
                }
            }
            if (status is >= 100 and < 200) throw new IOException($"unexpected interim response {status}");

            byte[] body;
            if (chunked)
            {
                using var ms = new MemoryStream();
                while (true)
                {
                    var line = await ReadLineAsync(ct);
                    var semicolon = line.IndexOf(';');
                    var chunk = Convert.ToInt32((semicolon < 0 ? line : line[..semicolon]).Trim(), 16);
                    if (chunk == 0)
                    {
                        while ((await ReadLineAsync(ct)).Length > 0) { } // trailer fields, then the empty line
                        break;
                    }
                    await EnsureAsync(chunk + 2, ct);
                    ms.Write(_buf, _start, chunk);
                    _start += chunk + 2;
                }
                body = ms.ToArray();
            }
            else if (contentLength is { } cl)
            {
                await EnsureAsync((int)cl, ct);
                body = _buf.AsSpan(_start, (int)cl).ToArray();
                _start += (int)cl;
            }
            else if (status is 204 or 304)
            {
                body = [];
            }
            else
            {
                // Framed by the end of the connection (RFC 9112 §6.3, last rule).
                while (await FillAsync(ct)) { }
                body = _buf.AsSpan(_start, _end - _start).ToArray();
                _start = _end;
                close = true;
            }
            if (_start == _end) _start = _end = 0;
            LastUsed = System.Diagnostics.Stopwatch.GetTimestamp();
            // Stops this exchange's timer; false if it fired meanwhile, and such a connection is not reused.
            var timerStopped = _timeout.TryReset();
            return (status, body, timerStopped && !close && _start == _end);
        }

        private async Task<string> ReadLineAsync(CancellationToken ct)
        {
            int eol;
            while ((eol = _buf.AsSpan(_start, _end - _start).IndexOf("\r\n"u8)) < 0)
                if (!await FillAsync(ct)) throw new IOException("the connection ended inside a chunked body");
            var line = Encoding.ASCII.GetString(_buf, _start, eol);
            _start += eol + 2;
            return line;
        }

        private async Task EnsureAsync(int count, CancellationToken ct)
        {
            while (_end - _start < count)
                if (!await FillAsync(ct)) throw new IOException("the connection ended inside a body");
        }

        /// <summary>Reads more bytes after those buffered; false at the end of the connection.</summary>
        private async Task<bool> FillAsync(CancellationToken ct)
        {
            if (_start > 0 && _start == _end) _start = _end = 0;
            if (_end == _buf.Length)
            {
                var target = _start > 0 ? _buf : new byte[_buf.Length * 2];
                Array.Copy(_buf, _start, target, 0, _end - _start);
                _end -= _start;
                _start = 0;
                _buf = target;
            }
            var read = await _socket.ReceiveAsync(_buf.AsMemory(_end), SocketFlags.None, ct);
            _end += read;
            return read > 0;
        }

        public void Dispose()
        {
            _socket.Dispose();
            _timeout.Dispose();
        }
    }
}
