using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Kiln.Fetch;

/// <summary>A connection the guard refused: a forbidden address or host. Never retried.</summary>
internal sealed class FetchForbiddenException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>
/// Decides, at connect time, whether an outgoing fetch connection may be opened. Checking the URL before the
/// request is not enough: a name can resolve to 127.0.0.1, or to a public address on the check and a private one on
/// the connect (DNS rebinding), and a redirect can point anywhere. So the check runs on the addresses the socket
/// actually connects to, for every connection the HTTP client opens (redirects included) and for every tunnel
/// yt-dlp asks the proxy for.
/// </summary>
internal sealed class AddressGuard(IOptions<FetchOptions> options)
{
    // Never reachable even with AllowPrivateNetworks: cloud metadata services answer here with credentials.
    private static readonly IPAddress[] Metadata = [IPAddress.Parse("169.254.169.254"), IPAddress.Parse("fd00:ec2::254")];

    /// <summary>Opens a TCP connection to <paramref name="host"/>:<paramref name="port"/> on an allowed address only.</summary>
    public async ValueTask<Socket> ConnectAsync(string host, int port, CancellationToken ct)
    {
        host = host.Trim('[', ']');
        CheckHost(host);
        IPAddress[] addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        var reasons = addresses.Select(a => (Address: a, Reason: Refusal(a, options.Value))).ToList();
        var allowed = reasons.Where(r => r.Reason is null).Select(r => r.Address).ToArray();
        if (allowed.Length == 0)
        {
            var first = reasons.FirstOrDefault();
            throw new FetchForbiddenException("fetch.forbidden_address",
                first.Address is null ? $"{host} has no address." : $"{host} resolves to {first.Address}, a {first.Reason} address; fetching from it is not allowed.");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, port, ct);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The <see cref="SocketsHttpHandler.ConnectCallback"/> that puts every HTTP connection through the guard.</summary>
    public async ValueTask<Stream> ConnectCallback(SocketsHttpConnectionContext context, CancellationToken ct) =>
        new NetworkStream(await ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, ct), ownsSocket: true);

    /// <summary>Refuses hosts on the deny list, or off the allow list when there is one.</summary>
    public void CheckHost(string host)
    {
        var o = options.Value;
        if (o.DeniedHosts.Any(d => Matches(host, d)))
        {
            throw new FetchForbiddenException("fetch.forbidden_host", $"The host {host} is on Kiln:Fetch:DeniedHosts.");
        }

        if (o.AllowedHosts.Count > 0 && !o.AllowedHosts.Any(a => Matches(host, a)))
        {
            throw new FetchForbiddenException("fetch.forbidden_host", $"The host {host} is not on Kiln:Fetch:AllowedHosts.");
        }
    }

    /// <summary>Why an address is refused under these settings (AllowedNetworks included), or null when it may be fetched from.</summary>
    public static string? Refusal(IPAddress address, FetchOptions options)
    {
        var unmapped = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return Refusal(address, options.AllowPrivateNetworks) is { } reason && (Metadata.Contains(unmapped) || !options.ParsedAllowedNetworks().Any(n => n.Contains(unmapped)))
            ? reason
            : null;
    }

    /// <summary>Why an address is refused ("loopback", "private"…), or null when it may be fetched from.</summary>
    public static string? Refusal(IPAddress address, bool allowPrivateNetworks)
    {
        // The mapped spelling ::ffff:169.254.169.254 reaches the same service.
        if (Metadata.Contains(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address))
        {
            return "cloud metadata";
        }

        var (kind, isPrivate) = Classify(address);
        return kind is null || (isPrivate && allowPrivateNetworks) ? null : kind;
    }

    /// <summary>The range an address falls in and whether it is a private-network one (allowed by the setting).</summary>
    private static (string? Kind, bool Private) Classify(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (address.IsIPv4MappedToIPv6)
            {
                return Classify(address.MapToIPv4());
            }

            Span<byte> b = stackalloc byte[16];
            address.TryWriteBytes(b, out _);
            if (address.Equals(IPAddress.IPv6None) || address.Equals(IPAddress.IPv6Any))
            {
                return ("unspecified", false);
            }

            if (address.Equals(IPAddress.IPv6Loopback))
            {
                return ("loopback", true);
            }

            // ::a.b.c.d (IPv4-compatible, deprecated), 64:ff9b::/96 (NAT64) and 2002::/16 (6to4) embed an IPv4 address.
            if (b[..12].IndexOfAnyExcept((byte)0) < 0)
            {
                return ("IPv4-compatible", false);
            }

            if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)
            {
                return Classify(new IPAddress(b[12..16])) is { Kind: { } k } ? (k, false) : (null, false);
            }

            if (b[0] == 0x20 && b[1] == 0x02)
            {
                return Classify(new IPAddress(b[2..6])) is { Kind: { } k } ? (k, false) : (null, false);
            }

            return b[0] switch
            {
                0xff => ("multicast", false),
                0xfc or 0xfd => ("unique-local", true),
                0xfe when (b[1] & 0xc0) == 0x80 => ("link-local", true),
                0xfe when (b[1] & 0xc0) == 0xc0 => ("site-local", true),
                0x20 when b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00 => ("Teredo", false),
                0x20 when b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 => ("documentation", false),
                _ => (null, false),
            };
        }

        Span<byte> v4 = stackalloc byte[4];
        address.TryWriteBytes(v4, out _);
        return (v4[0], v4[1]) switch
        {
            (0, _) => ("unspecified", false),
            (10, _) => ("private", true),
            (100, >= 64 and < 128) => ("CGNAT", true),
            (127, _) => ("loopback", true),
            (169, 254) => ("link-local", true),
            (172, >= 16 and < 32) => ("private", true),
            (192, 168) => ("private", true),
            (192, 0) when v4[2] is 0 or 2 => ("reserved", false),
            (198, 18 or 19) => ("benchmarking", false),
            (198, 51) when v4[2] == 100 => ("documentation", false),
            (203, 0) when v4[2] == 113 => ("documentation", false),
            ( >= 224 and < 240, _) => ("multicast", false),
            ( >= 240, _) => ("reserved", false),
            _ => (null, false),
        };
    }

    private static bool Matches(string host, string pattern) =>
        pattern.StartsWith('.')
            ? host.EndsWith(pattern, StringComparison.OrdinalIgnoreCase) || host.Equals(pattern[1..], StringComparison.OrdinalIgnoreCase)
            : host.Equals(pattern, StringComparison.OrdinalIgnoreCase);
}
