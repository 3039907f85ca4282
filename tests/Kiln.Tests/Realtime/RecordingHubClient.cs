using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Realtime;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace Kiln.Tests.Realtime;

/// <summary>A message the server sent to the client: an invocation of <see cref="Target"/> with one payload.</summary>
public sealed record HubEvent(string Target, JsonNode? Payload);

/// <summary>
/// The .NET SignalR client (<see cref="HubConnection"/>) connected to <c>/hubs/jobs</c> over WebSockets, as the
/// dashboard connects, recording every server message it can receive so a test can wait for one and then assert on
/// the whole sequence.
/// </summary>
public sealed class RecordingHubClient : IAsyncDisposable
{
    /// <summary>Every method the hub calls on clients; a message to a method without a handler would be dropped.</summary>
    private static readonly string[] Targets =
        [JobEventType.Queued, JobEventType.Update, JobEventType.Progress, JobEventType.Completed, JobEventType.Error, JobEventType.TranscriptUpdated, ShutdownNotifier.Method];

    /// <summary>Generous: the suite shares two cores with PostgreSQL and other test servers.</summary>
    private static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(60);

    private readonly HubConnection _connection;
    private readonly List<HubEvent> _events = [];
    private readonly TaskCompletionSource<Exception?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RecordingHubClient(HubConnection connection)
    {
        _connection = connection;
        foreach (var target in Targets)
        {
            // The client runs handlers one at a time in arrival order, so the list keeps the server's order.
            connection.On<JsonNode?>(target, payload => Record(new HubEvent(target, payload)));
        }

        connection.Closed += error =>
        {
            _closed.TrySetResult(error);
            return Task.CompletedTask;
        };
    }

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

    /// <summary>Completes when the connection closes (with the error that closed it, if any).</summary>
    public Task<Exception?> Closed => _closed.Task;

    public static async Task<RecordingHubClient> ConnectAsync(Uri server, string apiKey)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(server, JobsHub.Path), o =>
            {
                o.Transports = HttpTransportType.WebSockets;
                o.AccessTokenProvider = () => Task.FromResult<string?>(apiKey);
            })
            .Build();
        connection.HandshakeTimeout = DefaultWait;
        var client = new RecordingHubClient(connection);
        try
        {
            using var timeout = new CancellationTokenSource(DefaultWait);
            await connection.StartAsync(timeout.Token);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        return client;
    }

    /// <summary>Invokes a hub method and returns its result; a refusal by the hub throws <see cref="HubException"/>.</summary>
    public async Task<JsonNode?> InvokeAsync(string method, params object[] arguments)
    {
        using var timeout = new CancellationTokenSource(DefaultWait);
        return (JsonNode?)await _connection.InvokeCoreAsync(method, typeof(JsonNode), arguments, timeout.Token);
    }

    /// <summary>Waits for a server message to this client, from the first one received (earlier ones count).</summary>
    public async Task<HubEvent> WaitForAsync(string target, Func<JsonNode?, bool>? match = null, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? DefaultWait);
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

            try
            {
                await arrived.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                throw new TimeoutException($"No {target} arrived; got: {string.Join(", ", Events.Select(e => e.Target + " " + e.Payload?.ToJsonString()))}");
            }
        }
    }

    /// <summary>Events about one job, in order.</summary>
    public List<HubEvent> EventsFor(Guid jobId) =>
        [.. Events.Where(e => e.Payload?["jobId"]?.GetValue<Guid>() == jobId)];

    public ValueTask DisposeAsync() => _connection.DisposeAsync();

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
