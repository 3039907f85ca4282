using System.Collections.Concurrent;

namespace Kiln.Queue;

/// <summary>
/// The leases granted by this node and still held, keyed by lease id. Lets throttled progress (not written to the
/// database) still be checked against the lease, so a stale or forged message is refused without a round trip.
/// Keyed by lease rather than job: a stalled attempt winding down and the job's next attempt are two entries, and
/// ending one never unregisters the other.
/// </summary>
internal sealed class LeaseRegistry
{
    private readonly ConcurrentDictionary<Guid, ActiveLease> _leases = new();

    public void Add(ActiveLease lease) => _leases[lease.LeaseId] = lease;

    public bool TryGet(Guid jobId, Guid leaseId, out ActiveLease lease)
    {
        if (_leases.TryGetValue(leaseId, out lease!) && lease.JobId == jobId)
        {
            return true;
        }

        lease = null!;
        return false;
    }

    /// <summary>Forgets the lease only if it is this job's: a newer attempt of the job keeps its own.</summary>
    public void Remove(Guid jobId, Guid leaseId)
    {
        if (_leases.TryGetValue(leaseId, out var held) && held.JobId == jobId)
        {
            _leases.TryRemove(new KeyValuePair<Guid, ActiveLease>(leaseId, held));
        }
    }

    /// <summary>
    /// Forgets every lease of the job: for a stop signal that names no lease (cancel, pause), which ends whatever
    /// attempt runs. A scan, as such signals are rare next to progress and completions.
    /// </summary>
    public void RemoveJob(Guid jobId)
    {
        foreach (var (leaseId, lease) in _leases)
        {
            if (lease.JobId == jobId)
            {
                _leases.TryRemove(new KeyValuePair<Guid, ActiveLease>(leaseId, lease));
            }
        }
    }

    /// <summary>The (job id, lease id) pairs among <paramref name="leaseIds"/> held here by the worker.</summary>
    public (Guid[] JobIds, Guid[] LeaseIds) JobsOf(string workerId, IReadOnlyCollection<Guid> leaseIds)
    {
        var jobs = new List<Guid>(leaseIds.Count);
        var held = new List<Guid>(leaseIds.Count);
        foreach (var leaseId in leaseIds)
        {
            if (_leases.TryGetValue(leaseId, out var lease) && lease.WorkerId == workerId)
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
