using System.Net.WebSockets;
using System.Text.Json;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Queue;
using Kiln.Storage;

namespace Kiln.Workers;

/// <summary>Everything a session needs from the server, resolved once.</summary>
internal sealed record WorkerSessionServices(
    IJobDispatcher Dispatcher,
    JobKindCatalog Catalog,
    JobSignals Signals,
    QueueWakeups Wakeups,
    BlobStore Blobs,
    JobTokens Tokens,
    WorkerStore Store,
    KilnMetrics Metrics,
    RemoteWorkerOptions Options,
    QueueOptions Queue,
    ILogger Logger);

/// <summary>
/// One connected remote worker, server side: the <c>hello</c>, then a dispatch loop pushing leases
/// (<see cref="WorkerDispatchLoop"/>) and a receive loop handing the worker's messages to
/// <see cref="WorkerReports"/>, which checks each before anything is written. Cancel, pause, stall and lost leases
/// reach the worker as <c>cancel</c>. When the connection ends, jobs still held go back to the queue: counted as
/// an attempt when the worker vanished (a job that crashes its worker must not loop forever), not counted when the
/// server ended the session on purpose (shutdown, revoked token).
/// </summary>
internal sealed class WorkerSession : IDisposable
{
    private static readonly string ConnectedLabels = KilnMetrics.Labels(("event", "connected"));
    private static readonly string DisconnectedLabels = KilnMetrics.Labels(("event", "disconnected"));

    private readonly MessageSocket _socket;
    private readonly WorkerSessionServices _s;
    private readonly CancellationTokenSource _leasing = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly RemoteJobSet _jobs = new();
    private WorkerReports? _reports;
    private long _lastHeardTicks = Environment.TickCount64;
    private long _lastTouchTicks = Environment.TickCount64;
    private volatile bool _giveBackOnEnd;

    public WorkerSession(MessageSocket socket, WorkerSessionServices services, Guid keyId, string node, string? address)
    {
        _socket = socket;
        _s = services;
        KeyId = keyId;
        Node = node;
        Address = address;
    }

    public string Id { get; private set; } = "";

    public Guid KeyId { get; }

    public string Node { get; }

    public string? Address { get; }

    public string Name { get; private set; } = "";

    public int RunningCount => _jobs.Count;

    /// <summary>Completes when the session has ended and its leases are settled.</summary>
    public Task Ended => _ended.Task;

    /// <summary>Stops handing out leases and tells the worker the server is stopping; running jobs may still finish.</summary>
    public void BeginShutdown(TimeSpan grace)
    {
        StopLeasing();
        _socket.Post(new ShutdownMessage(WorkerProtocol.Shutdown, "The server is shutting down; finish or give back running jobs.", grace.TotalSeconds));
    }

    /// <summary>Ends the session from the server side; its jobs go back to the queue without counting an attempt.</summary>
    public void End(WebSocketCloseStatus status, string reason)
    {
        _giveBackOnEnd = true;
        StopLeasing();
        foreach (var job in _jobs.All)
        {
            _socket.Post(new CancelMessage(WorkerProtocol.Cancel, job.Lease.JobId, job.Lease.LeaseId, "shutdown"));
        }

        _socket.PostClose(status, reason);
    }

    /// <summary>Runs the session to its end: hello, then messages until the worker goes or the session is ended.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var leasing = CancellationTokenSource.CreateLinkedTokenSource(session.Token, _leasing.Token);
        var sender = Task.Run(() => _socket.RunSenderAsync(session.Token), CancellationToken.None);
        Task? dispatch = null;
        Task? watchdog = null;
        try
        {
            var hello = await HandshakeAsync(session.Token);
            if (hello is null)
            {
                return;
            }

            var (kindsByQueue, slots) = hello.Value;
            _jobs.Slots.Add(slots);
            _reports = new WorkerReports(_s, _jobs, _socket, () => Id) { SessionToken = session.Token };
            await _s.Store.UpsertAsync(new WorkerRecord(Id, Name, HelloVersion, KeyId, Node, [.. kindsByQueue.Values.SelectMany(k => k)], slots, Address), session.Token);
            _s.Metrics.Increment("kiln_remote_worker_sessions_total", "Remote worker connections that said hello, and that ended.", ConnectedLabels);
            var loop = new WorkerDispatchLoop(_s, _jobs, _socket, Id, kindsByQueue, _reports.ForwardProgressAsync, OnStop);
            dispatch = Task.Run(() => loop.RunAsync(leasing.Token), CancellationToken.None);
            watchdog = Task.Run(() => WatchdogAsync(session.Token), CancellationToken.None);
            await ReceiveLoopAsync(_reports, session.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            _s.Logger.LogInformation("Worker {WorkerId} connection ended: {Reason}", Id, e.Message);
        }
        catch (Exception e)
        {
            _s.Logger.LogError(e, "Session of worker {WorkerId} failed", Id);
        }
        finally
        {
            StopLeasing();

            // Let a queued close go out before the socket is torn down; a dead socket fails the send at once.
            _socket.PostClose(WebSocketCloseStatus.NormalClosure, "bye");
            await sender.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await session.CancelAsync();
            await Task.WhenAll(new[] { sender, dispatch, watchdog }.OfType<Task>()).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await SettleAsync();
            _ended.TrySetResult();
        }
    }

    public void Dispose()
    {
        _leasing.Dispose();
        _jobs.Dispose();
    }

    private string HelloVersion { get; set; } = "";

    /// <summary>Reads and checks the <c>hello</c>; null (and the connection closing) when it is not acceptable.</summary>
    private async Task<(Dictionary<string, string[]> KindsByQueue, int Slots)?> HandshakeAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(_s.Options.HeartbeatTimeoutSeconds));
        var (outcome, bytes) = await _socket.ReceiveAsync(timeout.Token);
        if (outcome == ReceiveOutcome.Closed)
        {
            return null;
        }

        string? error = outcome switch
        {
            ReceiveOutcome.TooLarge => "too_large",
            ReceiveOutcome.Binary => "malformed",
            _ => null,
        };
        HelloMessage? hello = null;
        if (error is null)
        {
            var (document, type, readError) = WorkerProtocol.Read(bytes);
            using (document)
            {
                error = readError ?? (type != WorkerProtocol.Hello ? "hello_required" : null);
                hello = error is null ? WorkerProtocol.Bind<HelloMessage>(document!.RootElement) : null;
                error ??= hello is null ? "invalid_field" : null;
            }
        }

        var detail = hello is null ? null : WorkerProtocol.Validate(hello, _s.Options.MaxSlotsPerWorker);
        var served = hello?.Kinds.Distinct(StringComparer.Ordinal).Where(k => _s.Catalog.TryGet(k, out _)).ToArray() ?? [];
        if (error is null && detail is null && served.Length == 0)
        {
            (error, detail) = ("no_known_kinds", "none of the announced kinds is known to this server");
        }

        if (error is not null || detail is not null)
        {
            var code = error ?? "invalid_hello";
            _s.Metrics.Rejected(WorkerReports.Source, code);
            _s.Logger.LogWarning("Refused a worker from {Address}: {Code} {Detail}", Address, code, detail);
            _socket.Post(new RejectedMessage(WorkerProtocol.Rejected, code, detail ?? "The first message must be a valid hello.", WorkerProtocol.Hello));
            _socket.PostClose(WebSocketCloseStatus.PolicyViolation, "invalid hello");
            return null;
        }

        Name = hello!.Name;
        HelloVersion = hello.Version;
        Id = $"remote:{hello.Name}@{Node}#{Guid.NewGuid().ToString("N")[..8]}";
        var ignored = hello.Kinds.Except(served, StringComparer.Ordinal).ToArray();
        _s.Logger.LogInformation(
            "Worker {WorkerId} ({Version}) connected from {Address} with {Slots} slots for {Kinds}", Id, hello.Version, Address, hello.Slots, string.Join(", ", served));
        _socket.Post(new WelcomeMessage(
            WorkerProtocol.Welcome, Id, served, ignored, _s.Options.HeartbeatIntervalSeconds, _s.Options.MaxMessageBytes, WorkerProtocol.Version));
        var kindsByQueue = served.GroupBy(k => _s.Catalog.Get(k).Queue, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        return (kindsByQueue, hello.Slots);
    }

    private async Task ReceiveLoopAsync(WorkerReports reports, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var (outcome, bytes) = await _socket.ReceiveAsync(ct);
            Volatile.Write(ref _lastHeardTicks, Environment.TickCount64);
            switch (outcome)
            {
                case ReceiveOutcome.Closed:
                    _socket.PostClose(WebSocketCloseStatus.NormalClosure, "bye");
                    return;
                case ReceiveOutcome.TooLarge:
                    reports.Reject("too_large", $"Messages are limited to {_s.Options.MaxMessageBytes} bytes.", null, null);
                    continue;
                case ReceiveOutcome.Binary:
                    reports.Reject("malformed", "Messages are JSON text.", null, null);
                    continue;
            }

            var (document, type, error) = WorkerProtocol.Read(bytes);
            if (document is null)
            {
                reports.Reject(error!, "A message is a JSON object with a string type.", null, null);
                continue;
            }

            using (document)
            {
                await HandleAsync(reports, type!, document.RootElement, ct);
            }
        }
    }

    private async Task HandleAsync(WorkerReports reports, string type, JsonElement message, CancellationToken ct)
    {
        switch (type)
        {
            case WorkerProtocol.Heartbeat:
                await HeartbeatAsync(ct);
                break;
            case WorkerProtocol.Progress:
                reports.Progress(message);
                break;
            case WorkerProtocol.Complete:
                reports.Complete(message);
                break;
            case WorkerProtocol.Fail:
                reports.Fail(message);
                break;
            case WorkerProtocol.Release:
                reports.Release(message);
                break;
            case WorkerProtocol.Drain:
                _s.Logger.LogInformation("Worker {WorkerId} is draining: no more leases", Id);
                StopLeasing();
                break;
            case WorkerProtocol.Hello:
                reports.Reject("duplicate_hello", "hello is sent once, first.", type, null);
                break;
            default:
                reports.Reject("unknown_type", $"Unknown message type '{(type.Length <= 40 ? type : type[..40])}'.", null, null);
                break;
        }
    }

    /// <summary>Renews the leases of the worker's jobs, and its row in <c>workers</c> (at most once per interval).</summary>
    private async Task HeartbeatAsync(CancellationToken ct)
    {
        await _s.Dispatcher.HeartbeatAsync(Id, [.. _jobs.All.Select(j => j.Lease.LeaseId)], ct);
        var now = Environment.TickCount64;
        if (now - Volatile.Read(ref _lastTouchTicks) >= _s.Options.HeartbeatIntervalSeconds * 500)
        {
            Volatile.Write(ref _lastTouchTicks, now);
            await _s.Store.TouchAsync(Id, ct);
        }
    }

    /// <summary>Raised by <see cref="JobSignals"/> (cancel, pause, stall, lost lease), maybe on another thread: the lease is already gone.</summary>
    private void OnStop(RemoteJob job, JobStopReason reason)
    {
        if (!_jobs.TryStop(job))
        {
            return;
        }

        _socket.Post(new CancelMessage(WorkerProtocol.Cancel, job.Lease.JobId, job.Lease.LeaseId, ReasonName(reason)));
        _ = Task.Run(() => RemoteJobSet.DeleteStaging(job, _s.Blobs, _s.Logger));
        _jobs.Slots.Release();
    }

    /// <summary>A worker silent for the heartbeat timeout is cut off; its leases go back as a lost worker's.</summary>
    private async Task WatchdogAsync(CancellationToken ct)
    {
        var timeoutMs = (long)(_s.Options.HeartbeatTimeoutSeconds * 1000);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Min(1, _s.Options.HeartbeatIntervalSeconds)));
        while (await TimerTicks.NextAsync(timer, ct))
        {
            if (Environment.TickCount64 - Volatile.Read(ref _lastHeardTicks) > timeoutMs)
            {
                _s.Logger.LogWarning("Worker {WorkerId} silent for {Timeout}s; disconnecting it", Id, _s.Options.HeartbeatTimeoutSeconds);
                _s.Metrics.Rejected(WorkerReports.Source, "heartbeat_timeout");
                _socket.Abort();
                return;
            }
        }
    }

    /// <summary>After the connection ended: waits for reports being written, then puts every job still held back in the queue.</summary>
    private async Task SettleAsync()
    {
        await _jobs.ReportsWrittenAsync().WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        foreach (var job in _jobs.TakeAll())
        {
            try
            {
                if (_giveBackOnEnd)
                {
                    await _s.Dispatcher.ReleaseAsync(job.Lease.JobId, job.Lease.LeaseId, timeout.Token);
                }
                else
                {
                    await _s.Dispatcher.FailAsync(
                        new FailureReport(job.Lease.JobId, job.Lease.LeaseId, "worker_lost", $"The remote worker {Name} disconnected while running the job."),
                        timeout.Token);
                }
            }
            catch (Exception e)
            {
                _s.Logger.LogError(e, "Giving back job {JobId} of worker {WorkerId} failed; its lease will expire", job.Lease.JobId, Id);
            }

            RemoteJobSet.DeleteStaging(job, _s.Blobs, _s.Logger);
        }

        if (Id.Length == 0)
        {
            return;
        }

        try
        {
            await _s.Store.DisconnectedAsync(Id, timeout.Token);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or OperationCanceledException)
        {
            _s.Logger.LogWarning(e, "Could not record that worker {WorkerId} disconnected", Id);
        }

        _s.Logger.LogInformation("Worker {WorkerId} disconnected", Id);
        _s.Metrics.Increment("kiln_remote_worker_sessions_total", "Remote worker connections that said hello, and that ended.", DisconnectedLabels);
    }

    private void StopLeasing()
    {
        try
        {
            _leasing.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The session already ended: nothing leases on it.
        }
    }

    private static string ReasonName(JobStopReason reason) => reason switch
    {
        JobStopReason.Cancelled => "cancelled",
        JobStopReason.Paused => "paused",
        JobStopReason.LeaseLost => "lease_lost",
        JobStopReason.Stalled => "stalled",
        _ => reason.ToString().ToLowerInvariant(),
    };
}
