using Kiln.Jobs;

namespace Kiln.Realtime;

/// <summary>
/// A bounded, ordered queue of job events between a publisher that must never block and one async reader.
/// Progress is coalesced per job: a newer progress event replaces one still waiting, in its place, so a client sees
/// the latest value without every intermediate one; any other event for the job ends that slot, so order between
/// progress and state changes is kept. When full, the oldest event is dropped and counted.
/// </summary>
internal sealed class CoalescingEventQueue(int capacity) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Queue<Slot> _slots = new();
    private readonly Dictionary<Guid, Slot> _pendingProgress = [];
    private readonly SemaphoreSlim _signal = new(0, 1);
    private long _dropped;
    private long _coalesced;

    public long Dropped => Interlocked.Read(ref _dropped);

    public long Coalesced => Interlocked.Read(ref _coalesced);

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _slots.Count;
            }
        }
    }

    /// <summary>Adds an event; returns false when an older one had to be dropped to make room.</summary>
    public bool Enqueue(JobEvent jobEvent)
    {
        var kept = true;
        lock (_gate)
        {
            if (jobEvent.Type == JobEventType.Progress)
            {
                if (_pendingProgress.TryGetValue(jobEvent.JobId, out var waiting))
                {
                    waiting.Event = jobEvent;
                    _coalesced++;
                    return true;
                }
            }
            else
            {
                _pendingProgress.Remove(jobEvent.JobId);
            }

            if (_slots.Count >= capacity)
            {
                var oldest = _slots.Dequeue();
                if (_pendingProgress.TryGetValue(oldest.Event.JobId, out var pending) && ReferenceEquals(pending, oldest))
                {
                    _pendingProgress.Remove(oldest.Event.JobId);
                }

                _dropped++;
                kept = false;
            }

            var slot = new Slot(jobEvent);
            _slots.Enqueue(slot);
            if (jobEvent.Type == JobEventType.Progress)
            {
                _pendingProgress[jobEvent.JobId] = slot;
            }

            if (_signal.CurrentCount == 0)
            {
                _signal.Release();
            }
        }

        return kept;
    }

    /// <summary>Wakes the reader without an event, for work it does besides draining.</summary>
    public void Poke()
    {
        lock (_gate)
        {
            if (_signal.CurrentCount == 0)
            {
                _signal.Release();
            }
        }
    }

    /// <summary>Moves up to <paramref name="max"/> events, oldest first, into <paramref name="into"/>.</summary>
    public int Drain(List<JobEvent> into, int max)
    {
        lock (_gate)
        {
            var n = 0;
            while (n < max && _slots.TryDequeue(out var slot))
            {
                if (_pendingProgress.TryGetValue(slot.Event.JobId, out var pending) && ReferenceEquals(pending, slot))
                {
                    _pendingProgress.Remove(slot.Event.JobId);
                }

                into.Add(slot.Event);
                n++;
            }

            return n;
        }
    }

    /// <summary>Waits until events may be waiting, at most <paramref name="timeout"/>; false when cancelled.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await _signal.WaitAsync(timeout, cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => _signal.Dispose();

    private sealed class Slot(JobEvent jobEvent)
    {
        public JobEvent Event { get; set; } = jobEvent;
    }
}
