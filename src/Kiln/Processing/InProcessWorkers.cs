using System.Collections.Concurrent;
using Kiln.Hosting;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Processing;

/// <summary>
/// Runs jobs inside the server: one dispatch loop per queue with its configured slots, through the same
/// <see cref="IJobDispatcher"/> contract remote workers use. A loop leases as many jobs as it has free slots in one
/// call; idle loops sleep until a wake-up (local enqueue, NOTIFY, a finished job), the next delayed job, or the
/// idle poll safety net. On shutdown the loops stop leasing, running jobs get their grace period with their leases
/// still renewed, and whatever still runs after it is stopped and released without counting the attempt.
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

    /// <summary>Jobs running here by lease id: a stalled attempt may still be winding down when the next one starts.</summary>
    private readonly ConcurrentDictionary<Guid, RunningJob> _running = new();

    /// <summary>Outlives the dispatch loops: leases of jobs finishing during the shutdown grace period must not expire.</summary>
    private readonly CancellationTokenSource _heartbeatStop = new();
    private Task _heartbeat = Task.CompletedTask;

    public int RunningCount => _running.Count;

    public string WorkerId => node.Name + "/inproc";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!workerOptions.Value.Enabled)
        {
            return;
        }

        _heartbeat = HeartbeatLoopAsync(_heartbeatStop.Token);
        var loops = new List<Task>();
        foreach (var (queue, slots) in workerOptions.Value.Slots)
        {
            var kinds = catalog.All.Where(k => k.Queue == queue && _handlers.ContainsKey(k.Kind)).Select(k => k.Kind).ToArray();
            if (slots > 0 && kinds.Length > 0)
            {
                logger.LogInformation("Serving queue {Queue} with {Slots} slots: {Kinds}", queue, slots, string.Join(", ", kinds));
                var loop = new QueueLoop(queue, slots, kinds, wakeups);
                loops.Add(Task.Run(() => DispatchLoopAsync(loop, stoppingToken), CancellationToken.None));
            }
        }

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

        // Out of grace: stop what still runs; each reports Stopped without a reason and is released.
        foreach (var job in _running.Values)
        {
            job.HardStop();
        }

        var left = _running.Values.Select(r => r.Completion).ToArray();
        await Task.WhenAll(left).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _heartbeatStop.CancelAsync();
        await _heartbeat.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public override void Dispose()
    {
        _heartbeatStop.Dispose();
        base.Dispose();
    }

    private async Task DispatchLoopAsync(QueueLoop loop, CancellationToken stoppingToken)
    {
        var idle = TimeSpan.FromSeconds(queueOptions.Value.IdlePollSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            var wait = idle;
            try
            {
                var free = loop.Free;
                if (free > 0)
                {
                    // Not cancelled by shutdown: a lease cut off after the server ran it would strand its jobs as
                    // running until their leases expire. Leasing is quick; the loop checks the token before the next one.
                    var leased = await dispatcher.LeaseAsync(new LeaseRequest(WorkerId, loop.Queue, loop.Kinds, free), CancellationToken.None);
                    foreach (var lease in leased.Jobs)
                    {
                        loop.Acquire();
                        Start(lease, loop);
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

                await wakeups.WaitAsync(loop.Queue, wait, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Dispatch loop for {Queue} failed; retrying", loop.Queue);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private void Start(JobLease lease, QueueLoop loop)
    {
        var job = new RunningJob(lease, loop);
        _running[lease.LeaseId] = job;
        job.Completion = Task.Run(() => RunAsync(job));
    }

    private async Task RunAsync(RunningJob job)
    {
        var lease = job.Lease;
        try
        {
            var directories = new JobDirectories(blobs.JobsTemp, lease.JobId, lease.LeaseId);
            using var registration = signals.Register(lease.JobId, lease.LeaseId, job.Stop);
            using var scope = logger.BeginScope(new JobLogScope(lease.JobId, lease.Kind));
            var context = new JobContext
            {
                Lease = lease,
                InputPath = lease.Asset is null ? null : blobs.Resolve(lease.Asset.Path),
                Directories = directories,
                Progress = new ProgressForwarder(new ProgressMailbox(r => dispatcher.ReportProgressAsync(r, CancellationToken.None).AsTask(), logger), lease.JobId, lease.LeaseId),
            };

            var result = _handlers.TryGetValue(lease.Kind, out var handler)
                ? await JobExecutor.RunAsync(handler, context, job.ReasonProvider, job.Token)
                : new ExecutionResult.Failed("unknown_kind", $"No handler for {lease.Kind} in this process.", Retryable: true);
            await FinishAsync(job, directories, result);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Reporting the end of job {JobId} failed; its lease will expire and it will run again", lease.JobId);
        }
        finally
        {
            _running.TryRemove(lease.LeaseId, out _);
            job.Dispose();
            job.Loop.Release();
        }
    }

    /// <summary>
    /// Reports how the attempt ended and removes its files. Files go first unless the job completed (its outputs are
    /// published from them): once the queue knows, the next attempt may start here and must find a clean slate.
    /// </summary>
    private async Task FinishAsync(RunningJob job, JobDirectories directories, ExecutionResult result)
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
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Publishing (one rename into the derivatives) failed and nothing was committed: give the attempt
                    // up now so the job retries, instead of letting it sit as running until its lease expires.
                    logger.LogWarning(e, "Publishing the outputs of job {JobId} failed", lease.JobId);
                    await dispatcher.FailAsync(new FailureReport(lease.JobId, lease.LeaseId, "publish_failed", e.Message, Retryable: true), CancellationToken.None);
                }
                finally
                {
                    Cleanup(job, directories);
                }

                break;
            case ExecutionResult.Failed f:
                logger.LogWarning("Job {JobId} failed: {Code} {Message}", lease.JobId, f.ErrorCode, f.Message);
                Cleanup(job, directories);
                await dispatcher.FailAsync(new FailureReport(lease.JobId, lease.LeaseId, f.ErrorCode, f.Message, f.Retryable), CancellationToken.None);
                break;
            case ExecutionResult.Stopped { Reason: null }:
                // Shutdown ran out of grace: hand the job back without counting the attempt.
                Cleanup(job, directories);
                await dispatcher.ReleaseAsync(lease.JobId, lease.LeaseId, CancellationToken.None);
                break;
            case ExecutionResult.Stopped:
                Cleanup(job, directories);
                break;
        }
    }

    /// <summary>Removes the attempt's files (<see cref="JobDirectories.EndAttempt"/>, shared with remote workers).</summary>
    private void Cleanup(RunningJob job, JobDirectories directories) =>
        // The scan runs only for a job that lost its lease, the rare case where a next attempt can run already.
        directories.EndAttempt(
            job.Reason,
            () => _running.Values.Any(r => r.Lease.JobId == job.Lease.JobId && r.Lease.LeaseId != job.Lease.LeaseId),
            logger);

    private async Task HeartbeatLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(0.2, queueOptions.Value.LeaseSeconds / 3)));
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                var leases = _running.Keys.ToArray();
                await dispatcher.HeartbeatAsync(WorkerId, leases, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Lease heartbeat failed");
            }
        }
    }

    /// <summary>The jobId and kind every log line of a job carries; one small object instead of a dictionary per job.</summary>
    private sealed class JobLogScope(Guid jobId, string kind) : IReadOnlyList<KeyValuePair<string, object>>
    {
        public int Count => 2;

        public KeyValuePair<string, object> this[int index] => index switch
        {
            0 => new("jobId", jobId),
            1 => new("kind", kind),
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        public IEnumerator<KeyValuePair<string, object>> GetEnumerator()
        {
            yield return this[0];
            yield return this[1];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => $"jobId:{jobId} kind:{kind}";
    }

    /// <summary>A queue's dispatch loop: its slots and how many of them are taken.</summary>
    private sealed class QueueLoop(string queue, int slots, string[] kinds, QueueWakeups wakeups)
    {
        private int _busy;

        public string Queue { get; } = queue;

        public string[] Kinds { get; } = kinds;

        public int Free => slots - Volatile.Read(ref _busy);

        public void Acquire() => Interlocked.Increment(ref _busy);

        /// <summary>Frees a slot and wakes the loop so it can lease again.</summary>
        public void Release()
        {
            Interlocked.Decrement(ref _busy);
            wakeups.Wake(Queue);
        }
    }

    /// <summary>A job running here: its lease, its stop switch and why it was stopped.</summary>
    private sealed class RunningJob : IDisposable
    {
        private readonly CancellationTokenSource _cts = new();
        private int _reason = -1;

        public RunningJob(JobLease lease, QueueLoop loop)
        {
            Lease = lease;
            Loop = loop;
            ReasonProvider = () => Reason;
        }

        public JobLease Lease { get; }
        public QueueLoop Loop { get; }
        public Task Completion { get; set; } = Task.CompletedTask;
        public CancellationToken Token => _cts.Token;
        public JobStopReason? Reason => _reason < 0 ? null : (JobStopReason)_reason;
        public Func<JobStopReason?> ReasonProvider { get; }

        public void Stop(JobStopReason reason)
        {
            Interlocked.CompareExchange(ref _reason, (int)reason, -1);
            Cancel();
        }

        /// <summary>Stops the job without a reason: it was not asked to stop, the server is going away.</summary>
        public void HardStop() => Cancel();

        public void Dispose() => _cts.Dispose();

        private void Cancel()
        {
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The job already ended; nothing left to stop.
            }
        }
    }
}
