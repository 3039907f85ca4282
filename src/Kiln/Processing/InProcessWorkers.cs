using Kiln.Core;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Queue;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Processing;

/// <summary>
/// Runs jobs inside the server: one <see cref="DispatchLoop"/> per queue with its configured slots, attempts run by
/// the <see cref="AttemptRunner"/> remote workers use too, reported straight to the <see cref="IJobDispatcher"/>. On
/// shutdown the loops stop leasing, running jobs get their grace period with their leases still renewed, and
/// whatever still runs after it is stopped and released without counting the attempt.
/// </summary>
internal sealed class InProcessWorkers : BackgroundService, IInProcessWorkerCount
{
    private readonly IJobDispatcher _dispatcher;
    private readonly JobKindCatalog _catalog;
    private readonly QueueWakeups _wakeups;
    private readonly WorkerOptions _workerOptions;
    private readonly QueueOptions _queueOptions;
    private readonly ILogger<InProcessWorkers> _logger;
    private readonly AttemptRunner _runner;
    private readonly InProcessTransport _transport;
    private readonly HashSet<string> _kinds;
    private readonly IdleLoops _idleLoops;

    /// <summary>Outlives the dispatch loops: leases of jobs finishing during the shutdown grace period must not expire.</summary>
    private readonly CancellationTokenSource _heartbeatStop = new();
    private readonly List<SlotPool> _slots = [];
    private Task _heartbeat = Task.CompletedTask;

    public InProcessWorkers(
        IJobDispatcher dispatcher,
        IEnumerable<IJobHandler> handlers,
        JobKindCatalog catalog,
        JobSignals signals,
        QueueWakeups wakeups,
        BlobStore blobs,
        NodeIdentity node,
        IdleLoops idleLoops,
        IOptions<WorkerOptions> workerOptions,
        IOptions<QueueOptions> queueOptions,
        ILogger<InProcessWorkers> logger)
    {
        _dispatcher = dispatcher;
        _catalog = catalog;
        _wakeups = wakeups;
        _idleLoops = idleLoops;
        _workerOptions = workerOptions.Value;
        _queueOptions = queueOptions.Value;
        _logger = logger;
        var byKind = handlers.ToDictionary(h => h.Kind, StringComparer.Ordinal);
        _kinds = [.. byKind.Keys];
        _runner = new AttemptRunner(byKind, blobs.JobsTemp, "this process", logger);
        _transport = new InProcessTransport(dispatcher, signals, blobs, logger);
        WorkerId = node.Name + "/inproc";
    }

    public int RunningCount => _runner.Count;

    public bool InProcessEnabled => _workerOptions.Enabled;

    public int InProcessSlots => _workerOptions.Enabled ? _workerOptions.Slots.Values.Sum() : 0;

    public int InProcessRunning => RunningCount;

    public string WorkerId { get; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_workerOptions.Enabled)
        {
            return;
        }

        _heartbeat = HeartbeatLoopAsync(_heartbeatStop.Token);
        var loops = new List<Task>();
        foreach (var (queue, count) in _workerOptions.Slots)
        {
            var kinds = _catalog.All.Where(k => k.Queue == queue && _kinds.Contains(k.Kind)).Select(k => k.Kind).ToArray();
            if (count > 0 && kinds.Length > 0)
            {
                _logger.LogInformation("Serving queue {Queue} with {Slots} slots: {Kinds}", queue, count, string.Join(", ", kinds));
                var slots = new SlotPool(count);
                _slots.Add(slots);
                var loop = new DispatchLoop(
                    _dispatcher,
                    _wakeups,
                    WorkerId,
                    new Dictionary<string, string[]> { [queue] = kinds },
                    slots,
                    lease =>
                    {
                        _runner.Start(lease, _transport, slots.Release);
                        return Task.CompletedTask;
                    },
                    TimeSpan.FromSeconds(_queueOptions.IdlePollSeconds),
                    _logger,
                    _idleLoops);
                loops.Add(Task.Run(() => loop.RunAsync(stoppingToken), CancellationToken.None));
            }
        }

        await Task.WhenAll(loops);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop leasing first (the base cancels the loops), then give running jobs their grace period.
        await base.StopAsync(cancellationToken);
        await _runner.DrainAsync(TimeSpan.FromSeconds(_workerOptions.ShutdownTimeoutSeconds), cancellationToken);
        await _heartbeatStop.CancelAsync();
        await _heartbeat.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public override void Dispose()
    {
        _heartbeatStop.Dispose();
        foreach (var slots in _slots)
        {
            slots.Dispose();
        }

        base.Dispose();
    }

    private async Task HeartbeatLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(0.2, _queueOptions.LeaseSeconds / 3)));
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                await _dispatcher.HeartbeatAsync(WorkerId, _runner.LeaseIds, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogWarning(e, "Lease heartbeat failed");
            }
        }
    }

    /// <summary>In the server the input is already in the data directory and every report goes straight to the dispatcher.</summary>
    private sealed class InProcessTransport(IJobDispatcher dispatcher, JobSignals signals, BlobStore blobs, ILogger logger) : IAttemptTransport
    {
        public IDisposable? ListenForStop(Attempt attempt) => signals.Register(attempt.Lease.JobId, attempt.Lease.LeaseId, reason => attempt.Stop(reason));

        public Task<string?> FetchInputAsync(Attempt attempt, CancellationToken cancellationToken) =>
            Task.FromResult(attempt.Lease.Asset is { } asset ? blobs.Resolve(asset.Path) : null);

        public Task SendProgressAsync(Attempt attempt, ProgressReport report) =>
            dispatcher.ReportProgressAsync(report, CancellationToken.None).AsTask();

        public async Task CompleteAsync(Attempt attempt, JobOutcome outcome, Action endAttempt)
        {
            var lease = attempt.Lease;
            try
            {
                // Published from the staging directory by one rename, so the files stay until the completion is written.
                var staging = outcome.Outputs is { Count: > 0 } ? attempt.Directories.OutputPath : null;
                await dispatcher.CompleteAsync(
                    new CompletionReport(lease.JobId, lease.LeaseId, outcome.Result, outcome.Outputs, staging, outcome.AssetMetadata),
                    CancellationToken.None);
            }
            catch (ArgumentException e)
            {
                await dispatcher.FailAsync(new FailureReport(lease.JobId, lease.LeaseId, "invalid_output", e.Message, Retryable: false), CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Publishing (one rename into the derivatives) failed and nothing was committed: give the attempt
                // up now so the job retries, instead of letting it sit as running until its lease expires.
                logger.LogWarning(e, "Publishing the outputs of job {JobId} failed", lease.JobId);
                await dispatcher.FailAsync(new FailureReport(lease.JobId, lease.LeaseId, "publish_failed", e.Message, Retryable: true), CancellationToken.None);
            }
            finally
            {
                endAttempt();
            }
        }

        public Task FailAsync(Attempt attempt, ExecutionResult.Failed failure) =>
            dispatcher.FailAsync(
                new FailureReport(attempt.Lease.JobId, attempt.Lease.LeaseId, failure.ErrorCode, failure.Message, failure.Retryable),
                CancellationToken.None);

        public Task ReleaseAsync(Attempt attempt) =>
            dispatcher.ReleaseAsync(attempt.Lease.JobId, attempt.Lease.LeaseId, CancellationToken.None);
    }
}
