using System.ComponentModel.DataAnnotations;

namespace Kiln.Realtime;

/// <summary>The hub and the cross-node event relay, section <c>Kiln:Realtime</c> (environment prefix <c>Kiln__Realtime__</c>).</summary>
internal sealed class RealtimeOptions
{
    public const string Section = "Kiln:Realtime";

    /// <summary>Relay job events to other nodes sharing the database through NOTIFY. Off for a single node saves nothing measurable.</summary>
    public bool RelayEnabled { get; set; } = true;

    /// <summary>Events waiting to be relayed before the oldest are dropped (progress is coalesced per job first).</summary>
    [Range(100, 10_000_000)]
    public int RelayQueueCapacity { get; set; } = 20_000;

    /// <summary>Events waiting to be sent to hub clients before the oldest are dropped.</summary>
    [Range(100, 10_000_000)]
    public int HubQueueCapacity { get; set; } = 20_000;

    /// <summary>How often a node repeats which jobs its hub clients watch; other nodes forget an interest after three periods.</summary>
    [Range(0.2, 3600)]
    public double InterestRefreshSeconds { get; set; } = 10;

    /// <summary>Most jobs one hub connection may join.</summary>
    [Range(1, 1_000_000)]
    public int MaxJobsPerConnection { get; set; } = 1000;

    /// <summary>
    /// After a join, the job is read again this much later and a terminal state the client has not been sent is
    /// delivered: closes the window in which another node did not yet know this node watches the job. 0 turns it off.
    /// </summary>
    [Range(0, 600)]
    public double ReconcileDelaySeconds { get; set; } = 1;

    /// <summary>How often the keys of open hub connections are checked; a connection whose key was revoked is closed.</summary>
    [Range(0.2, 3600)]
    public double KeyCheckIntervalSeconds { get; set; } = 5;

    /// <summary>
    /// At shutdown, how long the hub connections are held open for every client to acknowledge <c>server-shutdown</c>
    /// before they close; a client that has not answered by then may not have received it.
    /// </summary>
    [Range(0.1, 300)]
    public double ShutdownNoticeSeconds { get; set; } = 5;

    /// <summary>Largest NOTIFY payload the relay writes; PostgreSQL refuses 8000 bytes or more.</summary>
    [Range(512, 7999)]
    public int NotifyPayloadBytes { get; set; } = 7900;
}
