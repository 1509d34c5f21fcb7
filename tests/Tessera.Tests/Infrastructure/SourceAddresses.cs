using System.Net;
using System.Net.Sockets;

namespace Tessera.Tests.Infrastructure;

/// <summary>HTTP clients whose connections come from a chosen loopback address (all of 127.0.0.0/8 is this machine).</summary>
public static class SourceAddresses
{
    public static HttpClient CreateClientFrom(this TesseraTestServer server, IPAddress source, CookieContainer? cookies = null)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = true,
            CookieContainer = cookies ?? new CookieContainer(),
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(source, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri(server.Issuer + "/") };
    }
}
