using System.Diagnostics;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Observability;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Queue;

/// <summary>
/// The queue side of <see cref="IJobDispatcher"/>: leases with <c>FOR UPDATE SKIP LOCKED</c> in
/// (priority, run_at, id) order under the queue's pause flag, concurrency cap and rate limit; progress, failures
/// and releases. Completion lives in <see cref="CompletionWriter"/>.
/// </summary>
internal sealed class JobDispatcher(
    NpgsqlDataSource dataSource,
    LeaseRegistry leases,
    CompletionWriter completions,
    IJobEventSink events,
    KilnMetrics metrics,
    IOptions<QueueOptions> options) : IJobDispatcher
{
    private const string LeaseSql = """
        with picked as (
            select id, asset_id from jobs
            where queue = @queue and state = 'queued' and run_at <= now() and kind = any(@kinds)
            order by priority, run_at, id
            limit @max
            for update skip locked
        )
        update jobs j set state = 'running', attempts = j.attempts + 1, lease_owner = @worker,
            lease_id = gen_random_uuid(), lease_expires_at = now() + @lease, started_at = now(),
            last_progress_at = now(), progress = 0, stage = null, speed = null, eta_seconds = null,
            error_code = null, error_message = null
        from picked p left join assets a on a.id = p.asset_id
        where j.id = p.id
        returning j.id, j.lease_id, j.kind, j.attempts, j.max_attempts, j.lease_expires_at, j.params::text, j.owner_id,
            extract(epoch from (now() - j.run_at))::float8,
            a.id, a.kind, a.content_type, a.original_name, a.size, a.path, a.category, a.metadata::text
        """;

    private readonly QueueOptions _options = options.Value;
    private readonly long _progressIntervalTicks = (long)(Stopwatch.Frequency / options.Value.MaxProgressWritesPerSecond);

    public async Task<LeaseResult> LeaseAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        if (request.Max <= 0 || request.Kinds.Count == 0)
        {
            return LeaseResult.Empty;
        }

        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        var budget = await QueueBudget.ReadAsync(conn, tx, request.Queue, cancellationToken);
        if (budget.Paused)
        {
            return LeaseResult.Empty;
        }

        var max = Math.Min(request.Max, _options.MaxLeaseBatch);
        max = Math.Min(max, budget.Available);
        if (max <= 0)
        {
            await tx.CommitAsync(cancellationToken);
            return new LeaseResult([], budget.RetryAfter);
        }

        var jobs = new List<JobLease>(max);
        await using (var cmd = new NpgsqlCommand(LeaseSql, conn, tx))
        {
            cmd.Parameters.AddWithValue("queue", request.Queue);
            cmd.Parameters.AddWithValue("kinds", request.Kinds.ToArray());
            cmd.Parameters.AddWithValue("max", max);
            cmd.Parameters.AddWithValue("worker", request.WorkerId);
            cmd.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(_options.LeaseSeconds));
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var lease = ReadLease(r, request.Queue);
                var owner = r.IsDBNull(7) ? (Guid?)null : r.GetGuid(7);
                leases.Add(new ActiveLease(lease.JobId, lease.LeaseId, request.WorkerId, request.Queue, lease.Kind, owner));
                metrics.JobStarted(request.Queue, lease.Kind, r.GetDouble(8));
                jobs.Add(lease);
            }
        }

        await budget.ConsumeAsync(conn, tx, jobs.Count, cancellationToken);
        TimeSpan? retryAfter = null;
        if (jobs.Count == 0)
        {
            retryAfter = await NextRunAtAsync(conn, tx, request, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        foreach (var job in jobs)
        {
            if (leases.TryGet(job.JobId, job.LeaseId, out var active))
            {
                events.Publish(JobEvents.Update(job.JobId, active.OwnerId, JobState.Running, progress: 0));
            }
        }

        return new LeaseResult(jobs, retryAfter);
    }

    public async ValueTask<bool> ReportProgressAsync(ProgressReport report, CancellationToken cancellationToken)
    {
        if (!leases.TryGet(report.JobId, report.LeaseId, out var lease) || !double.IsFinite(report.Progress))
        {
            return false;
        }

        var progress = Math.Clamp(report.Progress, 0, 100);
        events.Publish(JobEvents.Progress(report.JobId, lease.OwnerId, report.Stage, progress, report.Speed, report.EtaSeconds, report.TotalBytes));
        var now = Stopwatch.GetTimestamp();
        if (now - lease.LastWriteTicks < _progressIntervalTicks)
        {
            return true;
        }

        lease.LastWriteTicks = now;
        await using var cmd = dataSource.CreateCommand("""
            update jobs set progress = @p, stage = coalesce(@stage, stage), speed = @speed, eta_seconds = @eta,
                total_bytes = coalesce(@bytes, total_bytes), last_progress_at = now(), lease_expires_at = now() + @lease
            where id = @id and lease_id = @lease_id and state = 'running'
            """);
        cmd.Parameters.AddWithValue("p", (float)progress);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("stage", NpgsqlDbType.Text) { TypedValue = report.Stage });
        cmd.Parameters.Add(new NpgsqlParameter<double?>("speed", NpgsqlDbType.Double) { TypedValue = report.Speed });
        cmd.Parameters.Add(new NpgsqlParameter<double?>("eta", NpgsqlDbType.Double) { TypedValue = report.EtaSeconds });
        cmd.Parameters.Add(new NpgsqlParameter<long?>("bytes", NpgsqlDbType.Bigint) { TypedValue = report.TotalBytes });
        cmd.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(_options.LeaseSeconds));
        cmd.Parameters.AddWithValue("id", report.JobId);
        cmd.Parameters.AddWithValue("lease_id", report.LeaseId);
        if (await cmd.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            leases.Remove(report.JobId);
            return false;
        }

        return true;
    }

    public async Task<int> HeartbeatAsync(string workerId, IReadOnlyCollection<Guid> leaseIds, CancellationToken cancellationToken)
    {
        if (leaseIds.Count == 0)
        {
            return 0;
        }

        await using var cmd = dataSource.CreateCommand("""
            update jobs set lease_expires_at = now() + @lease
            where lease_id = any(@ids) and lease_owner = @worker and state = 'running'
            """);
        cmd.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(_options.LeaseSeconds));
        cmd.Parameters.AddWithValue("ids", leaseIds.ToArray());
        cmd.Parameters.AddWithValue("worker", workerId);
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public Task<bool> CompleteAsync(CompletionReport report, CancellationToken cancellationToken) =>
        completions.CompleteAsync(report, cancellationToken);

    public async Task<bool> FailAsync(FailureReport report, CancellationToken cancellationToken)
    {
        leases.TryGet(report.JobId, report.LeaseId, out var held);
        leases.Remove(report.JobId);
        var message = Truncate(report.Message, 4000);
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        string state, queue, kind;
        Guid? owner;
        double? seconds;
        await using (var cmd = new NpgsqlCommand("""
            update jobs set
                state = case when @retryable and attempts < max_attempts then 'queued' else 'failed' end,
                run_at = case when @retryable and attempts < max_attempts
                    then now() + make_interval(secs => @base * power(2, attempts - 1) * (0.9 + random() * 0.2))
                    else run_at end,
                finished_at = case when @retryable and attempts < max_attempts then null else now() end,
                error_code = @code, error_message = @message,
                lease_owner = null, lease_id = null, lease_expires_at = null
            where id = @id and lease_id = @lease_id and state = 'running'
            returning state, queue, kind, owner_id, extract(epoch from (now() - started_at))::float8
            """, conn, tx))
        {
            cmd.Parameters.AddWithValue("retryable", report.Retryable);
            cmd.Parameters.AddWithValue("base", _options.BackoffBaseSeconds);
            cmd.Parameters.AddWithValue("code", Truncate(report.ErrorCode, 100));
            cmd.Parameters.AddWithValue("message", message);
            cmd.Parameters.AddWithValue("id", report.JobId);
            cmd.Parameters.AddWithValue("lease_id", report.LeaseId);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken))
            {
                return false;
            }

            (state, queue, kind) = (r.GetString(0), r.GetString(1), r.GetString(2));
            owner = r.IsDBNull(3) ? null : r.GetGuid(3);
            seconds = r.IsDBNull(4) ? null : r.GetDouble(4);
        }

        var cascaded = state == JobState.Failed
            ? await JobRows.CascadeAsync(conn, tx, [report.JobId], JobState.Failed, "parent_failed", "A job this one depends on failed.", cancellationToken)
            : [];
        if (state == JobState.Queued)
        {
            await JobRows.NotifyQueuesAsync(conn, tx, [queue], cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        metrics.JobFinished(queue, kind, state == JobState.Failed ? JobState.Failed : "retried", seconds);
        if (state == JobState.Failed)
        {
            events.Publish(JobEvents.Error(report.JobId, owner ?? held?.OwnerId, report.ErrorCode, message));
            foreach (var (id, childOwner) in cascaded)
            {
                events.Publish(JobEvents.Error(id, childOwner, "parent_failed", "A job this one depends on failed."));
            }
        }
        else
        {
            events.Publish(JobEvents.Update(report.JobId, owner, JobState.Queued));
        }

        return true;
    }

    public async Task<bool> ReleaseAsync(Guid jobId, Guid leaseId, CancellationToken cancellationToken)
    {
        leases.Remove(jobId);
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand("""
            with released as (
                update jobs set state = 'queued', attempts = greatest(attempts - 1, 0), run_at = now(),
                    lease_owner = null, lease_id = null, lease_expires_at = null
                where id = @id and lease_id = @lease_id and state = 'running'
                returning queue
            )
            select pg_notify('kiln_jobs', queue) from released
            """, conn);
        cmd.Parameters.AddWithValue("id", jobId);
        cmd.Parameters.AddWithValue("lease_id", leaseId);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken);
    }

    private static async Task<TimeSpan?> NextRunAtAsync(NpgsqlConnection conn, NpgsqlTransaction tx, LeaseRequest request, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            select extract(epoch from (min(run_at) - now()))::float8 from jobs
            where queue = @queue and state = 'queued' and kind = any(@kinds)
            """, conn, tx);
        cmd.Parameters.AddWithValue("queue", request.Queue);
        cmd.Parameters.AddWithValue("kinds", request.Kinds.ToArray());
        var seconds = await cmd.ExecuteScalarAsync(ct);
        return seconds is double s ? TimeSpan.FromSeconds(Math.Max(s, 0.001)) : null;
    }

    private static JobLease ReadLease(NpgsqlDataReader r, string queue) => new()
    {
        JobId = r.GetGuid(0),
        LeaseId = r.GetGuid(1),
        Kind = r.GetString(2),
        Queue = queue,
        Attempt = r.GetInt32(3),
        MaxAttempts = r.GetInt32(4),
        LeaseExpiresAt = r.GetFieldValue<DateTimeOffset>(5),
        Params = JsonNode.Parse(r.GetString(6)) as JsonObject ?? [],
        Asset = r.IsDBNull(9) ? null : new LeasedAsset(
            r.GetGuid(9),
            r.GetString(10),
            r.GetString(11),
            r.GetString(12),
            r.GetInt64(13),
            r.GetString(14),
            r.IsDBNull(15) ? null : r.GetString(15),
            JsonNode.Parse(r.GetString(16)) as JsonObject ?? []),
    };

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];
}
