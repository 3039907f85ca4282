using System.Globalization;
using Kiln.Jobs;
using Npgsql;

namespace Kiln.Queue;

/// <summary>
/// Stops a running job wherever it runs: at once when it runs on this node, and through NOTIFY on
/// <c>kiln_signals</c> when another node holds it. Payload: <c>{reason}:{jobId}</c>, or <c>{reason}:{jobId}:{leaseId}</c>
/// for a stop meant for one attempt only.
/// </summary>
internal sealed class JobStopper : IJobStopper
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly JobSignals _signals;
    private readonly LeaseRegistry _leases;

    public JobStopper(NpgsqlDataSource dataSource, JobSignals signals, LeaseRegistry leases, QueueNotifier notifier)
    {
        _dataSource = dataSource;
        _signals = signals;
        _leases = leases;
        notifier.Subscribe(QueueNotifier.SignalsChannel, OnSignal);
    }

    /// <summary>Stops the jobs, whichever attempt they are on; call after the state change that stops them has committed.</summary>
    public Task StopAsync(IReadOnlyCollection<Guid> jobIds, JobStopReason reason, CancellationToken cancellationToken) =>
        StopAsync(jobIds.Select(id => (id, (Guid?)null)).ToList(), reason, cancellationToken);

    /// <summary>
    /// Stops the attempts holding these leases (a stall, an expired lease): never a newer attempt of the same job.
    /// A null lease stops whichever attempt runs.
    /// </summary>
    public Task StopAttemptsAsync(IReadOnlyCollection<(Guid JobId, Guid? LeaseId)> attempts, JobStopReason reason, CancellationToken cancellationToken) =>
        StopAsync([.. attempts], reason, cancellationToken);

    private async Task StopAsync(List<(Guid JobId, Guid? LeaseId)> targets, JobStopReason reason, CancellationToken cancellationToken)
    {
        var remote = new List<string>();
        foreach (var (id, lease) in targets)
        {
            Forget(id, lease);

            if (!_signals.Raise(id, reason, lease))
            {
                var name = reason.ToString().ToLowerInvariant();
                remote.Add(lease is { } l ? $"{name}:{id}:{l}" : $"{name}:{id}");
            }
        }

        if (remote.Count == 0)
        {
            return;
        }

        await using var cmd = _dataSource.CreateCommand("select pg_notify('kiln_signals', p) from unnest(@payloads) as p");
        cmd.Parameters.AddWithValue("payloads", remote.ToArray());
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private void OnSignal(string payload)
    {
        var parts = payload.Split(':');
        if (parts.Length is < 2 or > 3
            || !Enum.TryParse<JobStopReason>(parts[0], ignoreCase: true, out var reason)
            || !Guid.TryParse(parts[1], CultureInfo.InvariantCulture, out var id))
        {
            return;
        }

        Guid? lease = parts.Length == 3 && Guid.TryParse(parts[2], CultureInfo.InvariantCulture, out var l) ? l : null;
        Forget(id, lease);
        _signals.Raise(id, reason, lease);
    }

    private void Forget(Guid jobId, Guid? leaseId)
    {
        if (leaseId is { } lease)
        {
            _leases.Remove(jobId, lease);
        }
        else
        {
            _leases.RemoveJob(jobId);
        }
    }
}
