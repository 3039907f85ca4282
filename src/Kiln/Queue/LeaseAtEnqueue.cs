using Kiln.Jobs;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Queue;

/// <summary>
/// The in-process dispatch loops that wait idle for work with free slots, by queue. An interactive enqueue claims
/// one (<see cref="LeaseAtEnqueue"/>) and leases its jobs for it in the insert's own round trip.
/// </summary>
internal sealed class IdleLoops
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<IdleLoop>> _byQueue = new(StringComparer.Ordinal);

    public IdleLoop Register(string queue, string workerId, string[] kinds, SlotPool slots, Func<JobLease, Task> start)
    {
        var loop = new IdleLoop(this, queue, workerId, kinds, slots, start);
        lock (_gate)
        {
            if (!_byQueue.TryGetValue(queue, out var loops))
            {
                _byQueue[queue] = loops = [];
            }

            loops.Add(loop);
        }

        return loop;
    }

    /// <summary>Reserves up to <paramref name="max"/> free slots of an idle loop on the queue; null when none is idle.</summary>
    public IdleClaim? Claim(string queue, int max)
    {
        lock (_gate)
        {
            if (!_byQueue.TryGetValue(queue, out var loops))
            {
                return null;
            }

            foreach (var loop in loops)
            {
                if (loop.TryClaim(max) is { } claim)
                {
                    return claim;
                }
            }
        }

        return null;
    }

    /// <summary>Whether a loop on the queue waits idle now (tests wait for it before enqueueing).</summary>
    public bool AnyIdle(string queue)
    {
        lock (_gate)
        {
            return _byQueue.TryGetValue(queue, out var loops) && loops.Any(l => l.Idle);
        }
    }

    public void Unregister(IdleLoop loop)
    {
        lock (_gate)
        {
            if (_byQueue.TryGetValue(loop.Queue, out var loops))
            {
                loops.Remove(loop);
            }
        }
    }
}

/// <summary>One dispatch loop's offer: idle while it waits for work; claimed by at most one enqueue at a time.</summary>
internal sealed class IdleLoop(IdleLoops registry, string queue, string workerId, string[] kinds, SlotPool slots, Func<JobLease, Task> start) : IDisposable
{
    private int _claimed;
    private volatile bool _idle;

    public string Queue => queue;

    /// <summary>Set by the loop around its wait for work.</summary>
    public bool Idle
    {
        get => _idle;
        set => _idle = value;
    }

    public IdleClaim? TryClaim(int max)
    {
        if (!_idle || Interlocked.CompareExchange(ref _claimed, 1, 0) != 0)
        {
            return null;
        }

        var reserved = slots.TakeUpTo(max);
        if (reserved == 0)
        {
            Volatile.Write(ref _claimed, 0);
            return null;
        }

        return new IdleClaim(new LeaseRequest(workerId, queue, kinds, reserved), kinds, start, unused =>
        {
            for (var i = 0; i < unused; i++)
            {
                slots.Release();
            }

            Volatile.Write(ref _claimed, 0);
        });
    }

    public void Dispose() => registry.Unregister(this);
}

/// <summary>
/// Slots reserved from an idle loop (<see cref="LeaseRequest.Max"/> of them), taken from its pool so that the loop,
/// woken meanwhile, leases only for the rest. Those not used by a started job go back when the claim is disposed.
/// </summary>
internal sealed class IdleClaim(LeaseRequest request, string[] kinds, Func<JobLease, Task> start, Action<int> end) : IDisposable
{
    private int _started;

    public LeaseRequest Request => request;

    public string[] Kinds => kinds;

    /// <summary>Hands a leased job to the loop's slots, as the loop would.</summary>
    public Task StartAsync(JobLease lease)
    {
        _started++;
        return start(lease);
    }

    public void Dispose() => end(request.Max - _started);
}

/// <summary>
/// <see cref="ILeaseAtEnqueue"/> for the in-process loops: the enqueue's batch carries the same unlimited lease the
/// loop would send next (<see cref="JobLeaser.AddFastLease"/>), for the slots it reserved from an idle loop.
/// </summary>
internal sealed class LeaseAtEnqueue(IdleLoops idle, JobLeaser leaser, IOptions<QueueOptions> options, TimeProvider time) : ILeaseAtEnqueue
{
    public IEnqueueLease? TryAdd(NpgsqlBatch batch, string queue, Guid guard)
    {
        var o = options.Value;
        if (!o.LeaseOnEnqueue || o.DurableLeases || leaser.IsLimited(queue) || idle.Claim(queue, o.MaxLeaseBatch) is not { } claim)
        {
            return null;
        }

        leaser.AddFastLease(batch, claim.Request, claim.Kinds, claim.Request.Max, time.GetUtcNow(), guard);
        return new Pending(leaser, claim);
    }

    private sealed class Pending(JobLeaser leaser, IdleClaim claim) : IEnqueueLease
    {
        private List<JobLease> _jobs = [];

        public string Queue => claim.Request.Queue;

        public bool Drained { get; private set; }

        public async Task ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
        {
            await reader.NextResultAsync(cancellationToken);
            var (jobs, state) = await leaser.ReadFastLeaseAsync(reader, claim.Request, claim.Request.Max, cancellationToken);
            _jobs = jobs;
            // Short and unlimited: nothing ready is left. A limited queue leased nothing here; its loop must look.
            Drained = state is { Limited: false };
        }

        public async Task StartAsync()
        {
            leaser.Announce(_jobs);
            foreach (var job in _jobs)
            {
                await claim.StartAsync(job);
            }
        }

        public void Dispose() => claim.Dispose();
    }
}
