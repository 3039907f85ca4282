using System.ComponentModel.DataAnnotations;

namespace Kiln.Jobs;

/// <summary>Queue behaviour, section <c>Kiln:Queue</c> (environment prefix <c>Kiln__Queue__</c>).</summary>
internal sealed class QueueOptions
{
    public const string Section = "Kiln:Queue";

    /// <summary>How long a lease lasts without a heartbeat before the job goes back to the queue.</summary>
    [Range(1, 3600)]
    public double LeaseSeconds { get; set; } = 30;

    /// <summary>A running job with no progress for this long is aborted and retried.</summary>
    [Range(1, 86_400)]
    public double StallTimeoutSeconds { get; set; } = 60;

    [Range(1, 100)]
    public int DefaultMaxAttempts { get; set; } = 3;

    /// <summary>First retry delay; each further attempt doubles it (2 s, 4 s, 8 s …) with ±10 % jitter.</summary>
    [Range(0, 3600)]
    public double BackoffBaseSeconds { get; set; } = 2;

    /// <summary>How often lease expiry and stalls are checked.</summary>
    [Range(0.05, 60)]
    public double MaintenanceIntervalSeconds { get; set; } = 1;

    /// <summary>How often old jobs are pruned to each queue's retention.</summary>
    [Range(1, 86_400)]
    public double RetentionIntervalSeconds { get; set; } = 60;

    /// <summary>Idle workers wait for a NOTIFY; this is only the safety net should one be missed.</summary>
    [Range(0.1, 600)]
    public double IdlePollSeconds { get; set; } = 5;

    /// <summary>Retention for queues created implicitly; an admin can change a queue's values later.</summary>
    [Range(0, int.MaxValue)]
    public int KeepCompleted { get; set; } = 1000;

    [Range(0, int.MaxValue)]
    public int KeepFailed { get; set; } = 200;

    /// <summary>Most jobs leased in one round trip.</summary>
    [Range(1, 10_000)]
    public int MaxLeaseBatch { get; set; } = 500;

    /// <summary>
    /// Whether a lease of a queue without limits waits for its WAL flush before the job starts. Off by default: it
    /// takes one fsync off every job's enqueue-to-start time, and a lease lost in a crash only means the job runs again
    /// (at least once holds either way). WAL is flushed in order, so any later durable commit (the job's completion,
    /// the next enqueue) makes the lease durable first: a completion is never kept while its lease is lost. Enqueues
    /// and completions always wait for their flush, and so do leases of limited queues, whose rate window must survive
    /// a crash.
    /// </summary>
    public bool DurableLeases { get; set; }

    /// <summary>
    /// Whether the <c>kiln_jobs</c> notifications of senders that wake this node's loops themselves name this node
    /// (<c>queue|node:id</c>), so the node ignores them when they come back instead of leasing again for nothing.
    /// Nodes before this setting read such a payload as an unknown queue and find the job only at their idle poll:
    /// turn it off while a rolling upgrade still runs older nodes.
    /// </summary>
    public bool TagJobNotifications { get; set; } = true;

    /// <summary>
    /// Whether an interactive enqueue leases its jobs for an idle in-process dispatch loop in its own round trip, in a
    /// transaction after the jobs' durable one, so the loop does not need a second round trip to lease them. For one
    /// job the call still returns once the job is durable, and the lease is read after. Only for queues without
    /// limits, and never with <see cref="DurableLeases"/> (the job would start before that lease is flushed). Turn it
    /// off to have every job leased by its loop.
    /// </summary>
    public bool LeaseOnEnqueue { get; set; } = true;

    /// <summary>Progress is broadcast as it comes but written at most this often per job.</summary>
    [Range(0.1, 1000)]
    public double MaxProgressWritesPerSecond { get; set; } = 4;
}
