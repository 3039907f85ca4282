using System.Collections.Concurrent;
using Kiln.Jobs;
using Kiln.Queue;

namespace Kiln.Processing;

/// <summary>
/// What differs between running an attempt in the server and on a remote worker: where the input comes from, how
/// stop requests arrive, and where progress and the end of the attempt are reported. Everything else is
/// <see cref="AttemptRunner"/>'s.
/// </summary>
internal interface IAttemptTransport
{
    /// <summary>
    /// Subscribes the attempt to stop requests (cancel, pause, stall, lost lease); null when they arrive another
    /// way (a remote worker hears them as messages and calls <see cref="AttemptRunner.Stop"/>).
    /// </summary>
    IDisposable? ListenForStop(Attempt attempt);

    /// <summary>The input's path (null for a job without an asset); a failure to get it is a <see cref="JobFailedException"/>.</summary>
    Task<string?> FetchInputAsync(Attempt attempt, CancellationToken cancellationToken);

    /// <summary>Hands one progress report on; called one at a time, only ever with the newest report.</summary>
    Task SendProgressAsync(Attempt attempt, ProgressReport report);

    /// <summary>
    /// Reports the completion. <paramref name="endAttempt"/> removes the attempt's files; the transport calls it as
    /// soon as the outputs no longer need them (they are published from the staging directory in the server, uploaded
    /// first on a remote worker) and before the queue can start another attempt of the job.
    /// </summary>
    Task CompleteAsync(Attempt attempt, JobOutcome outcome, Action endAttempt);

    Task FailAsync(Attempt attempt, ExecutionResult.Failed failure);

    /// <summary>Gives the lease back without counting the attempt.</summary>
    Task ReleaseAsync(Attempt attempt);
}

/// <summary>
/// The one attempt runner, for in-process slots and remote workers alike: keeps the attempts running here by lease,
/// runs each through <see cref="JobExecutor"/>, sends its progress through one <see cref="ProgressMailbox"/>, reports
/// how it ended through its <see cref="IAttemptTransport"/>, removes its files with the one clean-up policy
/// (<see cref="JobDirectories.EndAttempt"/>), and on shutdown decides each running attempt's fate
/// (<see cref="DrainAsync"/>).
/// </summary>
/// <param name="workRoot">Where attempts' work directories live (the data directory's <c>tmp/jobs</c>, or a worker's own).</param>
/// <param name="where">Names this runner in the error of a job whose kind it has no handler for.</param>
internal sealed class AttemptRunner(IReadOnlyDictionary<string, IJobHandler> handlers, string workRoot, string where, ILogger logger)
{
    /// <summary>By lease id: a stopped attempt may still be winding down when the job's next attempt starts here.</summary>
    private readonly ConcurrentDictionary<Guid, Attempt> _running = new();

    public int Count => _running.Count;

    public IReadOnlyCollection<Guid> LeaseIds => [.. _running.Keys];

    /// <summary>Starts the attempt on the thread pool; <paramref name="ended"/> runs once it has been reported and cleaned up.</summary>
    public void Start(JobLease lease, IAttemptTransport transport, Action? ended = null)
    {
        var attempt = new Attempt(lease, new JobDirectories(workRoot, lease.JobId, lease.LeaseId));

        // Registered before it can end, so the removal when it ends always finds it.
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        attempt.Completion = Task.Run(async () =>
        {
            await registered.Task;
            try
            {
                await RunAsync(attempt, transport);
            }
            finally
            {
                _running.TryRemove(lease.LeaseId, out _);
                attempt.Dispose();
                ended?.Invoke();
            }
        });
        _running[lease.LeaseId] = attempt;
        registered.SetResult();
    }

    /// <summary>Stops the attempt holding that lease, if it runs here; the queue already took the lease away.</summary>
    public bool Stop(Guid jobId, Guid leaseId, JobStopReason reason)
    {
        if (!_running.TryGetValue(leaseId, out var attempt) || attempt.Lease.JobId != jobId)
        {
            return false;
        }

        attempt.Stop(reason);
        return true;
    }

    /// <summary>Stops every attempt for the same reason (a remote worker's connection dropped: all its leases are gone) and waits for them.</summary>
    public async Task StopAllAsync(JobStopReason reason)
    {
        foreach (var attempt in _running.Values)
        {
            attempt.Stop(reason);
        }

        await WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// The one place shutdown decides each running attempt's fate: attempts that finish within
    /// <paramref name="grace"/> report as usual; the rest are stopped with no reason, which gives them back to the
    /// queue without counting the attempt.
    /// </summary>
    public async Task DrainAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        var running = _running.Values.ToArray();
        if (running.Length > 0)
        {
            logger.LogInformation("Waiting up to {Grace} for {Count} running jobs", grace, running.Length);
            await Task.WhenAll(running.Select(a => a.Completion)).WaitAsync(grace, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var attempt in _running.Values)
        {
            logger.LogWarning(
                "Job {JobId} ({Kind}) did not finish within the shutdown grace period; stopping it and giving it back to the queue",
                attempt.Lease.JobId,
                attempt.Lease.Kind);
            attempt.Stop(null);
        }

        await WaitAsync(TimeSpan.FromSeconds(10));
    }

    private async Task WaitAsync(TimeSpan timeout) =>
        await Task.WhenAll(_running.Values.Select(a => a.Completion)).WaitAsync(timeout, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

    private async Task RunAsync(Attempt attempt, IAttemptTransport transport)
    {
        var lease = attempt.Lease;
        using var scope = logger.BeginScope(new JobLogScope(lease.JobId, lease.Kind));
        try
        {
            using var stopRegistration = transport.ListenForStop(attempt);
            var progress = new ProgressMailbox(r => attempt.Silenced ? Task.CompletedTask : transport.SendProgressAsync(attempt, r), logger);
            var result = handlers.TryGetValue(lease.Kind, out var handler)
                ? await JobExecutor.RunAsync(
                    async ct =>
                    {
                        var context = new JobContext
                        {
                            Lease = lease,
                            InputPath = await transport.FetchInputAsync(attempt, ct),
                            Directories = attempt.Directories,
                            Progress = new ProgressForwarder(progress, lease.JobId, lease.LeaseId),
                        };
                        return await handler.ExecuteAsync(context, ct);
                    },
                    () => attempt.Reason,
                    attempt.Token)
                : new ExecutionResult.Failed("unknown_kind", $"No handler for {lease.Kind} in {where}.", Retryable: true);
            await FinishAsync(attempt, transport, result);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Reporting the end of job {JobId} failed; its lease will expire and it will run again", lease.JobId);
        }
        finally
        {
            // Normally done before the queue heard of the end; here for an attempt whose report threw.
            EndAttempt(attempt);
        }
    }

    /// <summary>
    /// Reports how the attempt ended and removes its files. Files go first unless the job completed (the transport
    /// decides when its outputs no longer need them): once the queue knows, the next attempt may start here and must
    /// find a clean slate.
    /// </summary>
    private async Task FinishAsync(Attempt attempt, IAttemptTransport transport, ExecutionResult result)
    {
        switch (result)
        {
            case ExecutionResult.Succeeded { Outcome: var outcome }:
                await transport.CompleteAsync(attempt, outcome, () => EndAttempt(attempt));
                break;
            case ExecutionResult.Failed f:
                logger.LogWarning("Job {JobId} failed: {Code} {Message}", attempt.Lease.JobId, f.ErrorCode, f.Message);
                EndAttempt(attempt);
                await transport.FailAsync(attempt, f);
                break;
            case ExecutionResult.Stopped { Reason: null }:
                // Stopped without being asked to (shutdown ran out of grace): hand the job back, attempt not counted.
                EndAttempt(attempt);
                await transport.ReleaseAsync(attempt);
                break;
            case ExecutionResult.Stopped:
                // The queue took the lease away already and wants to hear nothing more of it.
                EndAttempt(attempt);
                break;
        }
    }

    private void EndAttempt(Attempt attempt)
    {
        if (attempt.MarkCleaned())
        {
            // The scan runs only for an attempt that lost its lease, the rare case where a next attempt can run already.
            attempt.Directories.EndAttempt(
                attempt.Reason,
                () => _running.Values.Any(r => r.Lease.JobId == attempt.Lease.JobId && r.Lease.LeaseId != attempt.Lease.LeaseId),
                logger);
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
}

/// <summary>One attempt running here: its lease, its files, its stop switch and why it was stopped.</summary>
internal sealed class Attempt(JobLease lease, JobDirectories directories) : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly Lock _gate = new();
    private int _reason = -1;
    private int _cleaned;
    private bool _silenced;

    public JobLease Lease { get; } = lease;

    public JobDirectories Directories { get; } = directories;

    public Task Completion { get; set; } = Task.CompletedTask;

    public CancellationToken Token => _cts.Token;

    /// <summary>Why the attempt was stopped from outside; null while it runs, or when it is given back at shutdown.</summary>
    public JobStopReason? Reason => _reason < 0 ? null : (JobStopReason)_reason;

    /// <summary>True once nothing more may be said about the attempt: the queue took its lease, or its last report went out.</summary>
    public bool Silenced
    {
        get
        {
            lock (_gate)
            {
                return _silenced;
            }
        }
    }

    /// <summary>Stops the attempt (its handler's token fires: ffmpeg is killed). With no reason it is given back to the queue.</summary>
    public void Stop(JobStopReason? reason)
    {
        if (reason is { } r)
        {
            Interlocked.CompareExchange(ref _reason, (int)r, -1);
            lock (_gate)
            {
                // The queue already dropped the lease: nothing more may be said about it.
                _silenced = true;
            }
        }

        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The attempt already ended; nothing left to stop.
        }
    }

    /// <summary>
    /// Sends the attempt's last word unless the queue already took the lease away; atomic with <see cref="Stop"/>, so a
    /// report never follows a stop the transport has already acted on.
    /// </summary>
    public bool TrySendLast(Action send)
    {
        lock (_gate)
        {
            if (_silenced)
            {
                return false;
            }

            _silenced = true;
            send();
            return true;
        }
    }

    /// <summary>Sends a progress report unless the attempt is silenced, atomically with <see cref="Stop"/>.</summary>
    public bool TrySend(Action send)
    {
        lock (_gate)
        {
            if (_silenced)
            {
                return false;
            }

            send();
            return true;
        }
    }

    /// <summary>True the first time only: the files are removed once.</summary>
    public bool MarkCleaned() => Interlocked.Exchange(ref _cleaned, 1) == 0;

    public void Dispose() => _cts.Dispose();
}
