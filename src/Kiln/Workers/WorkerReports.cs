using System.Text.Json;
using Kiln.Queue;
using Kiln.Storage;

namespace Kiln.Workers;

/// <summary>
/// What a remote worker reports about its jobs — progress, completion, failure, release — checked before anything
/// reaches the dispatcher: fields, ranges, and that the job runs on this connection under that lease. A refused
/// message is answered with <c>rejected</c> and counted; nothing is written for it.
/// </summary>
internal sealed class WorkerReports(WorkerSessionServices s, RemoteJobSet jobs, MessageSocket socket, Func<string> who)
{
    public const string Source = "remote_worker";
    private const string LeaseNotHeld = "lease_not_held";

    /// <summary>Cancelled when the session ends; progress still being handed on stops then.</summary>
    public CancellationToken SessionToken { get; set; }

    public void Progress(JsonElement message)
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

        if (TryHold(progress.JobId, progress.LeaseId, WorkerProtocol.Progress, out var job))
        {
            // A throttled database write may wait on a connection; one job's write must not hold up every other message.
            job.Progress!.Post(new ProgressReport(progress.JobId, progress.LeaseId, progress.Progress, progress.Stage, progress.Speed, progress.Eta, progress.TotalBytes));
        }
    }

    public async Task ForwardProgressAsync(RemoteJob job, ProgressReport report)
    {
        // Refused after the job ended here (its completion waits for this report, a cancel does not) is no news.
        if (!await s.Dispatcher.ReportProgressAsync(report, SessionToken) && jobs.IsHeld(job))
        {
            Reject(LeaseNotHeld, "The job's lease is no longer held.", WorkerProtocol.Progress, job.Lease.JobId);
        }
    }

    public void Complete(JsonElement message)
    {
        var complete = WorkerProtocol.Bind<CompleteMessage>(message);
        if (complete is null)
        {
            Reject("invalid_field", "complete needs jobId and leaseId; outputs need type, path and contentType.", WorkerProtocol.Complete, null);
            return;
        }

        if (WorkerProtocol.Validate(complete, s.Options.MaxOutputs) is { } invalid)
        {
            Reject(invalid, "The outputs are not valid.", WorkerProtocol.Complete, complete.JobId);
            return;
        }

        if (!TryTake(complete.JobId, complete.LeaseId, WorkerProtocol.Complete, out var job))
        {
            return;
        }

        var outputs = complete.Outputs?.Select(o => new OutputFile(o.Type, o.Path, o.ContentType, o.Variant ?? "", o.Width, o.Height, o.Duration)).ToList();
        var staging = outputs is { Count: > 0 } ? job.OutputDirectory(s.Blobs) : null;
        Finish(job, WorkerProtocol.Complete, async ct =>
        {
            try
            {
                var report = new CompletionReport(job.Lease.JobId, job.Lease.LeaseId, complete.Result, outputs, staging, complete.AssetMetadata);
                return await s.Dispatcher.CompleteAsync(report, ct) ? null : LeaseNotHeld;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // Outputs that were never uploaded, or outputs for a job without an asset: the worker's result is unusable.
                s.Logger.LogWarning("Worker {WorkerId} completed {JobId} with invalid outputs: {Message}", who(), job.Lease.JobId, e.Message);
                await s.Dispatcher.FailAsync(new FailureReport(job.Lease.JobId, job.Lease.LeaseId, "invalid_output", e.Message, Retryable: false), ct);
                return "invalid_output";
            }
        });
    }

    public void Fail(JsonElement message)
    {
        var fail = WorkerProtocol.Bind<FailMessage>(message);
        if (fail is null || WorkerProtocol.Validate(fail) is not null)
        {
            Reject("invalid_field", "fail needs jobId, leaseId, errorCode (1-100 characters) and message.", WorkerProtocol.Fail, fail?.JobId);
            return;
        }

        if (TryTake(fail.JobId, fail.LeaseId, WorkerProtocol.Fail, out var job))
        {
            Finish(job, WorkerProtocol.Fail, async ct =>
                await s.Dispatcher.FailAsync(new FailureReport(fail.JobId, fail.LeaseId, fail.ErrorCode, fail.Message, fail.Retryable), ct) ? null : LeaseNotHeld);
        }
    }

    public void Release(JsonElement message)
    {
        var release = WorkerProtocol.Bind<ReleaseMessage>(message);
        if (release is null)
        {
            Reject("invalid_field", "release needs jobId and leaseId.", WorkerProtocol.Release, null);
            return;
        }

        if (TryTake(release.JobId, release.LeaseId, WorkerProtocol.Release, out var job))
        {
            Finish(job, WorkerProtocol.Release, async ct =>
                await s.Dispatcher.ReleaseAsync(release.JobId, release.LeaseId, ct) ? null : LeaseNotHeld);
        }
    }

    public void Reject(string code, string message, string? of, Guid? jobId)
    {
        s.Metrics.Rejected(Source, code);
        s.Logger.LogWarning("Rejected a {Of} message from worker {WorkerId}: {Code}", of ?? "worker", who(), code);
        socket.Post(new RejectedMessage(WorkerProtocol.Rejected, code, message, of, jobId));
    }

    /// <summary>True when the job runs on this connection under that lease; otherwise refuses the message.</summary>
    private bool TryHold(Guid jobId, Guid leaseId, string of, out RemoteJob job)
    {
        switch (jobs.Check(jobId, leaseId, out job))
        {
            case LeaseCheck.Held:
                return true;
            case LeaseCheck.Stale:
                // Crossed the server's cancel on the wire: ignored and counted, but not a protocol error.
                s.Metrics.Rejected(Source, "stale_lease");
                return false;
            default:
                Reject("unknown_lease", "No job with that lease runs on this connection.", of, jobId);
                return false;
        }
    }

    /// <summary>Like <see cref="TryHold"/>, and takes the job off the connection so no later message about it is accepted.</summary>
    private bool TryTake(Guid jobId, Guid leaseId, string of, out RemoteJob job)
    {
        if (!TryHold(jobId, leaseId, of, out job))
        {
            return false;
        }

        if (jobs.TryTake(job))
        {
            return true;
        }

        // The server stopped it in between.
        s.Metrics.Rejected(Source, "stale_lease");
        return false;
    }

    /// <summary>
    /// Reports the end of a job off the receive loop, so one slow commit does not hold up other messages, after the
    /// job's last progress report went out. <paramref name="report"/> answers null when accepted, else a rejection code.
    /// </summary>
    private void Finish(RemoteJob job, string of, Func<CancellationToken, Task<string?>> report) => jobs.Track(FinishAsync(job, of, report));

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
                socket.Post(new AckMessage(WorkerProtocol.Ack, of, job.Lease.JobId));
            }
        }
        catch (Exception e)
        {
            s.Logger.LogError(e, "Reporting {Of} of job {JobId} from worker {WorkerId} failed; the lease will expire", of, job.Lease.JobId, who());
        }
        finally
        {
            RemoteJobSet.DeleteStaging(job, s.Blobs, s.Logger);
            jobs.Slots.Release();
        }
    }
}
