using System.Globalization;
using System.Text;

namespace Kiln.Fetch;

/// <summary>A request head the <see cref="FetchProxy"/> received: <c>CONNECT host:port</c> or an absolute http URI.</summary>
internal sealed record ProxyRequest(string Method, string Target, string Version, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Leftover)
{
    // Hop-by-hop headers and the proxy credential never reach the origin.
    private static readonly string[] Dropped = ["Proxy-Authorization", "Proxy-Connection", "Connection", "Keep-Alive", "TE", "Upgrade"];

    public bool IsConnect => Method.Equals("CONNECT", StringComparison.OrdinalIgnoreCase);

    public string? Header(string name) => Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>Parses a head (without its blank line); null when it is not a well-formed HTTP/1.x request.</summary>
    public static ProxyRequest? Parse(string head, byte[] leftover)
    {
        var lines = head.Split("\r\n");
        var first = lines[0].Split(' ');
        if (first.Length != 3 || !first[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || first[0].Length == 0)
        {
            return null;
        }

        var headers = new List<KeyValuePair<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0)
            {
                return null;
            }

            headers.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
        }

        return new ProxyRequest(first[0], first[1], first[2], headers, leftover);
    }

    /// <summary>Where to connect: <c>host:port</c> of a CONNECT, or the host of an absolute <c>http://</c> URI (https goes by CONNECT).</summary>
    public static (string Host, int Port, string PathAndQuery)? Destination(ProxyRequest request)
    {
        if (request.IsConnect)
        {
            // host:port, [v6]:port
            var colon = request.Target.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(request.Target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                return null;
            }

            var host = request.Target[..colon];
            return host.Trim('[', ']').Length == 0 ? null : (host, port, "");
        }

        return Uri.TryCreate(request.Target, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp && uri.UserInfo.Length == 0
            ? (uri.IdnHost, uri.Port, uri.PathAndQuery)
            : null;
    }

    /// <summary>The head sent to the origin: origin-form request line, hop-by-hop headers dropped, one request per connection.</summary>
    public byte[] OriginFormHead(string pathAndQuery)
    {
        var head = new StringBuilder().Append(Method).Append(' ').Append(pathAndQuery).Append(' ').Append(Version).Append("\r\n");
        foreach (var (name, value) in Headers.Where(h => !Dropped.Contains(h.Key, StringComparer.OrdinalIgnoreCase)))
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        return Encoding.Latin1.GetBytes(head.Append("Connection: close\r\n\r\n").ToString());
    }
}
