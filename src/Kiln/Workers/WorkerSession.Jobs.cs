using System.Text.Json;
using Kiln.Hosting;
using Kiln.Jobs;
using Kiln.Queue;

namespace Kiln.Workers;

/// <summary>The job side of a session: leasing, finishing, stopping and settling what is left at the end.</summary>
internal sealed partial class WorkerSession
{
    private void Complete(JsonElement message)
    {
        var complete = WorkerProtocol.Bind<CompleteMessage>(message);
        if (complete is null)
        {
            Reject("invalid_field", "complete needs jobId and leaseId; outputs need type, path and contentType.", WorkerProtocol.Complete, null);
            return;
        }

        if (WorkerProtocol.Validate(complete, _s.Options.MaxOutputs) is { } invalid)
        {
            Reject(invalid, "The outputs are not valid.", WorkerProtocol.Complete, complete.JobId);
            return;
        }

        if (!Holds(complete.JobId, complete.LeaseId, WorkerProtocol.Complete) || !TryTake(complete.JobId, complete.LeaseId, out var job))
        {
            return;
        }

        var outputs = complete.Outputs?.Select(o => new OutputFile(o.Type, o.Path, o.ContentType, o.Variant ?? "", o.Width, o.Height, o.Duration)).ToList();
        var staging = outputs is { Count: > 0 } ? job.OutputDirectory(_s.Blobs) : null;
        Track(FinishAsync(job, WorkerProtocol.Complete, async ct =>
        {
            try
            {
                var report = new CompletionReport(job.Lease.JobId, job.Lease.LeaseId, complete.Result, outputs, staging, complete.AssetMetadata);
                return await _s.Dispatcher.CompleteAsync(report, ct) ? null : LeaseNotHeld;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // Outputs that were never uploaded, or outputs for a job without an asset: the worker's result is unusable.
                _s.Logger.LogWarning("Worker {WorkerId} completed {JobId} with invalid outputs: {Message}", Id, job.Lease.JobId, e.Message);
                await _s.Dispatcher.FailAsync(new FailureReport(job.Lease.JobId, job.Lease.LeaseId, "invalid_output", e.Message, Retryable: false), ct);
                return "invalid_output";
            }
        }));
    }

    private void Fail(JsonElement message)
    {
        var fail = WorkerProtocol.Bind<FailMessage>(message);
        if (fail is null || WorkerProtocol.Validate(fail) is not null)
        {
            Reject("invalid_field", "fail needs jobId, leaseId, errorCode (1-100 characters) and message.", WorkerProtocol.Fail, fail?.JobId);
            return;
        }

        if (!Holds(fail.JobId, fail.LeaseId, WorkerProtocol.Fail) || !TryTake(fail.JobId, fail.LeaseId, out var job))
        {
            return;
        }

        Track(FinishAsync(job, WorkerProtocol.Fail, async ct =>
            await _s.Dispatcher.FailAsync(new FailureReport(fail.JobId, fail.LeaseId, fail.ErrorCode, fail.Message, fail.Retryable), ct) ? null : LeaseNotHeld));
    }

    private void Release(JsonElement message)
    {
        var release = WorkerProtocol.Bind<ReleaseMessage>(message);
        if (release is null)
        {
            Reject("invalid_field", "release needs jobId and leaseId.", WorkerProtocol.Release, null);
            return;
        }

        if (!Holds(release.JobId, release.LeaseId, WorkerProtocol.Release) || !TryTake(release.JobId, release.LeaseId, out var job))
        {
            return;
        }

        Track(FinishAsync(job, WorkerProtocol.Release, async ct =>
            await _s.Dispatcher.ReleaseAsync(release.JobId, release.LeaseId, ct) ? null : LeaseNotHeld));
    }

    /// <summary>Removes the job from this connection so no later message about it is accepted.</summary>
    private bool TryTake(Guid jobId, Guid leaseId, out RemoteJob job)
    {
        if (_jobs.TryGetValue(jobId, out job!) && job.Lease.LeaseId == leaseId && _jobs.TryRemove(new KeyValuePair<Guid, RemoteJob>(jobId, job)))
        {
            job.Signal?.Dispose();
            return true;
        }

        Reject("unknown_lease", "No job with that lease runs on this connection.", null, jobId);
        return false;
    }

    /// <summary>
    /// Reports the end of a job to the dispatcher off the receive loop, so one slow commit does not hold up other
    /// messages. <paramref name="report"/> answers null when accepted, else the rejection code.
    /// </summary>
    private async Task FinishAsync(RemoteJob job, string of, Func<CancellationToken, Task<string?>> report)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            if (job.Progress is { } progress)
            {
                await progress.FlushAsync().WaitAsync(timeout.Token);
            }

            if (await report(timeout.Token) is { } refused)
            {
                Reject(refused, refused == LeaseNotHeld ? "The job's lease is no longer held; the report was ignored." : "The report was not usable; the job failed.", of, job.Lease.JobId);
            }
            else
            {
                _socket.Post(new AckMessage(WorkerProtocol.Ack, of, job.Lease.JobId));
            }
        }
        catch (Exception e)
        {
            _s.Logger.LogError(e, "Reporting {Of} of job {JobId} from worker {WorkerId} failed; the lease will expire", of, job.Lease.JobId, Id);
        }
        finally
        {
            // Published outputs were moved away; whatever is left was never published.
            DeleteStaging(job);
            FreeSlot();
        }
    }

    private void Track(Task task)
    {
        _finishing[task] = 0;
        _ = task.ContinueWith(t => _finishing.TryRemove(t, out _), TaskScheduler.Default);
    }

    private void FreeSlot()
    {
        Interlocked.Increment(ref _free);
        lock (_slotFreed)
        {
            try
            {
                if (_slotFreed.CurrentCount == 0)
                {
                    _slotFreed.Release();
                }
            }
            catch (ObjectDisposedException)
            {
                // A cancel raced with the end of the session: nobody leases on it any more.
            }
        }
    }

    /// <summary>
    /// Pushes leases while the worker has free slots; sleeps on the queues' wake-ups (local enqueue or NOTIFY) or a
    /// freed slot, with the idle poll only as a safety net.
    /// </summary>
    private async Task DispatchLoopAsync(CancellationToken ct)
    {
        var idle = TimeSpan.FromSeconds(_s.Queue.IdlePollSeconds);
        var queues = KindsByQueue.ToArray();
        var start = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (Volatile.Read(ref _free) <= 0)
                {
                    await _slotFreed.WaitAsync(idle, ct);
                    continue;
                }

                var wait = idle;
                var leased = false;
                for (var i = 0; i < queues.Length; i++)
                {
                    var (queue, kinds) = queues[(start + i) % queues.Length];
                    var free = Volatile.Read(ref _free);
                    if (free <= 0)
                    {
                        break;
                    }

                    var result = await _s.Dispatcher.LeaseAsync(new LeaseRequest(Id, queue, kinds, free), ct);
                    foreach (var lease in result.Jobs)
                    {
                        await StartAsync(lease, ct);
                    }

                    leased |= result.Jobs.Count > 0;
                    if (result.Jobs.Count == free)
                    {
                        // All our slots went: other loops waiting on this queue may find more.
                        _s.Wakeups.Wake(queue);
                    }
                    else if (result.Jobs.Count == 0 && result.RetryAfter is { } after && after < wait)
                    {
                        wait = after;
                    }
                }

                start++;
                if (!leased)
                {
                    await WaitForWorkAsync(queues.Select(q => q.Key).ToArray(), wait, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _s.Logger.LogError(e, "Dispatch loop of worker {WorkerId} failed; retrying", Id);
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task WaitForWorkAsync(string[] queues, TimeSpan wait, CancellationToken ct)
    {
        if (queues.Length == 1)
        {
            await _s.Wakeups.WaitAsync(queues[0], wait, ct);
            return;
        }

        using var any = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var waits = queues.Select(q => _s.Wakeups.WaitAsync(q, wait, any.Token)).ToArray();
        await Task.WhenAny(waits);
        await any.CancelAsync();
        await ((Task)Task.WhenAll(waits)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        ct.ThrowIfCancellationRequested();
    }

    private async Task StartAsync(JobLease lease, CancellationToken ct)
    {
        Interlocked.Decrement(ref _free);
        var job = new RemoteJob(lease);
        _jobs[lease.JobId] = job;
        job.Signal = _s.Signals.Register(lease.JobId, reason => OnStop(job, reason));
        job.Progress = new ProgressPump(report => ForwardProgressAsync(job, report), _s.Logger);
        var token = await _s.Tokens.IssueAsync(lease.JobId, lease.LeaseId, ct);
        var asset = lease.Asset is { } a
            ? new LeaseAssetMessage(a.Id, a.Kind, a.ContentType, a.OriginalName, a.Size, a.Metadata, a.Category)
            : null;
        _socket.Post(new LeaseMessage(
            WorkerProtocol.Lease, lease.JobId, lease.LeaseId, lease.Kind, lease.Queue, lease.Attempt, lease.MaxAttempts, lease.LeaseExpiresAt,
            lease.Params, token, $"{WorkerEndpoints.Prefix}/jobs/{lease.JobId}/outputs/",
            asset, asset is null ? null : $"{WorkerEndpoints.Prefix}/jobs/{lease.JobId}/input"));
    }

    /// <summary>Raised by <see cref="JobSignals"/> (cancel, pause, stall, lost lease): the lease is already gone.</summary>
    private void OnStop(RemoteJob job, JobStopReason reason)
    {
        if (!_jobs.TryRemove(new KeyValuePair<Guid, RemoteJob>(job.Lease.JobId, job)))
        {
            return;
        }

        job.Signal?.Dispose();
        if (_stopped.Count >= 10_000)
        {
            _stopped.Clear();
        }

        _stopped[job.Lease.JobId] = job.Lease.LeaseId;
        _socket.Post(new CancelMessage(WorkerProtocol.Cancel, job.Lease.JobId, job.Lease.LeaseId, ReasonName(reason)));
        _ = Task.Run(() => DeleteStaging(job));
        FreeSlot();
    }

    private async Task WatchdogAsync(CancellationToken ct)
    {
        var timeoutMs = (long)(_s.Options.HeartbeatTimeoutSeconds * 1000);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Min(1, _s.Options.HeartbeatIntervalSeconds)));
        while (await TimerTicks.NextAsync(timer, ct))
        {
            if (Environment.TickCount64 - Volatile.Read(ref _lastHeardTicks) > timeoutMs)
            {
                _s.Logger.LogWarning("Worker {WorkerId} silent for {Timeout}s; disconnecting it", Id, _s.Options.HeartbeatTimeoutSeconds);
                _s.Metrics.Rejected(Source, "heartbeat_timeout");
                _socket.Abort();
                return;
            }
        }
    }

    /// <summary>After the connection ended: waits for reports in flight, then puts every job still held back in the queue.</summary>
    private async Task SettleAsync()
    {
        await Task.WhenAll(_finishing.Keys).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        foreach (var job in _jobs.Values)
        {
            if (!_jobs.TryRemove(new KeyValuePair<Guid, RemoteJob>(job.Lease.JobId, job)))
            {
                continue;
            }

            job.Signal?.Dispose();
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

            DeleteStaging(job);
        }

        if (Id.Length > 0)
        {
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
    }

    private void DeleteStaging(RemoteJob job)
    {
        var path = job.OutputDirectory(_s.Blobs);
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }

            var parent = Path.GetDirectoryName(path)!;
            if (Directory.Exists(parent) && !Directory.EnumerateFileSystemEntries(parent).Any())
            {
                Directory.Delete(parent);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _s.Logger.LogWarning(e, "Could not delete the staged outputs of job {JobId}", job.Lease.JobId);
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
