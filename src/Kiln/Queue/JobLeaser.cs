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
    IOptions<QueueOptions> options,
    TimeProvider time)
{
    private readonly QueueOptions _options = options.Value;

    /// <summary>Local settings: they end with the lease's own transaction, never leak into the pool.</summary>
    private const string AsyncCommitSql = $"select {JobStates.AsyncCommit}, {JobStates.KeyedLookups}";

    /// <inheritdoc cref="AsyncCommitSql"/>
    private const string KeyedLookupsSql = $"select {JobStates.KeyedLookups}";

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
            var (jobs, state) = await LeaseFastAsync(conn, request, kinds, max, cancellationToken);
            if (jobs.Count > 0)
            {
                Announce(jobs);
                return state is { } partial ? new LeaseResult(jobs, RetryAfter(partial.NextDue)) { Drained = true } : new LeaseResult(jobs, null);
            }

            var (paused, limited, nextDue) = state ?? await QueueStateAsync(conn, request.Queue, kinds, cancellationToken);
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
            var budget = await QueueBudget.ReadAsync(conn, tx, request.Queue, time, ct);
            if (!budget.Limited)
            {
                _limited.TryRemove(request.Queue, out _);
            }

            if (budget.Paused)
            {
                return LeaseResult.Empty;
            }

            max = Math.Min(max, budget.Available);
            // Leased at the time the budget was read under the queue's lock, the clock its rate window runs on: a
            // start is never stamped before the window it counts against opened.
            jobs = max > 0 ? await RunLeaseAsync(conn, tx, JobStates.LeaseLocked, request, kinds, max, budget.Now ?? time.GetUtcNow(), ct) : [];
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

    /// <summary>
    /// The unlimited lease, and in the same round trip the queue's state when the lease came back short (an empty
    /// queue, a delayed job, a pause): the caller then knows when to look again without a second lease.
    /// </summary>
    private async Task<(List<JobLease> Jobs, (bool Paused, bool Limited, double? NextDue)? State)> LeaseFastAsync(
        NpgsqlConnection conn, LeaseRequest request, string[] kinds, int max, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        await using var batch = new NpgsqlBatch(conn);
        // The autocommitted (unlimited) lease commits without waiting for its flush unless asked to: see
        // QueueOptions.DurableLeases. Set for this implicit transaction only, in the same round trip.
        batch.BatchCommands.Add(new NpgsqlBatchCommand(_options.DurableLeases ? KeyedLookupsSql : AsyncCommitSql));
        AddFastLease(batch, request, kinds, max, now);
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.NextResultAsync(ct);

        return await ReadFastLeaseAsync(r, request, max, ct);
    }

    /// <summary>Whether the queue was last seen limited: only the locked path may lease it.</summary>
    public bool IsLimited(string queue) => _limited.ContainsKey(queue);

    /// <summary>
    /// Adds the unlimited lease and, in the same transaction, the queue's state when it comes back short, to a batch:
    /// the lease's own, or an enqueue's (<see cref="LeaseAtEnqueue"/>). Read back with <see cref="ReadFastLeaseAsync"/>.
    /// </summary>
    public void AddFastLease(NpgsqlBatch batch, LeaseRequest request, string[] kinds, int max, DateTimeOffset now, Guid? guard = null)
    {
        var lease = AddLease(batch, guard is null ? JobStates.LeaseFast : JobStates.LeaseAfterInsert, request, kinds, max, now);
        var state = new NpgsqlBatchCommand(ShortLeaseStateSql);
        state.Parameters.AddRange(lease.Parameters.Select(p => p.Clone()).ToArray());
        batch.BatchCommands.Add(state);
        // Only the lease names the guard, so it is added after the state statement took its copies.
        if (guard is { } id)
        {
            lease.Parameters.AddWithValue("guard", id);
        }
    }

    /// <summary>
    /// Reads what <see cref="AddFastLease"/> added (the reader stands on the lease's result): the leased jobs, and the
    /// queue's state when the lease came back short. A queue found limited is remembered for the locked path.
    /// </summary>
    public async Task<(List<JobLease> Jobs, (bool Paused, bool Limited, double? NextDue)? State)> ReadFastLeaseAsync(
        NpgsqlDataReader r, LeaseRequest request, int max, CancellationToken ct)
    {
        var jobs = await ReadLeasesAsync(r, request, max, ct);
        await r.NextResultAsync(ct);
        var state = await r.ReadAsync(ct) ? (r.GetBoolean(0), r.GetBoolean(1), r.IsDBNull(2) ? null : r.GetDouble(2)) : ((bool, bool, double?)?)null;
        if (state is { Item2: true })
        {
            _limited[request.Queue] = true;
        }

        return (jobs, state);
    }

    /// <summary>
    /// <see cref="JobStates.QueueState"/>, only when the lease before it in the same transaction took fewer than
    /// <c>@max</c> jobs: it counts them by the lease expiry they were all given (exact, through <c>jobs_running</c>),
    /// so a full lease, the busy case, does not pay for finding the next due job.
    /// </summary>
    private const string ShortLeaseStateSql = $"""
        select s.* from ({JobStates.QueueState}) s
        where (select count(*) from jobs where queue = @queue and state = 'running' and lease_expires_at = @now + @lease
            and lease_owner = @worker) < @max
        """;

    private async Task<List<JobLease>> RunLeaseAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, string sql, LeaseRequest request, string[] kinds, int max, DateTimeOffset now, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn, tx);
        batch.BatchCommands.Add(new NpgsqlBatchCommand(KeyedLookupsSql));
        AddLease(batch, sql, request, kinds, max, now);
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.NextResultAsync(ct);
        return await ReadLeasesAsync(r, request, max, ct);
    }

    private NpgsqlBatchCommand AddLease(NpgsqlBatch batch, string sql, LeaseRequest request, string[] kinds, int max, DateTimeOffset now)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        batch.BatchCommands.Add(cmd);
        cmd.Parameters.AddWithValue("queue", request.Queue);
        cmd.Parameters.AddWithValue("kinds", kinds);
        cmd.Parameters.AddWithValue("max", max);
        cmd.Parameters.AddWithValue("worker", request.WorkerId);
        cmd.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(_options.LeaseSeconds));
        JobStates.AddNow(cmd.Parameters, now);
        return cmd;
    }

    private async Task<List<JobLease>> ReadLeasesAsync(NpgsqlDataReader r, LeaseRequest request, int max, CancellationToken ct)
    {
        var jobs = new List<JobLease>(max);
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

    private async Task<(bool Paused, bool Limited, double? NextDue)> QueueStateAsync(
        NpgsqlConnection conn, string queue, string[] kinds, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(JobStates.QueueState, conn);
        cmd.Parameters.AddWithValue("queue", queue);
        cmd.Parameters.AddWithValue("kinds", kinds);
        JobStates.AddNow(cmd, time);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetBoolean(0), r.GetBoolean(1), r.IsDBNull(2) ? null : r.GetDouble(2));
    }

    /// <summary>How long until the next job is due; a job due now but locked by another lease is worth a quick look again.</summary>
    private static TimeSpan? RetryAfter(double? nextDueSeconds) =>
        nextDueSeconds is { } s ? TimeSpan.FromSeconds(Math.Max(s, 0.005)) : null;

    /// <summary>Publishes each leased job's start (after its lease committed).</summary>
    public void Announce(List<JobLease> jobs)
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
