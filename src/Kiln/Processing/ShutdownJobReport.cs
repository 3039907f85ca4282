using Npgsql;

namespace Kiln.Processing;

/// <summary>
/// Says in the log what a shutdown did to each job running in this process, one line per job: completed (or failed,
/// cancelled, paused) within the grace period, released to the queue without counting the attempt, or left running
/// for its lease to expire (the release could not be written, or the host ran out of time).
/// <para>
/// It reads the outcome from the database rather than from the workers: what the queue recorded (the attempt row of
/// the lease held when shutdown began) is what happens to the job next, whatever path the worker took to get there.
/// The jobs are taken when the host starts stopping, before any hosted service stops, and reported once all have.
/// </para>
/// </summary>
internal sealed class ShutdownJobReport(NpgsqlDataSource dataSource, InProcessWorkers workers, ILogger<ShutdownJobReport> logger)
    : IHostedLifecycleService
{
    private IReadOnlyList<(Guid JobId, string Kind, Guid LeaseId)> _running = [];

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        try
        {
            _running = await RunningAsync(cancellationToken);
            if (_running.Count > 0)
            {
                logger.LogInformation("Shutdown: {Count} jobs running in this process", _running.Count);
            }
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
        {
            logger.LogWarning(e, "Could not list the jobs running at shutdown; their outcome is not reported");
        }
    }

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (_running.Count == 0)
        {
            return;
        }

        try
        {
            var outcomes = await OutcomesAsync(cancellationToken);
            foreach (var (jobId, kind, leaseId) in _running)
            {
                var outcome = outcomes.TryGetValue(leaseId, out var recorded) ? Describe(recorded) : "was deleted";
                logger.LogInformation("Shutdown: job {JobId} ({Kind}) {Outcome}", jobId, kind, outcome);
            }
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
        {
            logger.LogWarning(e, "Could not read what happened to {Count} jobs running at shutdown", _running.Count);
        }
    }

    /// <summary>An attempt's outcome (job_history.outcome, null while its lease is held) as the log says it.</summary>
    internal static string Describe(string? outcome) => outcome switch
    {
        null => "left running for lease expiry",
        "released" => "released to the queue",
        "completed" => "completed",
        "failed" => "failed",
        _ => outcome,
    };

    private async Task<IReadOnlyList<(Guid, string, Guid)>> RunningAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select id, kind, lease_id from jobs where state = 'running' and lease_owner = @owner order by id
            """);
        cmd.Parameters.AddWithValue("owner", workers.WorkerId);
        var running = new List<(Guid, string, Guid)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            running.Add((r.GetGuid(0), r.GetString(1), r.GetGuid(2)));
        }

        return running;
    }

    private async Task<Dictionary<Guid, string?>> OutcomesAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select lease_id, outcome from job_history where job_id = any(@jobs) and lease_id = any(@leases)");
        cmd.Parameters.AddWithValue("jobs", _running.Select(r => r.JobId).ToArray());
        cmd.Parameters.AddWithValue("leases", _running.Select(r => r.LeaseId).ToArray());
        var outcomes = new Dictionary<Guid, string?>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            outcomes[r.GetGuid(0)] = r.IsDBNull(1) ? null : r.GetString(1);
        }

        return outcomes;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
