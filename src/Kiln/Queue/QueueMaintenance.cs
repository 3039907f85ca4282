using Kiln.Jobs;
using Kiln.Hosting;
using Kiln.Observability;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Queue;

/// <summary>
/// Runs on every node: puts jobs whose lease expired (worker died) or that made no progress for the stall timeout
/// back in the queue (an attempt is counted; out of attempts, they fail), and prunes finished jobs beyond each
/// queue's retention. Each sweep is one statement with SKIP LOCKED, so nodes sweeping at once do not collide.
/// </summary>
internal sealed class QueueMaintenance(
    NpgsqlDataSource dataSource,
    JobStopper stopper,
    IJobEventSink events,
    KilnMetrics metrics,
    QueueWakeups wakeups,
    IOptions<QueueOptions> options,
    ILogger<QueueMaintenance> logger) : BackgroundService
{
    private const string ExpireSql = """
        with expired as (
            select id, case when lease_expires_at < now() then 'lease_expired' else 'stalled' end as reason
            from jobs
            where state = 'running' and (lease_expires_at < now() or last_progress_at < now() - @stall)
            for update skip locked
        )
        update jobs j set
            state = case when j.attempts >= j.max_attempts then 'failed' else 'queued' end,
            run_at = now(),
            finished_at = case when j.attempts >= j.max_attempts then now() else null end,
            error_code = e.reason,
            error_message = case e.reason when 'lease_expired' then 'The worker stopped renewing its lease.'
                else 'No progress for the stall timeout.' end,
            lease_owner = null, lease_id = null, lease_expires_at = null
        from expired e
        where j.id = e.id
        returning j.id, j.state, j.queue, j.kind, j.owner_id, e.reason
        """;

    private const string RetentionSql = """
        with ranked as (
            select j.id,
                row_number() over (partition by j.queue, j.state = 'completed' order by j.finished_at desc, j.id desc) as rn,
                case when j.state = 'completed' then q.keep_completed else q.keep_failed end as keep
            from jobs j join queues q on q.name = j.queue
            where j.state in ('completed', 'failed', 'cancelled')
        )
        delete from jobs where id in (select id from ranked where rn > keep)
        """;

    private readonly QueueOptions _options = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(_options.MaintenanceIntervalSeconds);
        var retentionEvery = TimeSpan.FromSeconds(_options.RetentionIntervalSeconds);
        var nextRetention = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(Math.Min(5, _options.RetentionIntervalSeconds));
        using var timer = new PeriodicTimer(interval);
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                await ExpireAsync(stoppingToken);
                if (DateTimeOffset.UtcNow >= nextRetention)
                {
                    nextRetention = DateTimeOffset.UtcNow + retentionEvery;
                    await PruneAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                logger.LogWarning(e, "Queue maintenance sweep failed; will try again");
            }
        }
    }

    /// <summary>One sweep of expired leases and stalled jobs; returns how many jobs it moved.</summary>
    public async Task<int> ExpireAsync(CancellationToken cancellationToken)
    {
        var moved = new List<(Guid Id, string State, string Queue, string Kind, Guid? Owner, string Reason)>();
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        await using (var cmd = new NpgsqlCommand(ExpireSql, conn, tx))
        {
            cmd.Parameters.AddWithValue("stall", TimeSpan.FromSeconds(_options.StallTimeoutSeconds));
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                moved.Add((r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetGuid(4), r.GetString(5)));
            }
        }

        if (moved.Count == 0)
        {
            await tx.CommitAsync(cancellationToken);
            return 0;
        }

        var failed = moved.Where(m => m.State == JobState.Failed).Select(m => m.Id).ToArray();
        var cascaded = failed.Length > 0
            ? await JobRows.CascadeAsync(conn, tx, failed, JobState.Failed, "parent_failed", "A job this one depends on failed.", cancellationToken)
            : [];
        await JobRows.NotifyQueuesAsync(conn, tx, moved.Where(m => m.State == JobState.Queued).Select(m => m.Queue), cancellationToken);
        await tx.CommitAsync(cancellationToken);

        // Whoever still runs them (a stalled handler, a worker cut off from us) must stop: the lease is gone.
        await stopper.StopAsync(moved.Where(m => m.Reason == "stalled").Select(m => m.Id).ToList(), JobStopReason.Stalled, cancellationToken);
        await stopper.StopAsync(moved.Where(m => m.Reason != "stalled").Select(m => m.Id).ToList(), JobStopReason.LeaseLost, cancellationToken);
        foreach (var m in moved)
        {
            logger.LogWarning("Job {JobId} {Reason}; now {State}", m.Id, m.Reason, m.State);
            metrics.JobFinished(m.Queue, m.Kind, m.State == JobState.Failed ? JobState.Failed : "retried", null);
            events.Publish(m.State == JobState.Failed
                ? JobEvents.Error(m.Id, m.Owner, m.Reason, "The job was abandoned and has no attempts left.")
                : JobEvents.Update(m.Id, m.Owner, JobState.Queued));
            if (m.State == JobState.Queued)
            {
                wakeups.Wake(m.Queue);
            }
        }

        foreach (var (id, owner) in cascaded)
        {
            events.Publish(JobEvents.Error(id, owner, "parent_failed", "A job this one depends on failed."));
        }

        return moved.Count;
    }

    /// <summary>Deletes finished jobs beyond each queue's keep_completed / keep_failed; returns how many.</summary>
    public async Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand(RetentionSql);
        var deleted = await cmd.ExecuteNonQueryAsync(cancellationToken);
        if (deleted > 0)
        {
            logger.LogInformation("Pruned {Count} finished jobs beyond retention", deleted);
        }

        return deleted;
    }
}
