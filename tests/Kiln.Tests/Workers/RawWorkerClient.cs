using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Kiln.Tests.Workers;

/// <summary>
/// A hand-driven worker connection for protocol tests: sends whatever JSON (or garbage) a test wants and records
/// what the server answers, so forged and malformed messages can be tried.
/// </summary>
public sealed class RawWorkerClient : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly List<JsonObject> _received = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _receiver = Task.CompletedTask;
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RawWorkerClient(ClientWebSocket socket) => _socket = socket;

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    public IReadOnlyList<JsonObject> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    public static async Task<RawWorkerClient> ConnectAsync(Uri server, string token)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        var uri = new UriBuilder(new Uri(server, "/api/workers/connect")) { Scheme = "ws" }.Uri;
        await socket.ConnectAsync(uri, CancellationToken.None);
        var client = new RawWorkerClient(socket);
        client._receiver = Task.Run(client.ReceiveLoopAsync);
        return client;
    }

    /// <summary>Connects and says hello; returns the welcome.</summary>
    public static async Task<(RawWorkerClient Client, JsonObject Welcome)> HelloAsync(Uri server, string token, string name, string[] kinds, int slots)
    {
        var client = await ConnectAsync(server, token);
        await client.SendAsync(new JsonObject
        {
            ["type"] = "hello",
            ["name"] = name,
            ["version"] = "test",
            ["kinds"] = new JsonArray([.. kinds.Select(k => (JsonNode)k)]),
            ["slots"] = slots,
            ["protocol"] = 1,
        });
        return (client, await client.WaitForAsync("welcome"));
    }

    public Task SendAsync(JsonObject message) => SendRawAsync(message.ToJsonString());

    public async Task SendRawAsync(string text) =>
        await _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    /// <summary>Waits for a message of the type, from the first one received.</summary>
    public async Task<JsonObject> WaitForAsync(string type, Func<JsonObject, bool>? match = null, TimeSpan? timeout = null, int skip = 0)
    {
        // Waits on the arrival of messages, not on a timer; the timeout only turns a hang into a failure.
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(Poll.DefaultTimeoutSeconds));
        while (true)
        {
            Task arrived;
            lock (_received)
            {
                var found = _received.Where(m => m["type"]?.GetValue<string>() == type && (match?.Invoke(m) ?? true)).Skip(skip).FirstOrDefault();
                if (found is not null)
                {
                    return found;
                }

                arrived = _arrived.Task;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"No {type} arrived; got: {string.Join(" | ", Received.Select(m => m.ToJsonString()))}");
            }

            await Task.WhenAny(arrived, Task.Delay(left));
        }
    }

    /// <summary>The rejections received so far for a code.</summary>
    public int Rejections(string code) => Received.Count(m => m["type"]?.GetValue<string>() == "rejected" && m["code"]?.GetValue<string>() == code);

    public async Task WaitClosedAsync(TimeSpan timeout) => await _receiver.WaitAsync(timeout);

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
            }
            catch (WebSocketException)
            {
                // The server went first.
            }
        }

        await _receiver.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _stop.CancelAsync();
        _socket.Dispose();
        _stop.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        try
        {
            using var message = new MemoryStream();
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseStatus = result.CloseStatus;
                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    var node = JsonNode.Parse(Encoding.UTF8.GetString(message.ToArray()))!.AsObject();
                    message.SetLength(0);
                    lock (_received)
                    {
                        _received.Add(node);
                        var arrived = _arrived;
                        _arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        arrived.TrySetResult();
                    }
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            CloseStatus ??= WebSocketCloseStatus.Empty;
        }
    }
}
