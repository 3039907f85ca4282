using Kiln.Queue;

namespace Kiln.Workers;

/// <summary>
/// Server side of a remote job's progress: reports go to the dispatcher off the receive loop, one at a time and
/// in order, and only the newest waits while one is in flight, so a chatty worker cannot queue up database work.
/// <see cref="FlushAsync"/> lets the job's completion wait until the last report went out, so watchers see the
/// final progress before the end.
/// </summary>
internal sealed class ProgressPump(Func<ProgressReport, Task> send, ILogger logger)
{
    private readonly Lock _gate = new();
    private ProgressReport? _pending;
    private Task _pump = Task.CompletedTask;
    private bool _active;

    public void Post(ProgressReport report)
    {
        lock (_gate)
        {
            _pending = report;
            if (!_active)
            {
                _active = true;
                _pump = Task.Run(PumpAsync);
            }
        }
    }

    /// <summary>Completes once every report posted so far has been handed on.</summary>
    public Task FlushAsync()
    {
        lock (_gate)
        {
            return _pump;
        }
    }

    private async Task PumpAsync()
    {
        while (true)
        {
            ProgressReport next;
            lock (_gate)
            {
                if (_pending is not { } pending)
                {
                    _active = false;
                    return;
                }

                next = pending;
                _pending = null;
            }

            try
            {
                await send(next);
            }
            catch (Exception e)
            {
                logger.LogDebug(e, "Progress report for {JobId} failed", next.JobId);
            }
        }
    }
}
