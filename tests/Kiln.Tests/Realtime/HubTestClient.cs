using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Tests.Realtime;

/// <summary>A message the server sent to the client: an invocation of <see cref="Target"/> with one payload.</summary>
public sealed record HubEvent(string Target, JsonNode? Payload, DateTime ReceivedAt);

/// <summary>The hub answered an invocation with an error.</summary>
public sealed class HubInvocationException(string message) : Exception(message);

/// <summary>
/// Speaks SignalR's JSON hub protocol over a plain <see cref="ClientWebSocket"/> (the .NET SignalR client is not
/// installable here): handshake <c>{"protocol":"json","version":1}</c>, messages separated by 0x1E, invocations
/// (type 1) out, completions (type 3) and server invocations (type 1) in. Connects without negotiate, as the
/// JavaScript client does with <c>skipNegotiation</c>.
/// </summary>
public sealed class HubTestClient : IAsyncDisposable
{
    private const char Separator = '\u001e';

    private readonly ClientWebSocket _socket;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonNode?>> _pending = new();
    private readonly List<HubEvent> _events = [];
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task _receiver = Task.CompletedTask;
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextId;

    private HubTestClient(ClientWebSocket socket) => _socket = socket;

    /// <summary>Everything the server sent so far, in order.</summary>
    public IReadOnlyList<HubEvent> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    public bool Closed => _socket.State != WebSocketState.Open;

    public static async Task<HubTestClient> ConnectAsync(Uri server, string apiKey)
    {
        var uri = new UriBuilder(new Uri(server, "/hubs/jobs")) { Scheme = server.Scheme == "https" ? "wss" : "ws", Query = "access_token=" + Uri.EscapeDataString(apiKey) }.Uri;
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(uri, CancellationToken.None);
        var client = new HubTestClient(socket);
        await client.SendRawAsync("""{"protocol":"json","version":1}""");
        var handshake = await client.ReadFrameAsync(CancellationToken.None);
        var response = JsonNode.Parse(handshake.TrimEnd(Separator))!.AsObject();
        if (response["error"] is { } error)
        {
            throw new HubInvocationException("Handshake refused: " + error);
        }

        client._receiver = Task.Run(client.ReceiveLoopAsync);
        return client;
    }

    /// <summary>Invokes a hub method and returns its result; throws <see cref="HubInvocationException"/> with the hub's error.</summary>
    public async Task<JsonNode?> InvokeAsync(string target, params object[] arguments)
    {
        var id = Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var done = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = done;
        var message = new JsonObject
        {
            ["type"] = 1,
            ["invocationId"] = id,
            ["target"] = target,
            ["arguments"] = JsonSerializer.SerializeToNode(arguments),
        };
        await SendRawAsync(message.ToJsonString());
        return await done.Task.WaitAsync(TimeSpan.FromSeconds(15));
    }

    /// <summary>Waits for a server message to this client, from the first one received (earlier ones count).</summary>
    public async Task<HubEvent> WaitForAsync(string target, Func<JsonNode?, bool>? match = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            Task arrived;
            lock (_events)
            {
                var found = _events.FirstOrDefault(e => e.Target == target && (match?.Invoke(e.Payload) ?? true));
                if (found is not null)
                {
                    return found;
                }

                arrived = _arrived.Task;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"No {target} arrived; got: {string.Join(", ", Events.Select(e => e.Target + " " + e.Payload?.ToJsonString()))}");
            }

            await Task.WhenAny(arrived, Task.Delay(left));
        }
    }

    /// <summary>Events about one job, in order.</summary>
    public List<HubEvent> EventsFor(Guid jobId) =>
        [.. Events.Where(e => e.Payload?["jobId"]?.GetValue<Guid>() == jobId)];

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
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

        await _receiver.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        _sendLock.Dispose();
        _stop.Dispose();
    }

    private async Task SendRawAsync(string json)
    {
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(Encoding.UTF8.GetBytes(json + Separator), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task<string> ReadFrameAsync(CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer, ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new WebSocketException("closed");
            }

            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(message.ToArray());
            }
        }
    }

    private async Task ReceiveLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var frame = await ReadFrameAsync(_stop.Token);
                foreach (var part in frame.Split(Separator, StringSplitOptions.RemoveEmptyEntries))
                {
                    Handle(JsonNode.Parse(part)!.AsObject());
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            foreach (var pending in _pending.Values)
            {
                pending.TrySetException(new HubInvocationException("The connection closed."));
            }
        }
    }

    private void Handle(JsonObject message)
    {
        switch (message["type"]!.GetValue<int>())
        {
            case 1:
                var args = message["arguments"]!.AsArray();
                Record(new HubEvent(message["target"]!.GetValue<string>(), args.Count > 0 ? args[0]?.DeepClone() : null, DateTime.UtcNow));
                break;
            case 3:
                if (_pending.TryRemove(message["invocationId"]!.GetValue<string>(), out var done))
                {
                    if (message["error"] is { } error)
                    {
                        done.TrySetException(new HubInvocationException(error.GetValue<string>()));
                    }
                    else
                    {
                        done.TrySetResult(message["result"]?.DeepClone());
                    }
                }

                break;
            case 7:
                Record(new HubEvent("close", message["error"]?.DeepClone(), DateTime.UtcNow));
                break;
        }
    }

    private void Record(HubEvent hubEvent)
    {
        lock (_events)
        {
            _events.Add(hubEvent);
            var arrived = _arrived;
            _arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            arrived.TrySetResult();
        }
    }
}
