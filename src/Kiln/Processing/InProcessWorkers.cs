using System.Collections.Concurrent;
using Kiln.Hosting;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Processing;

/// <summary>
/// Runs jobs inside the server: one dispatch loop per queue with its configured slots, through the same
/// <see cref="IJobDispatcher"/> contract remote workers use. Idle loops sleep until a wake-up (local enqueue or
/// NOTIFY), the next delayed job, or the idle poll safety net.
/// </summary>
internal sealed class InProcessWorkers(
    IJobDispatcher dispatcher,
    IEnumerable<IJobHandler> handlers,
    JobKindCatalog catalog,
    JobSignals signals,
    QueueWakeups wakeups,
    BlobStore blobs,
    NodeIdentity node,
    IOptions<WorkerOptions> workerOptions,
    IOptions<QueueOptions> queueOptions,
    ILogger<InProcessWorkers> logger) : BackgroundService
{
    private readonly Dictionary<string, IJobHandler> _handlers = handlers.ToDictionary(h => h.Kind, StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Guid, RunningJob> _running = new();
    private readonly CancellationTokenSource _hardStop = new();

    public int RunningCount => _running.Count;

    public string WorkerId => node.Name + "/inproc";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!workerOptions.Value.Enabled)
        {
            return;
        }

        var loops = new List<Task>();
        foreach (var (queue, slots) in workerOptions.Value.Slots)
        {
            var kinds = catalog.All.Where(k => k.Queue == queue && _handlers.ContainsKey(k.Kind)).Select(k => k.Kind).ToArray();
            if (slots > 0 && kinds.Length > 0)
            {
                logger.LogInformation("Serving queue {Queue} with {Slots} slots: {Kinds}", queue, slots, string.Join(", ", kinds));
                loops.Add(Task.Run(() => DispatchLoopAsync(queue, slots, kinds, stoppingToken), CancellationToken.None));
            }
        }

        loops.Add(HeartbeatLoopAsync(stoppingToken));
        await Task.WhenAll(loops);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop leasing first (the base cancels the loops), then give running jobs their grace period.
        await base.StopAsync(cancellationToken);
        var grace = TimeSpan.FromSeconds(workerOptions.Value.ShutdownTimeoutSeconds);
        var all = _running.Values.Select(r => r.Completion).ToArray();
        if (all.Length > 0)
        {
            logger.LogInformation("Waiting up to {Grace} for {Count} running jobs", grace, all.Length);
            await Task.WhenAll(all).WaitAsync(grace, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await _hardStop.CancelAsync();
        var left = _running.Values.Select(r => r.Completion).ToArray();
        await Task.WhenAll(left).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public override void Dispose()
    {
        _hardStop.Dispose();
        base.Dispose();
    }

    private async Task DispatchLoopAsync(string queue, int slots, string[] kinds, CancellationToken stoppingToken)
    {
        var idle = TimeSpan.FromSeconds(queueOptions.Value.IdlePollSeconds);
        var inQueue = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan wait = idle;
            try
            {
                var free = slots - Volatile.Read(ref inQueue);
                if (free > 0)
                {
                    var leased = await dispatcher.LeaseAsync(new LeaseRequest(WorkerId, queue, kinds, free), stoppingToken);
                    foreach (var lease in leased.Jobs)
                    {
                        Interlocked.Increment(ref inQueue);
                        Start(lease, () =>
                        {
                            Interlocked.Decrement(ref inQueue);
                            wakeups.Wake(queue);
                        });
                    }

                    if (leased.Jobs.Count > 0)
                    {
                        continue;
                    }

                    if (leased.RetryAfter is { } after && after < wait)
                    {
                        wait = after;
                    }
                }

                await wakeups.WaitAsync(queue, wait, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Dispatch loop for {Queue} failed; retrying", queue);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private void Start(JobLease lease, Action onDone)
    {
        var running = new RunningJob(lease, _hardStop.Token);
        _running[lease.JobId] = running;
        running.Completion = Task.Run(async () =>
        {
            try
            {
                await RunAsync(running);
            }
            finally
            {
                _running.TryRemove(lease.JobId, out _);
                running.Dispose();
                onDone();
            }
        });
    }

    private async Task RunAsync(RunningJob job)
    {
        var lease = job.Lease;
        var directories = new JobDirectories(blobs.JobsTemp, lease.JobId, lease.LeaseId);
        using var registration = signals.Register(lease.JobId, job.Stop);
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["jobId"] = lease.JobId, ["kind"] = lease.Kind });
        var context = new JobContext
        {
            Lease = lease,
            InputPath = lease.Asset is null ? null : blobs.Resolve(lease.Asset.Path),
            Directories = directories,
            Progress = new ProgressForwarder(r => IgnoreResult(dispatcher.ReportProgressAsync(r, CancellationToken.None)), lease.JobId, lease.LeaseId, logger),
        };

        var result = _handlers.TryGetValue(lease.Kind, out var handler)
            ? await JobExecutor.RunAsync(handler, context, () => job.Reason, job.Token)
            : new ExecutionResult.Failed("unknown_kind", $"No handler for {lease.Kind} in this process.", Retryable: true);
        try
        {
            await ReportAsync(job, directories, result);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Reporting the end of job {JobId} failed; its lease will expire and it will run again", lease.JobId);
        }
        finally
        {
            try
            {
                directories.Cleanup(keepWork: job.Reason == JobStopReason.Paused);
            }
            catch (IOException e)
            {
                logger.LogWarning(e, "Could not clean the work directory of {JobId}", lease.JobId);
            }
        }
    }

    private async Task ReportAsync(RunningJob job, JobDirectories directories, ExecutionResult result)
    {
        var lease = job.Lease;
        switch (result)
        {
            case ExecutionResult.Succeeded { Outcome: var outcome }:
                try
                {
                    var staging = outcome.Outputs is { Count: > 0 } ? directories.OutputPath : null;
                    await dispatcher.CompleteAsync(
                        new CompletionReport(lease.JobId, lease.LeaseId, outcome.Result, outcome.Outputs, staging, outcome.AssetMetadata),
                        CancellationToken.None);
                }
                catch (ArgumentException e)
                {
                    await dispatcher.FailAsync(new FailureReport(lease.JobId, lease.LeaseId, "invalid_output", e.Message, Retryable: false), CancellationToken.None);
                }

                break;
            case ExecutionResult.Failed f:
                logger.LogWarning("Job {JobId} failed: {Code} {Message}", lease.JobId, f.ErrorCode, f.Message);
                await dispatcher.FailAsync(new FailureReport(lease.JobId, lease.LeaseId, f.ErrorCode, f.Message, f.Retryable), CancellationToken.None);
                break;
            case ExecutionResult.Stopped { Reason: null }:
                // Shutdown ran out of grace: hand the job back without counting the attempt.
                await dispatcher.ReleaseAsync(lease.JobId, lease.LeaseId, CancellationToken.None);
                break;
            case ExecutionResult.Stopped:
                break;
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(0.2, queueOptions.Value.LeaseSeconds / 3)));
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                var leases = _running.Values.Select(r => r.Lease.LeaseId).ToArray();
                await dispatcher.HeartbeatAsync(WorkerId, leases, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Lease heartbeat failed");
            }
        }
    }

    private static async ValueTask IgnoreResult(ValueTask<bool> task) => await task;

    /// <summary>A job running here: its lease, its stop switch and why it was stopped.</summary>
    private sealed class RunningJob(JobLease lease, CancellationToken hardStop) : IDisposable
    {
        private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(hardStop);
        private int _reason = -1;

        public JobLease Lease { get; } = lease;
        public Task Completion { get; set; } = Task.CompletedTask;
        public CancellationToken Token => _cts.Token;
        public JobStopReason? Reason => _reason < 0 ? null : (JobStopReason)_reason;

        public void Stop(JobStopReason reason)
        {
            Interlocked.CompareExchange(ref _reason, (int)reason, -1);
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The job already ended; nothing left to stop.
            }
        }

        public void Dispose() => _cts.Dispose();
    }
}
