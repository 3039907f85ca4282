using System.Collections.Concurrent;

namespace Kiln.Jobs;

/// <summary>
/// Per-queue wake-up signals for idle dispatch loops. Set by local enqueues at once and by NOTIFY from other
/// nodes, so an idle worker starts a new job without polling the database.
/// </summary>
internal sealed class QueueWakeups
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _signals = new(StringComparer.Ordinal);

    public void Wake(string queue)
    {
        var signal = Get(queue);
        // At most one pending wake-up: several enqueues while a loop is busy need only one more look.
        lock (signal)
        {
            if (signal.CurrentCount == 0)
            {
                signal.Release();
            }
        }
    }

    public void WakeAll()
    {
        foreach (var queue in _signals.Keys)
        {
            Wake(queue);
        }
    }

    /// <summary>Waits for a wake-up of the queue, at most <paramref name="timeout"/>; true when woken.</summary>
    public Task<bool> WaitAsync(string queue, TimeSpan timeout, CancellationToken cancellationToken) =>
        Get(queue).WaitAsync(timeout, cancellationToken);

    private SemaphoreSlim Get(string queue) => _signals.GetOrAdd(queue, static _ => new SemaphoreSlim(0, 1));
}
