using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Observability;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Queue;

/// <summary>
/// Hands out ready jobs in (priority, run_at, id) order with <c>FOR UPDATE SKIP LOCKED</c>, so concurrent leases
/// never return the same job. A queue with no concurrency cap or rate limit is leased in one autocommitted
/// statement that also checks the pause flag; a limited queue is leased under a lock on its queue row so that its
/// limits hold across all workers and nodes (see <see cref="QueueBudget"/>).
/// </summary>
internal sealed class JobLeaser(
    NpgsqlDataSource dataSource,
    LeaseRegistry leases,
    IJobEventSink events,
    KilnMetrics metrics,
    IOptions<QueueOptions> options)
{
    private const string LeaseColumns = """
        l.id, l.lease_id, l.kind, l.attempts, l.max_attempts, l.lease_expires_at, l.params, l.owner_id, l.waited,
        a.id, a.kind, a.content_type, a.original_name, a.size, a.path, a.category, a.metadata::text, l.tid
        """;

    /// <summary>
    /// Updates the picked rows by ctid: they are locked by this statement, so their tuple ids cannot change under it,
    /// and a TID scan saves the primary-key descent per job a join on id would cost.
    /// </summary>
    private const string LeaseUpdate = """
        update jobs j set state = 'running', attempts = j.attempts + 1, lease_owner = @worker,
            lease_id = gen_random_uuid(), lease_expires_at = now() + @lease, started_at = now(),
            last_progress_at = now(), progress = 0, stage = null, speed = null, eta_seconds = null,
            error_code = null, error_message = null
        where j.ctid = any(array(select ctid from picked))
        returning j.id, j.lease_id, j.kind, j.attempts, j.max_attempts, j.lease_expires_at,
            case when j.params = '{}'::jsonb then null else j.params::text end as params, j.owner_id,
            j.asset_id, extract(epoch from (now() - j.run_at))::float8 as waited, j.priority, j.run_at, j.ctid::text as tid
        """;

    /// <summary>
    /// The unlimited path: one statement, one round trip. It leases nothing when the queue is paused or has limits
    /// (the caller then looks at the queue and takes the locked path).
    /// </summary>
    private const string FastLeaseSql = $"""
        with picked as (
            select ctid from jobs
            where queue = @queue and state = 'queued' and run_at <= now() and kind = any(@kinds)
                and not exists (select 1 from queues q where q.name = @queue and (q.paused or q.concurrency > 0 or q.rate_max > 0))
            order by priority, run_at, id
            limit @max
            for update skip locked
        ), l as ({LeaseUpdate})
        select {LeaseColumns} from l left join assets a on a.id = l.asset_id
        order by l.priority, l.run_at, l.id
        """;

    private const string LockedLeaseSql = $"""
        with picked as (
            select ctid from jobs
            where queue = @queue and state = 'queued' and run_at <= now() and kind = any(@kinds)
            order by priority, run_at, id
            limit @max
            for update skip locked
        ), l as ({LeaseUpdate})
        select {LeaseColumns} from l left join assets a on a.id = l.asset_id
        order by l.priority, l.run_at, l.id
        """;

    /// <summary>What an empty fast lease needs next: is the queue paused or limited, and when is the next job due.</summary>
    private const string QueueStateSql = """
        select coalesce(q.paused, false), coalesce(q.concurrency > 0 or q.rate_max > 0, false),
            (select extract(epoch from (min(j.run_at) - now()))::float8 from jobs j
             where j.queue = @queue and j.state = 'queued' and j.kind = any(@kinds))
        from (select 1) one left join queues q on q.name = @queue
        """;

    private readonly QueueOptions _options = options.Value;

    /// <summary>Queues last seen with a concurrency cap or rate limit: they go straight to the locked path.</summary>
    private readonly ConcurrentDictionary<string, bool> _limited = new(StringComparer.Ordinal);

    public async Task<LeaseResult> LeaseAsync(LeaseRequest request, CancellationToken cancellationToken)
    {
        var max = Math.Min(request.Max, _options.MaxLeaseBatch);
        if (max <= 0 || request.Kinds.Count == 0)
        {
            return LeaseResult.Empty;
        }

        var kinds = request.Kinds as string[] ?? [.. request.Kinds];
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        if (!_limited.ContainsKey(request.Queue))
        {
            var jobs = await RunLeaseAsync(conn, null, FastLeaseSql, request, kinds, max, cancellationToken);
            if (jobs.Count > 0)
            {
                Announce(jobs);
                return new LeaseResult(jobs, null);
            }

            var (paused, limited, nextDue) = await QueueStateAsync(conn, request.Queue, kinds, cancellationToken);
            if (paused)
            {
                return LeaseResult.Empty;
            }

            if (!limited)
            {
                return new LeaseResult([], RetryAfter(nextDue));
            }

            _limited[request.Queue] = true;
        }

        return await LeaseLockedAsync(conn, request, kinds, max, cancellationToken);
    }

    private async Task<LeaseResult> LeaseLockedAsync(NpgsqlConnection conn, LeaseRequest request, string[] kinds, int max, CancellationToken ct)
    {
        List<JobLease> jobs;
        TimeSpan? retryAfter;
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            var budget = await QueueBudget.ReadAsync(conn, tx, request.Queue, ct);
            if (!budget.Limited)
            {
                _limited.TryRemove(request.Queue, out _);
            }

            if (budget.Paused)
            {
                return LeaseResult.Empty;
            }

            max = Math.Min(max, budget.Available);
            jobs = max > 0 ? await RunLeaseAsync(conn, tx, LockedLeaseSql, request, kinds, max, ct) : [];
            await budget.ConsumeAsync(conn, tx, jobs.Count, ct);
            retryAfter = budget.RetryAfter;
            if (jobs.Count == 0 && retryAfter is null && budget.Available > 0)
            {
                retryAfter = RetryAfter((await QueueStateAsync(conn, request.Queue, kinds, ct)).NextDue);
            }

            await tx.CommitAsync(ct);
        }

        Announce(jobs);
        return new LeaseResult(jobs, jobs.Count > 0 ? null : retryAfter);
    }

    private async Task<List<JobLease>> RunLeaseAsync(
        NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, LeaseRequest request, string[] kinds, int max, CancellationToken ct)
    {
        var jobs = new List<JobLease>(max);
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        cmd.Parameters.AddWithValue("queue", request.Queue);
        cmd.Parameters.AddWithValue("kinds", kinds);
        cmd.Parameters.AddWithValue("max", max);
        cmd.Parameters.AddWithValue("worker", request.WorkerId);
        cmd.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(_options.LeaseSeconds));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var lease = ReadLease(r, request.Queue);
            var owner = r.IsDBNull(7) ? (Guid?)null : r.GetGuid(7);
            leases.Add(new ActiveLease(lease.JobId, lease.LeaseId, request.WorkerId, request.Queue, lease.Kind, owner)
            {
                Tid = r.GetString(17),
            });
            metrics.JobStarted(request.Queue, lease.Kind, r.GetDouble(8));
            jobs.Add(lease);
        }

        return jobs;
    }

    private static async Task<(bool Paused, bool Limited, double? NextDue)> QueueStateAsync(
        NpgsqlConnection conn, string queue, string[] kinds, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(QueueStateSql, conn);
        cmd.Parameters.AddWithValue("queue", queue);
        cmd.Parameters.AddWithValue("kinds", kinds);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetBoolean(0), r.GetBoolean(1), r.IsDBNull(2) ? null : r.GetDouble(2));
    }

    /// <summary>How long until the next job is due; a job due now but locked by another lease is worth a quick look again.</summary>
    private static TimeSpan? RetryAfter(double? nextDueSeconds) =>
        nextDueSeconds is { } s ? TimeSpan.FromSeconds(Math.Max(s, 0.005)) : null;

    private void Announce(List<JobLease> jobs)
    {
        foreach (var job in jobs)
        {
            if (leases.TryGet(job.JobId, job.LeaseId, out var active))
            {
                events.Publish(JobEvents.Update(job.JobId, active.OwnerId, JobState.Running, progress: 0));
            }
        }
    }

    private static JobLease ReadLease(NpgsqlDataReader r, string queue)
    {
        return new JobLease
        {
            JobId = r.GetGuid(0),
            LeaseId = r.GetGuid(1),
            Kind = r.GetString(2),
            Queue = queue,
            Attempt = r.GetInt32(3),
            MaxAttempts = r.GetInt32(4),
            LeaseExpiresAt = r.GetFieldValue<DateTimeOffset>(5),
            Params = r.IsDBNull(6) ? [] : JsonNode.Parse(r.GetString(6)) as JsonObject ?? [],
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
    }
}
