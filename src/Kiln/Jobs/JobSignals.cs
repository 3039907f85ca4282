using System.Collections.Concurrent;

namespace Kiln.Jobs;

/// <summary>Why a running job is being stopped from outside its handler.</summary>
internal enum JobStopReason
{
    Cancelled,
    Paused,
    LeaseLost,
    Stalled,
}

/// <summary>
/// Delivers stop requests to whoever runs a job on this node (an in-process slot or a remote worker's connection).
/// Requests from other nodes arrive through the queue notifier, so a cancel reaches the job wherever it runs.
/// </summary>
internal sealed class JobSignals
{
    private readonly ConcurrentDictionary<Guid, Action<JobStopReason>> _running = new();

    /// <summary>Registers the stop action of a job running here; dispose the result when the job ends.</summary>
    public IDisposable Register(Guid jobId, Action<JobStopReason> stop)
    {
        _running[jobId] = stop;
        return new Registration(this, jobId, stop);
    }

    /// <summary>Stops the job if it runs on this node; true when it did.</summary>
    public bool Raise(Guid jobId, JobStopReason reason)
    {
        if (_running.TryGetValue(jobId, out var stop))
        {
            stop(reason);
            return true;
        }

        return false;
    }

    public bool IsRunningHere(Guid jobId) => _running.ContainsKey(jobId);

    private sealed class Registration(JobSignals owner, Guid jobId, Action<JobStopReason> stop) : IDisposable
    {
        public void Dispose() => owner._running.TryRemove(new KeyValuePair<Guid, Action<JobStopReason>>(jobId, stop));
    }
}
