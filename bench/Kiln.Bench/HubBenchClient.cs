using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Kiln.Bench;

/// <summary>
/// A minimal hub client for the latency benchmark: SignalR's JSON protocol over a raw WebSocket, so the measured
/// latency is the server's and the socket's, without a client library's dispatch (the tests use the real .NET
/// client, <c>Microsoft.AspNetCore.SignalR.Client</c>). It follows one job at a time and, for every
/// <c>job-progress</c> whose totalBytes carries the worker's send time (test.sleep with <c>stamp</c>), records how
/// long it took to arrive.
/// </summary>
internal sealed class HubBenchClient : IAsyncDisposable
{
    private const byte Separator = 0x1e;

    private readonly ClientWebSocket _socket = new();
    private readonly List<double> _latenciesMs = [];
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<bool>? _pendingInvocation;
    private Guid _job;
    private Task _receiver = Task.CompletedTask;
    private int _nextId;

    public Task Completed => _completed.Task;

    public static async Task<HubBenchClient> ConnectAsync(Uri server, string key, CancellationToken ct)
    {
        var client = new HubBenchClient();
        var uri = new UriBuilder(new Uri(server, "/hubs/jobs")) { Scheme = "ws", Query = "access_token=" + Uri.EscapeDataString(key) }.Uri;
        await client._socket.ConnectAsync(uri, ct);
        await client.SendAsync("""{"protocol":"json","version":1}""", ct);
        client._receiver = Task.Run(client.ReceiveLoopAsync, CancellationToken.None);
        return client;
    }

    /// <summary>Stops following the current job (if any) and follows another; returns once the hub confirmed.</summary>
    public async Task FollowAsync(Guid jobId, CancellationToken ct)
    {
        if (_job != Guid.Empty)
        {
            await InvokeAsync("leave-job", _job, ct);
        }

        lock (_gate)
        {
            _job = jobId;
            _completed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        await InvokeAsync("join-job", jobId, ct);
    }

    /// <summary>The latencies recorded since the last call, in milliseconds.</summary>
    public List<double> TakeLatencies()
    {
        lock (_gate)
        {
            var taken = new List<double>(_latenciesMs);
            _latenciesMs.Clear();
            return taken;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        }
        catch (WebSocketException)
        {
            // Already gone.
        }

        await _receiver.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        _sendLock.Dispose();
    }

    private async Task InvokeAsync(string target, Guid jobId, CancellationToken ct)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pendingInvocation = done;
        var id = Interlocked.Increment(ref _nextId);
        await SendAsync($$"""{"type":1,"invocationId":"{{id}}","target":"{{target}}","arguments":["{{jobId}}"]}""", ct);
        if (!await done.Task.WaitAsync(TimeSpan.FromSeconds(60), ct))
        {
            throw new InvalidOperationException($"{target} {jobId} failed");
        }
    }

    private async Task SendAsync(string json, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(json + (char)Separator);
        await _sendLock.WaitAsync(ct);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, true, ct);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[8192];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }

                var now = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10;
                var data = message.GetBuffer().AsMemory(0, (int)message.Length);
                int start = 0, end;
                while ((end = data.Span[start..].IndexOf(Separator)) >= 0)
                {
                    Handle(data.Slice(start, end), now);
                    start += end + 1;
                }

                message.SetLength(0);
            }
        }
        catch (WebSocketException)
        {
            // The server went away; the benchmark notices by the missing completions.
        }
    }

    private void Handle(ReadOnlyMemory<byte> json, long nowMicros)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (!root.TryGetProperty("type", out var type))
        {
            return;
        }

        if (type.GetInt32() == 3)
        {
            _pendingInvocation?.TrySetResult(!root.TryGetProperty("error", out _));
            return;
        }

        if (type.GetInt32() != 1)
        {
            return;
        }

        var target = root.GetProperty("target").GetString();
        var payload = root.GetProperty("arguments")[0];
        if (!payload.TryGetProperty("jobId", out var job) || job.GetGuid() != _job)
        {
            return;
        }

        if (target == "job-progress" && payload.TryGetProperty("totalBytes", out var stamp))
        {
            lock (_gate)
            {
                _latenciesMs.Add((nowMicros - stamp.GetInt64()) / 1000.0);
            }
        }
        else if (target == "job-completed")
        {
            _completed.TrySetResult();
        }
    }
}
