using Npgsql;

namespace Kiln.Jobs;

/// <summary>
/// Lets the interactive enqueue lease its jobs for an idle local dispatch loop in the same round trip as the insert,
/// instead of waking the loop to lease them in a round trip of its own (docs/queue.md, "Lease on enqueue").
/// Implemented by the queue engine (<c>Queue/LeaseAtEnqueue</c>), which knows the loops and the lease statement.
/// </summary>
internal interface ILeaseAtEnqueue
{
    /// <summary>
    /// Adds a lease of <paramref name="queue"/>'s ready jobs for an idle local loop to <paramref name="batch"/>,
    /// in a transaction after the insert's, leasing only if job <paramref name="guard"/> (one the insert wrote) exists;
    /// null when no loop waits idle on that queue with a free slot.
    /// </summary>
    IEnqueueLease? TryAdd(NpgsqlBatch batch, string queue, Guid guard);
}

/// <summary>A lease added to the enqueue's batch. Disposing it gives back the loop's slots it did not use.</summary>
internal interface IEnqueueLease : IDisposable
{
    string Queue { get; }

    /// <summary>True when the lease took every ready job of its queue, so the loop need not be woken.</summary>
    bool Drained { get; }

    /// <summary>Reads the lease's results; the reader stands on the result set before the lease's.</summary>
    Task ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken);

    /// <summary>After the batch committed: announces the leased jobs and hands them to the loop's slots.</summary>
    Task StartAsync();
}
