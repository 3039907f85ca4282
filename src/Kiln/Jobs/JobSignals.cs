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
/// <remarks>
/// Registrations are per attempt (job and lease). An attempt that lost its lease may still be winding down when the
/// next attempt of the same job starts here; a stop meant for the old attempt (a stall, an expired lease) names its
/// lease, so it cannot hit the new one, and the old one is still found.
/// </remarks>
internal sealed class JobSignals
{
    private readonly ConcurrentDictionary<(Guid JobId, Guid LeaseId), Action<JobStopReason>> _running = new();

    /// <summary>Registers the stop action of an attempt running here; dispose the result when the attempt ends.</summary>
    public IDisposable Register(Guid jobId, Guid leaseId, Action<JobStopReason> stop)
    {
        _running[(jobId, leaseId)] = stop;
        return new Registration(this, (jobId, leaseId));
    }

    /// <summary>
    /// Stops the attempt holding <paramref name="leaseId"/>, or with no lease every attempt of the job running here
    /// (cancel and pause stop the job, whichever attempt it is on). True when one was stopped.
    /// </summary>
    public bool Raise(Guid jobId, JobStopReason reason, Guid? leaseId = null)
    {
        if (leaseId is { } lease)
        {
            if (!_running.TryGetValue((jobId, lease), out var stop))
            {
                return false;
            }

            stop(reason);
            return true;
        }

        var raised = false;
        foreach (var (key, stopAttempt) in _running)
        {
            if (key.JobId == jobId)
            {
                stopAttempt(reason);
                raised = true;
            }
        }

        return raised;
    }

    private sealed class Registration(JobSignals owner, (Guid, Guid) key) : IDisposable
    {
        public void Dispose() => owner._running.TryRemove(key, out _);
    }
}
