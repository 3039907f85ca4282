using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Queue;

namespace Kiln.Workers;

/// <summary>
/// Pushes leases to one remote worker: the one <see cref="DispatchLoop"/> over the worker's queues and slots, with a
/// start that registers the job on the connection and sends it a <c>lease</c> message.
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
    public Task RunAsync(CancellationToken ct) =>
        new DispatchLoop(s.Dispatcher, s.Wakeups, workerId, kindsByQueue, jobs.Slots, StartAsync, TimeSpan.FromSeconds(s.Queue.IdlePollSeconds), s.Logger)
            .RunAsync(ct);

    private async Task StartAsync(JobLease lease)
    {
        var job = new RemoteJob(lease);
        jobs.Add(job);
        job.Signal = s.Signals.Register(lease.JobId, lease.LeaseId, reason => onStop(job, reason));
        job.Progress = new ProgressMailbox(report => forwardProgress(job, report), s.Logger);

        // Not cancelled with the session: the job is held by now, and the end of the session settles it either way.
        var token = await s.Tokens.IssueAsync(lease.JobId, lease.LeaseId, CancellationToken.None);
        var asset = lease.Asset is { } a
            ? new LeaseAssetMessage(a.Id, a.Kind, a.ContentType, a.OriginalName, a.Size, a.Metadata, a.Category)
            : null;
        socket.Post(new LeaseMessage(
            WorkerProtocol.Lease, lease.JobId, lease.LeaseId, lease.Kind, lease.Queue, lease.Attempt, lease.MaxAttempts, lease.LeaseExpiresAt,
            lease.Params, token, $"{WorkerEndpoints.Prefix}/jobs/{lease.JobId}/outputs/",
            asset, asset is null ? null : $"{WorkerEndpoints.Prefix}/jobs/{lease.JobId}/input"));
    }
}
