using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Queue;

namespace Kiln.Workers;

/// <summary>
/// Pushes leases to one remote worker while it has free slots. When there is nothing to lease it sleeps on the
/// queues' wake-ups (a local enqueue, or another node's through NOTIFY) or on a freed slot; the idle poll is only
/// a safety net. Having taken all its free slots' worth it wakes the queue again, so other loops waiting on it
/// (one wake-up wakes one waiter) look too.
/// </summary>
internal sealed class WorkerDispatchLoop(
    WorkerSessionServices s,
    RemoteJobSet jobs,
    MessageSocket socket,
    string workerId,
    IReadOnlyDictionary<string, string[]> kindsByQueue,
    Func<RemoteJob, ProgressReport, Task> forwardProgress,
    Action<RemoteJob, JobStopReason> onStop)
{
    public async Task RunAsync(CancellationToken ct)
    {
        var idle = TimeSpan.FromSeconds(s.Queue.IdlePollSeconds);
        var queues = kindsByQueue.ToArray();
        var start = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (jobs.FreeSlots <= 0)
                {
                    await jobs.WaitForSlotAsync(idle, ct);
                    continue;
                }

                var wait = idle;
                var leased = false;
                for (var i = 0; i < queues.Length; i++)
                {
                    var (queue, kinds) = queues[(start + i) % queues.Length];
                    var free = jobs.FreeSlots;
                    if (free <= 0)
                    {
                        break;
                    }

                    var result = await s.Dispatcher.LeaseAsync(new LeaseRequest(workerId, queue, kinds, free), ct);
                    foreach (var lease in result.Jobs)
                    {
                        await StartAsync(lease, ct);
                    }

                    leased |= result.Jobs.Count > 0;
                    if (result.Jobs.Count == free)
                    {
                        s.Wakeups.Wake(queue);
                    }
                    else if (result.Jobs.Count == 0 && result.RetryAfter is { } after && after < wait)
                    {
                        wait = after;
                    }
                }

                // Queues take turns going first, so one busy queue does not starve the others of this worker's slots.
                start++;
                if (!leased)
                {
                    await WaitForWorkAsync([.. kindsByQueue.Keys], wait, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                s.Logger.LogError(e, "Dispatch loop of worker {WorkerId} failed; retrying", workerId);
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task WaitForWorkAsync(string[] queues, TimeSpan wait, CancellationToken ct)
    {
        if (queues.Length == 1)
        {
            await s.Wakeups.WaitAsync(queues[0], wait, ct);
            return;
        }

        using var any = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var waits = queues.Select(q => s.Wakeups.WaitAsync(q, wait, any.Token)).ToArray();
        await Task.WhenAny(waits);
        await any.CancelAsync();
        await ((Task)Task.WhenAll(waits)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        ct.ThrowIfCancellationRequested();
    }

    private async Task StartAsync(JobLease lease, CancellationToken ct)
    {
        var job = new RemoteJob(lease);
        jobs.Add(job);
        job.Signal = s.Signals.Register(lease.JobId, lease.LeaseId, reason => onStop(job, reason));
        job.Progress = new ProgressMailbox(report => forwardProgress(job, report), s.Logger);
        var token = await s.Tokens.IssueAsync(lease.JobId, lease.LeaseId, ct);
        var asset = lease.Asset is { } a
            ? new LeaseAssetMessage(a.Id, a.Kind, a.ContentType, a.OriginalName, a.Size, a.Metadata, a.Category)
            : null;
        socket.Post(new LeaseMessage(
            WorkerProtocol.Lease, lease.JobId, lease.LeaseId, lease.Kind, lease.Queue, lease.Attempt, lease.MaxAttempts, lease.LeaseExpiresAt,
            lease.Params, token, $"{WorkerEndpoints.Prefix}/jobs/{lease.JobId}/outputs/",
            asset, asset is null ? null : $"{WorkerEndpoints.Prefix}/jobs/{lease.JobId}/input"));
    }
}
