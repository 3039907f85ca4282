using Kiln.Queue;

namespace Kiln.Processing;

/// <summary>
/// Forwards a handler's progress to the dispatcher without blocking the handler: one send in flight per job, and
/// only the newest value waits behind it, so reports never arrive out of order and a chatty handler cannot queue
/// up work.
/// </summary>
internal sealed class ProgressForwarder(Func<ProgressReport, ValueTask> send, Guid jobId, Guid leaseId, ILogger logger)
    : IProgress<JobProgress>
{
    private readonly Lock _gate = new();
    private JobProgress? _pending;
    private bool _sending;

    public void Report(JobProgress value)
    {
        lock (_gate)
        {
            _pending = value;
            if (_sending)
            {
                return;
            }

            _sending = true;
        }

        _ = PumpAsync();
    }

    private async Task PumpAsync()
    {
        while (true)
        {
            JobProgress next;
            lock (_gate)
            {
                if (_pending is not { } p)
                {
                    _sending = false;
                    return;
                }

                next = p;
                _pending = null;
            }

            try
            {
                await send(new ProgressReport(jobId, leaseId, next.Percent, next.Stage, next.Speed, next.EtaSeconds, next.TotalBytes));
            }
            catch (Exception e)
            {
                logger.LogDebug(e, "Progress report for {JobId} failed", jobId);
            }
        }
    }
}
