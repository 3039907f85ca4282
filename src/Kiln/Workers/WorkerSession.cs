using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Storage;

namespace Kiln.Workers;

/// <summary>A job leased to a remote worker over this connection.</summary>
internal sealed class RemoteJob(JobLease lease)
{
    public JobLease Lease { get; } = lease;

    public IDisposable? Signal { get; set; }

    public ProgressPump? Progress { get; set; }

    public string OutputDirectory(BlobStore blobs) => new JobDirectories(blobs.JobsTemp, Lease.JobId, Lease.LeaseId).OutputPath;
}

/// <summary>Everything a session needs from the server, resolved once per connection.</summary>
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
/// One connected remote worker, server side. After its <c>hello</c> the server pushes leases to it from a dispatch
/// loop (no polling: it sleeps on the queue's wake-up), and every message the worker sends is checked — type, size,
/// fields, that the job and lease are this connection's — before anything reaches the dispatcher; anything else is
/// answered with <c>rejected</c> and counted. Cancel, pause, stall and lost leases reach the worker as <c>cancel</c>.
/// When the connection ends, jobs still held go back to the queue: counted as an attempt when the worker vanished
/// (a job that crashes its worker must not loop forever), not counted when the worker gave them back or the server
/// ended the session (shutdown, revoked token).
/// </summary>
internal sealed partial class WorkerSession : IDisposable
{
    private const string Source = "remote_worker";
    private const string LeaseNotHeld = "lease_not_held";
    private static readonly string ConnectedLabels = KilnMetrics.Labels(("event", "connected"));
    private static readonly string DisconnectedLabels = KilnMetrics.Labels(("event", "disconnected"));

    private readonly MessageSocket _socket;
    private readonly WorkerSessionServices _s;
    private readonly ConcurrentDictionary<Guid, RemoteJob> _jobs = new();
    private readonly ConcurrentDictionary<Task, byte> _finishing = new();

    // Leases the server took back (cancel, pause, stall, lost): the worker may have sent a report before it heard.
    private readonly ConcurrentDictionary<Guid, Guid> _stopped = new();
    private readonly SemaphoreSlim _slotFreed = new(0, 1);
    private readonly CancellationTokenSource _leasing = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastHeardTicks = Environment.TickCount64;
    private long _lastTouchTicks = Environment.TickCount64;
    private int _free;
    private CancellationToken _sessionToken;
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

    public int Slots { get; private set; }

    public IReadOnlyDictionary<string, string[]> KindsByQueue { get; private set; } = new Dictionary<string, string[]>();

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
        foreach (var job in _jobs.Values)
        {
            _socket.Post(new CancelMessage(WorkerProtocol.Cancel, job.Lease.JobId, job.Lease.LeaseId, "shutdown"));
        }

        _socket.PostClose(status, reason);
    }

    /// <summary>Cuts the connection without a close handshake; jobs go back without counting an attempt.</summary>
    public void Abort()
    {
        _giveBackOnEnd = true;
        _socket.Abort();
    }

    /// <summary>Runs the session to its end: hello, then messages until the worker goes or the session is ended.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var leasing = CancellationTokenSource.CreateLinkedTokenSource(session.Token, _leasing.Token);
        _sessionToken = session.Token;
        var sender = Task.Run(() => _socket.RunSenderAsync(session.Token), CancellationToken.None);
        Task? dispatch = null;
        Task? watchdog = null;
        try
        {
            if (!await HandshakeAsync(session.Token))
            {
                return;
            }

            await _s.Store.UpsertAsync(new WorkerRecord(Id, Name, HelloVersion, KeyId, Node, [.. KindsByQueue.Values.SelectMany(k => k)], Slots, Address), session.Token);
            _s.Metrics.Increment("kiln_remote_worker_sessions_total", "Remote worker connections that said hello, and that ended.", ConnectedLabels);
            dispatch = Task.Run(() => DispatchLoopAsync(leasing.Token), CancellationToken.None);
            watchdog = Task.Run(() => WatchdogAsync(session.Token), CancellationToken.None);
            await ReceiveLoopAsync(session.Token);
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

    private string HelloVersion { get; set; } = "";

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

    public void Dispose()
    {
        _leasing.Dispose();
        _slotFreed.Dispose();
    }

    private async Task<bool> HandshakeAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(_s.Options.HeartbeatTimeoutSeconds));
        var (outcome, bytes) = await _socket.ReceiveAsync(timeout.Token);
        if (outcome == ReceiveOutcome.Closed)
        {
            return false;
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
                if (error is null)
                {
                    hello = WorkerProtocol.Bind<HelloMessage>(document!.RootElement);
                    error = hello is null ? "invalid_field" : null;
                }
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
            Reject(error ?? "invalid_hello", detail ?? "The first message must be a valid hello.", WorkerProtocol.Hello, null);
            _socket.PostClose(WebSocketCloseStatus.PolicyViolation, "invalid hello");
            return false;
        }

        Name = hello!.Name;
        HelloVersion = hello.Version;
        Slots = hello.Slots;
        _free = hello.Slots;
        Id = $"remote:{hello.Name}@{Node}#{Guid.NewGuid().ToString("N")[..8]}";
        KindsByQueue = served.GroupBy(k => _s.Catalog.Get(k).Queue, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        var ignored = hello.Kinds.Except(served, StringComparer.Ordinal).ToArray();
        _s.Logger.LogInformation(
            "Worker {WorkerId} ({Version}) connected from {Address} with {Slots} slots for {Kinds}", Id, hello.Version, Address, Slots, string.Join(", ", served));
        _socket.Post(new WelcomeMessage(
            WorkerProtocol.Welcome, Id, served, ignored, _s.Options.HeartbeatIntervalSeconds, _s.Options.MaxMessageBytes, WorkerProtocol.Version));
        return true;
    }

    private async Task ReceiveLoopAsync(CancellationToken ct)
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
                    Reject("too_large", $"Messages are limited to {_s.Options.MaxMessageBytes} bytes.", null, null);
                    continue;
                case ReceiveOutcome.Binary:
                    Reject("malformed", "Messages are JSON text.", null, null);
                    continue;
            }

            var (document, type, error) = WorkerProtocol.Read(bytes);
            if (document is null)
            {
                Reject(error!, "A message is a JSON object with a string type.", null, null);
                continue;
            }

            using (document)
            {
                await HandleAsync(type!, document.RootElement, ct);
            }
        }
    }

    private async Task HandleAsync(string type, JsonElement message, CancellationToken ct)
    {
        switch (type)
        {
            case WorkerProtocol.Heartbeat:
                await HeartbeatAsync(ct);
                break;
            case WorkerProtocol.Progress:
                Progress(message);
                break;
            case WorkerProtocol.Complete:
                Complete(message);
                break;
            case WorkerProtocol.Fail:
                Fail(message);
                break;
            case WorkerProtocol.Release:
                Release(message);
                break;
            case WorkerProtocol.Drain:
                _s.Logger.LogInformation("Worker {WorkerId} is draining: no more leases", Id);
                StopLeasing();
                break;
            case WorkerProtocol.Hello:
                Reject("duplicate_hello", "hello is sent once, first.", type, null);
                break;
            default:
                Reject("unknown_type", $"Unknown message type '{Truncate(type, 40)}'.", null, null);
                break;
        }
    }

    private async Task HeartbeatAsync(CancellationToken ct)
    {
        var leases = _jobs.Values.Select(j => j.Lease.LeaseId).ToArray();
        await _s.Dispatcher.HeartbeatAsync(Id, leases, ct);
        var now = Environment.TickCount64;
        if (now - Volatile.Read(ref _lastTouchTicks) >= _s.Options.HeartbeatIntervalSeconds * 500)
        {
            Volatile.Write(ref _lastTouchTicks, now);
            await _s.Store.TouchAsync(Id, ct);
        }
    }

    private void Progress(JsonElement message)
    {
        var progress = WorkerProtocol.Bind<ProgressMessage>(message);
        if (progress is null)
        {
            Reject("invalid_field", "progress needs jobId, leaseId and a numeric progress.", WorkerProtocol.Progress, null);
            return;
        }

        if (WorkerProtocol.Validate(progress) is { } invalid)
        {
            Reject(invalid, "progress must be a finite number from 0 to 100, with valid details.", WorkerProtocol.Progress, progress.JobId);
            return;
        }

        if (!Holds(progress.JobId, progress.LeaseId, WorkerProtocol.Progress) || !_jobs.TryGetValue(progress.JobId, out var job))
        {
            return;
        }

        // A throttled database write may wait on a connection; one job's write must not hold up every other message.
        job.Progress!.Post(new ProgressReport(progress.JobId, progress.LeaseId, progress.Progress, progress.Stage, progress.Speed, progress.Eta, progress.TotalBytes));
    }

    private async Task ForwardProgressAsync(RemoteJob job, ProgressReport report)
    {
        // Refused after the job ended here (its completion waits for this report, a cancel does not) is no news.
        if (!await _s.Dispatcher.ReportProgressAsync(report, _sessionToken) && IsHeld(job))
        {
            Reject(LeaseNotHeld, "The job's lease is no longer held.", WorkerProtocol.Progress, job.Lease.JobId);
        }
    }

    private bool IsHeld(RemoteJob job) => _jobs.TryGetValue(job.Lease.JobId, out var held) && ReferenceEquals(held, job);

    /// <summary>True when the job is running on this connection under that lease; otherwise rejects and counts.</summary>
    private bool Holds(Guid jobId, Guid leaseId, string of)
    {
        if (_jobs.TryGetValue(jobId, out var job) && job.Lease.LeaseId == leaseId)
        {
            return true;
        }

        if (_stopped.TryGetValue(jobId, out var stoppedLease) && stoppedLease == leaseId)
        {
            // Crossed the cancel on the wire: ignored, counted, but no protocol error to report.
            _s.Metrics.Rejected(Source, "stale_lease");
            return false;
        }

        Reject("unknown_lease", "No job with that lease runs on this connection.", of, jobId);
        return false;
    }

    private void Reject(string code, string message, string? of, Guid? jobId)
    {
        _s.Metrics.Rejected(Source, code);
        _s.Logger.LogWarning("Rejected a {Of} message from worker {WorkerId}: {Code}", of ?? "worker", Id.Length > 0 ? Id : Address, code);
        _socket.Post(new RejectedMessage(WorkerProtocol.Rejected, code, message, of, jobId));
    }

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];
}
