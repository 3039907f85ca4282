using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Realtime;

namespace Kiln.Tests.Realtime;

/// <summary>
/// A hub connection that reads its socket only when told to, for what the SignalR client cannot do: leave the
/// server's messages piling up in the socket buffers, as a client on a slow link does. It speaks SignalR's JSON
/// protocol (handshake, records separated by 0x1E) just far enough for that.
/// </summary>
internal sealed class SlowHubReader : IDisposable
{
    private const char Separator = '\u001e';

    private readonly ClientWebSocket _socket = new();
    private readonly StringBuilder _pending = new();

    public static async Task<SlowHubReader> ConnectAsync(Uri server, string apiKey, CancellationToken ct)
    {
        var reader = new SlowHubReader();
        var uri = new UriBuilder(new Uri(server, JobsHub.Path)) { Scheme = "ws", Query = "access_token=" + Uri.EscapeDataString(apiKey) }.Uri;
        await reader._socket.ConnectAsync(uri, ct);
        await reader.SendAsync("""{"protocol":"json","version":1}""", ct);
        await reader.ReadAsync(ct); // the handshake answer

        // One round trip: the handshake is answered before the hub has registered the connection.
        await reader.SendAsync("""{"type":1,"invocationId":"1","target":"leave-job","arguments":["00000000-0000-0000-0000-000000000001"]}""", ct);
        while ((await reader.ReadAsync(ct))?["type"]?.GetValue<int>() != 3)
        {
        }

        return reader;
    }

    /// <summary>
    /// Reads until the server closes the connection, answering <c>server-shutdown</c> as SignalR clients do; returns the
    /// targets of the invocations received, in order.
    /// </summary>
    public async Task<List<string>> ReadToCloseAsync(CancellationToken ct)
    {
        var targets = new List<string>();
        while (await ReadAsync(ct) is { } message)
        {
            if (message["type"]?.GetValue<int>() != 1)
            {
                continue;
            }

            var target = message["target"]!.GetValue<string>();
            targets.Add(target);
            if (target == ShutdownNotifier.Method && message["invocationId"] is { } id)
            {
                await SendAsync(new JsonObject { ["type"] = 3, ["invocationId"] = id.GetValue<string>(), ["result"] = null }.ToJsonString(), ct);
            }
        }

        return targets;
    }

    public void Dispose() => _socket.Dispose();

    private Task SendAsync(string json, CancellationToken ct) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(json + Separator), WebSocketMessageType.Text, true, ct);

    /// <summary>The next message, or null once the connection is closed.</summary>
    private async Task<JsonObject?> ReadAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var text = _pending.ToString();
            var end = text.IndexOf(Separator, StringComparison.Ordinal);
            if (end >= 0)
            {
                _pending.Remove(0, end + 1);
                return JsonNode.Parse(text[..end])!.AsObject();
            }

            WebSocketReceiveResult received;
            try
            {
                received = await _socket.ReceiveAsync(buffer, ct);
            }
            catch (WebSocketException)
            {
                return null; // the server went away without a close frame
            }

            if (received.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            _pending.Append(Encoding.UTF8.GetString(buffer, 0, received.Count));
        }
    }
}
