using System.Globalization;
using Kiln.Jobs;
using Npgsql;

namespace Kiln.Queue;

/// <summary>
/// Stops a running job wherever it runs: at once when it runs on this node, and through NOTIFY on
/// <c>kiln_signals</c> when another node holds it. Payload: <c>{reason}:{jobId}</c>.
/// </summary>
internal sealed class JobStopper
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

    /// <summary>Stops the jobs; call after the state change that stops them has committed.</summary>
    public async Task StopAsync(IReadOnlyCollection<Guid> jobIds, JobStopReason reason, CancellationToken cancellationToken)
    {
        var remote = new List<string>();
        foreach (var id in jobIds)
        {
            _leases.Remove(id);
            if (!_signals.Raise(id, reason))
            {
                remote.Add($"{reason.ToString().ToLowerInvariant()}:{id}");
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
        var colon = payload.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0
            || !Enum.TryParse<JobStopReason>(payload[..colon], ignoreCase: true, out var reason)
            || !Guid.TryParse(payload.AsSpan(colon + 1), CultureInfo.InvariantCulture, out var id))
        {
            return;
        }

        _leases.Remove(id);
        _signals.Raise(id, reason);
    }
}
