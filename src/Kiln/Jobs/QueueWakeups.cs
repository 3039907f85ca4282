using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Kiln.Jobs;

/// <summary>
/// Per-queue wake-up signals for idle dispatch loops. Set by local enqueues at once and by NOTIFY from other
/// nodes, so an idle worker starts a new job without polling the database.
/// </summary>
internal sealed class QueueWakeups(IOptions<QueueOptions>? options = null)
{
    /// <summary>Between a queue name and the sending node in a <c>kiln_jobs</c> payload.</summary>
    private const string SenderMark = "|node:";

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _signals = new(StringComparer.Ordinal);

    /// <summary>This process among the nodes sharing the database (one per server, so two in-process test servers differ).</summary>
    private readonly string _node = Guid.NewGuid().ToString("N")[..12];

    /// <summary>
    /// Appended to the queue name of a <c>kiln_jobs</c> NOTIFY by a sender that wakes this node's loops itself after
    /// its commit, so this node can ignore its own notification when it comes back: the wake-up already happened, and
    /// another would cost a lease that finds nothing. Empty when <see cref="QueueOptions.TagJobNotifications"/> is off.
    /// </summary>
    public string NotifySuffix => options?.Value.TagJobNotifications == false ? "" : SenderMark + _node;

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

    /// <summary>
    /// A <c>kiln_jobs</c> payload: a plain queue name (older nodes, scripts, untagged senders) wakes the queue; one
    /// tagged by another node wakes it too; one tagged by this node is skipped.
    /// </summary>
    public void OnNotification(string payload)
    {
        var mark = payload.LastIndexOf(SenderMark, StringComparison.Ordinal);
        if (mark < 0)
        {
            Wake(payload);
        }
        else if (!payload.AsSpan(mark + SenderMark.Length).SequenceEqual(_node))
        {
            Wake(payload[..mark]);
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
