using System.Collections.Concurrent;

namespace Kiln.Queue;

/// <summary>
/// The leases granted by this node and still held. Lets throttled progress (not written to the database) still be
/// checked against the lease, so a stale or forged message is refused without a round trip.
/// </summary>
internal sealed class LeaseRegistry
{
    private readonly ConcurrentDictionary<Guid, ActiveLease> _leases = new();

    public void Add(ActiveLease lease) => _leases[lease.JobId] = lease;

    public bool TryGet(Guid jobId, Guid leaseId, out ActiveLease lease)
    {
        if (_leases.TryGetValue(jobId, out lease!) && lease.LeaseId == leaseId)
        {
            return true;
        }

        lease = null!;
        return false;
    }

    public void Remove(Guid jobId) => _leases.TryRemove(jobId, out _);

    /// <summary>Forgets the lease only if it is still this one: a newer attempt of the job keeps its own.</summary>
    public void Remove(Guid jobId, Guid leaseId)
    {
        if (_leases.TryGetValue(jobId, out var held) && held.LeaseId == leaseId)
        {
            _leases.TryRemove(new KeyValuePair<Guid, ActiveLease>(jobId, held));
        }
    }

    /// <summary>The (job id, lease id) pairs among <paramref name="leaseIds"/> held here by the worker.</summary>
    public (Guid[] JobIds, Guid[] LeaseIds) JobsOf(string workerId, IReadOnlyCollection<Guid> leaseIds)
    {
        var wanted = leaseIds as ISet<Guid> ?? new HashSet<Guid>(leaseIds);
        var jobs = new List<Guid>(leaseIds.Count);
        var held = new List<Guid>(leaseIds.Count);
        foreach (var (_, lease) in _leases)
        {
            if (lease.WorkerId == workerId && wanted.Contains(lease.LeaseId))
            {
                jobs.Add(lease.JobId);
                held.Add(lease.LeaseId);
            }
        }

        return ([.. jobs], [.. held]);
    }

    public int Count => _leases.Count;
}

/// <summary>A held lease and the little the hot path needs to know about its job.</summary>
internal sealed class ActiveLease(Guid jobId, Guid leaseId, string workerId, string queue, string kind, Guid? ownerId)
{
    public Guid JobId { get; } = jobId;
    public Guid LeaseId { get; } = leaseId;
    public string WorkerId { get; } = workerId;
    public string Queue { get; } = queue;
    public string Kind { get; } = kind;
    public Guid? OwnerId { get; } = ownerId;

    /// <summary>
    /// Where the row stood when leased (its ctid as text: Npgsql does not send tid arrays). Completion tries it first (a TID lookup instead of a primary-key descent);
    /// after any later write to the row it is stale and completion falls back to the id.
    /// </summary>
    public string? Tid { get; init; }

    /// <summary>Stopwatch ticks of the last progress written to the database.</summary>
    public long LastWriteTicks { get; set; }
}
