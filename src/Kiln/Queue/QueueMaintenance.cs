using Kiln.Jobs;
using Kiln.Core;
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
    TimeProvider time,
    ILogger<QueueMaintenance> logger) : BackgroundService
{
    /// <summary>
    /// Per queue, the finished jobs past the newest keep_completed completed ones and keep_failed failed or cancelled
    /// ones, read newest first from jobs_finished; at most @batch per queue and kind of outcome per statement.
    /// </summary>
    private const string RetentionSql = """
        with doomed as (
            select x.id from queues q cross join lateral (
                select id from jobs where queue = q.name and state = 'completed'
                order by finished_at desc, id desc offset q.keep_completed limit @batch) x
            union all
            select x.id from queues q cross join lateral (
                select id from jobs where queue = q.name and state in ('failed', 'cancelled')
                order by finished_at desc, id desc offset q.keep_failed limit @batch) x
        )
        delete from jobs j using doomed d where j.id = d.id
        """;

    private const int RetentionBatch = 20_000;

    private readonly QueueOptions _options = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(_options.MaintenanceIntervalSeconds);
        var retentionEvery = TimeSpan.FromSeconds(_options.RetentionIntervalSeconds);
        var nextRetention = time.GetUtcNow() + TimeSpan.FromSeconds(Math.Min(5, _options.RetentionIntervalSeconds));
        using var timer = new PeriodicTimer(interval);
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                await ExpireAsync(stoppingToken);
                if (time.GetUtcNow() >= nextRetention)
                {
                    nextRetention = time.GetUtcNow() + retentionEvery;
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
        var moved = new List<(Guid Id, string State, string Queue, string Kind, Guid? Owner, string Reason, Guid? LeaseId)>();
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        await using (var cmd = new NpgsqlCommand(JobStates.Expire, conn, tx))
        {
            cmd.Parameters.AddWithValue("stall", TimeSpan.FromSeconds(_options.StallTimeoutSeconds));
            JobStates.AddNow(cmd, time);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                moved.Add((r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetGuid(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetGuid(6)));
            }
        }

        if (moved.Count == 0)
        {
            await tx.CommitAsync(cancellationToken);
            return 0;
        }

        var failed = moved.Where(m => m.State == JobState.Failed).Select(m => m.Id).ToArray();
        var cascaded = failed.Length > 0
            ? await JobStates.CascadeAsync(conn, tx, failed, JobState.Failed, "parent_failed", "A job this one depends on failed.", time, cancellationToken)
            : [];
        await JobRows.NotifyQueuesAsync(conn, tx, moved.Where(m => m.State == JobState.Queued).Select(m => m.Queue), wakeups, cancellationToken);
        await tx.CommitAsync(cancellationToken);

        // Whoever still runs them (a stalled handler, a worker cut off from us) must stop: the lease is gone. The stop
        // names the lost lease, because the job's next attempt may already be starting here.
        await stopper.StopAttemptsAsync(moved.Where(m => m.Reason == "stalled").Select(m => (m.Id, m.LeaseId)).ToList(), JobStopReason.Stalled, cancellationToken);
        await stopper.StopAttemptsAsync(moved.Where(m => m.Reason != "stalled").Select(m => (m.Id, m.LeaseId)).ToList(), JobStopReason.LeaseLost, cancellationToken);
        foreach (var m in moved)
        {
            logger.LogWarning("Job {JobId} {Reason}; now {State}", m.Id, m.Reason, m.State);
            metrics.JobFinished(m.Queue, m.Kind, m.State == JobState.Failed ? JobState.Failed : "retried", null, m.Reason);
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
        // Short statements in a loop rather than one huge delete: a backlog of millions must not hold one long transaction.
        var total = 0;
        int deleted;
        do
        {
            await using var cmd = dataSource.CreateCommand(RetentionSql);
            cmd.Parameters.AddWithValue("batch", RetentionBatch);
            deleted = await cmd.ExecuteNonQueryAsync(cancellationToken);
            total += deleted;
        }
        while (deleted >= RetentionBatch);

        if (total > 0)
        {
            logger.LogInformation("Pruned {Count} finished jobs beyond retention", total);
        }

        return total;
    }
}
