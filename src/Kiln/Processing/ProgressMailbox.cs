using Kiln.Queue;

namespace Kiln.Processing;

/// <summary>
/// The one progress mailbox, wherever progress travels (a handler's reports to the dispatcher in-process, to the
/// socket on a remote worker, a remote worker's reports to the dispatcher on the server): reports are sent off the
/// caller's thread, one at a time and in order, and only the newest waits while one is in flight, so a chatty
/// sender can neither block nor queue up work. <see cref="FlushAsync"/> lets a job's completion wait until the last
/// report went out, so watchers see the final progress before the end.
/// </summary>
internal sealed class ProgressMailbox(Func<ProgressReport, Task> send, ILogger logger)
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
