using System.Net;
using System.Net.Sockets;

namespace Tessera.Server.Throttling;

/// <summary>The address a throttle counts a request against.</summary>
public static class SourceAddress
{
    /// <summary>
    /// The bucket for connections without an address (in-process hosts): all of them share one count. The IPv4 broadcast
    /// address never opens a TCP connection, so no real client falls into it.
    /// </summary>
    public static readonly IPAddress Unknown = IPAddress.None;

    /// <summary>
    /// IPv4 as it is (an IPv4-mapped IPv6 address counts as its IPv4 address); IPv6 by its /64 prefix. One end site
    /// usually gets a /64 or more (RFC 6177 §2), so counting single IPv6 addresses would give an attacker 2^64 fresh
    /// counters. Behind a reverse proxy, configure forwarded headers so this is the client's address, not the proxy's.
    /// </summary>
    public static IPAddress Of(HttpContext http)
    {
        var address = http.Connection.RemoteIpAddress;
        if (address is null) return Unknown;
        if (address.AddressFamily == AddressFamily.InterNetwork) return address;
        if (address.IsIPv4MappedToIPv6) return address.MapToIPv4();
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written) || written != 16) return address;
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }

    /// <summary>How a bucket is shown in the audit log: an IPv6 bucket with its prefix length.</summary>
    public static string Display(IPAddress bucket) =>
        bucket.Equals(Unknown) ? "unknown" : bucket.AddressFamily == AddressFamily.InterNetworkV6 ? bucket + "/64" : bucket.ToString();
}
