namespace Kiln.Observability;

/// <summary>
/// What the gauges and the <c>workers</c> health check read from features that themselves report to Observability
/// (metrics). The feature implements the interface, so the dependency points one way. An interface absent from a
/// host (<c>kiln worker</c> has no hub and no remote workers) reads as zero.
/// </summary>
internal interface IInProcessWorkerCount
{
    /// <summary>Whether this process runs jobs itself.</summary>
    bool InProcessEnabled { get; }

    /// <summary>Job slots of this process's in-process workers, all queues (0 when they are disabled).</summary>
    int InProcessSlots { get; }

    /// <summary>Jobs running in this process.</summary>
    int InProcessRunning { get; }
}

/// <inheritdoc cref="IInProcessWorkerCount"/>
internal interface IRemoteWorkerCount
{
    /// <summary>Remote workers connected to this node.</summary>
    int ConnectedWorkers { get; }
}

/// <inheritdoc cref="IInProcessWorkerCount"/>
internal interface IHubConnectionCount
{
    /// <summary>SignalR hub connections open on this node.</summary>
    int HubConnections { get; }
}
