using Kiln.Jobs;

namespace Kiln.Queue;

/// <summary>
/// A worker's slots: how many more jobs it may take. Taken by <see cref="DispatchLoop"/> for each job it leases,
/// given back by whoever sees the job end; a freed slot wakes the loop waiting for one.
/// </summary>
internal sealed class SlotPool : IDisposable
{
    private readonly SemaphoreSlim _freed = new(0, 1);
    private int _free;

    public SlotPool(int slots = 0) => _free = slots;

    public int Free => Volatile.Read(ref _free);

    /// <summary>Adds slots (a remote worker announces its own in its hello).</summary>
    public void Add(int slots)
    {
        Interlocked.Add(ref _free, slots);
        Signal();
    }

    public void Take() => Interlocked.Decrement(ref _free);

    /// <summary>Takes up to <paramref name="max"/> free slots at once; how many it took.</summary>
    public int TakeUpTo(int max)
    {
        while (true)
        {
            var free = Volatile.Read(ref _free);
            var take = Math.Min(free, max);
            if (take <= 0)
            {
                return 0;
            }

            if (Interlocked.CompareExchange(ref _free, free - take, free) == free)
            {
                return take;
            }
        }
    }

    public void Release()
    {
        Interlocked.Increment(ref _free);
        Signal();
    }

    /// <summary>Waits until a slot is freed, at most <paramref name="timeout"/>.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _freed.WaitAsync(timeout, cancellationToken);

    public void Dispose() => _freed.Dispose();

    private void Signal()
    {
        // At most one pending signal: several slots freed while the loop leases need only one more look.
        lock (_freed)
        {
            try
            {
                if (_freed.CurrentCount == 0)
                {
                    _freed.Release();
                }
            }
            catch (ObjectDisposedException)
            {
                // A job ended after its worker went away: nobody leases on these slots any more.
            }
        }
    }
}

/// <summary>
/// The one dispatch loop, for an in-process queue and for a remote worker alike: leases jobs of its kinds while it
/// has free slots and hands each to <paramref name="start"/>. With nothing to lease it sleeps on the queues'
/// wake-ups (a local enqueue, another node's through NOTIFY), the next delayed job, or the idle poll as the safety
/// net; with no free slot it sleeps until one is freed. Having taken all its free slots' worth from a queue it wakes
/// that queue again, so another loop waiting on it (one wake-up wakes one waiter) looks too. Queues take turns going
/// first, so one busy queue does not starve the others of the slots.
/// </summary>
internal sealed class DispatchLoop(
    IJobDispatcher dispatcher,
    QueueWakeups wakeups,
    string workerId,
    IReadOnlyDictionary<string, string[]> kindsByQueue,
    SlotPool slots,
    Func<JobLease, Task> start,
    TimeSpan idlePoll,
    ILogger logger,
    IdleLoops? idleLoops = null)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var queues = kindsByQueue.ToArray();
        var first = 0;
        // A one-queue loop offers its free slots while it waits for work: an enqueue on that queue leases for it in
        // the insert's own round trip (Queue/LeaseAtEnqueue) and the loop need not wake.
        using var offer = queues.Length == 1 ? idleLoops?.Register(queues[0].Key, workerId, queues[0].Value, slots, start) : null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (slots.Free <= 0)
                {
                    await slots.WaitAsync(idlePoll, cancellationToken);
                    continue;
                }

                var wait = idlePoll;
                var more = false;
                for (var i = 0; i < queues.Length; i++)
                {
                    var (queue, kinds) = queues[(first + i) % queues.Length];
                    var free = slots.Free;
                    if (free <= 0)
                    {
                        break;
                    }

                    // Not cancelled by shutdown: a lease cut off after the server ran it would strand its jobs as
                    // running until their leases expire. Leasing is quick; the loop checks the token before the next one.
                    var result = await dispatcher.LeaseAsync(new LeaseRequest(workerId, queue, kinds, free), CancellationToken.None);
                    foreach (var lease in result.Jobs)
                    {
                        slots.Take();
                        await start(lease);
                    }

                    // A drained queue is not leased again at once: that lease would find nothing (two statements per
                    // job on a quiet queue, half of its database work). Its next job comes with a wake-up.
                    var drained = result.Jobs.Count == 0 || result.Drained;
                    more |= !drained;
                    if (result.Jobs.Count == free)
                    {
                        wakeups.Wake(queue);
                    }
                    else if (drained && result.RetryAfter is { } after && after < wait)
                    {
                        wait = after;
                    }
                }

                first++;
                if (!more)
                {
                    offer?.Idle = true;
                    try
                    {
                        await WaitForWorkAsync(wait, cancellationToken);
                    }
                    finally
                    {
                        offer?.Idle = false;
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Dispatch loop of {WorkerId} for {Queues} failed; retrying", workerId, string.Join(", ", kindsByQueue.Keys));
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task WaitForWorkAsync(TimeSpan wait, CancellationToken ct)
    {
        if (kindsByQueue.Count == 1)
        {
            await wakeups.WaitAsync(kindsByQueue.Keys.First(), wait, ct);
            return;
        }

        using var any = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var waits = kindsByQueue.Keys.Select(q => wakeups.WaitAsync(q, wait, any.Token)).ToArray();
        await Task.WhenAny(waits);
        await any.CancelAsync();
        await ((Task)Task.WhenAll(waits)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        ct.ThrowIfCancellationRequested();
    }
}
