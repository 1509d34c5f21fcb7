using System.Net.Sockets;
using System.Text;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>
/// An HTTP/1.1 request written byte for byte on a socket, for what HttpClient will not send: the same header on two
/// lines (HttpClient folds repeated values into one comma-separated line).
/// </summary>
public static class RawHttp
{
    public sealed record Answer(int Status, IReadOnlyList<(string Name, string Value)> Headers)
    {
        public IEnumerable<string> All(string name) => Headers.Where(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);
    }

    public static async Task<Answer> SendAsync(string baseUrl, string method, string target, IEnumerable<(string Name, string Value)> headers)
    {
        var uri = new Uri(baseUrl);
        using var client = new TcpClient();
        await client.ConnectAsync(uri.Host, uri.Port);
        await using var stream = client.GetStream();
        var request = new StringBuilder($"{method} {target} HTTP/1.1\r\nHost: {uri.Authority}\r\nConnection: close\r\n");
        foreach (var (name, value) in headers) request.Append(name).Append(": ").Append(value).Append("\r\n");
        request.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var status = await reader.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("no status line");
        var answer = new List<(string, string)>();
        for (var line = await reader.ReadLineAsync(cts.Token); !string.IsNullOrEmpty(line); line = await reader.ReadLineAsync(cts.Token))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            answer.Add((line[..colon], line[(colon + 1)..].Trim()));
        }
        return new Answer(int.Parse(status.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), answer);
    }
}
