namespace Kiln.Jobs;

/// <summary>
/// Stops running attempts wherever they run. Jobs' commands (cancel, pause) call it after their state change has
/// committed; the queue implements it (<c>Queue/JobStopper</c>), since it knows the leases and the other nodes.
/// </summary>
internal interface IJobStopper
{
    /// <summary>Stops the jobs, whichever attempt they are on; call after the state change that stops them has committed.</summary>
    Task StopAsync(IReadOnlyCollection<Guid> jobIds, JobStopReason reason, CancellationToken cancellationToken);

    /// <summary>
    /// Stops the attempts holding these leases (a stall, an expired lease): never a newer attempt of the same job.
    /// A null lease stops whichever attempt runs.
    /// </summary>
    Task StopAttemptsAsync(IReadOnlyCollection<(Guid JobId, Guid? LeaseId)> attempts, JobStopReason reason, CancellationToken cancellationToken);
}
