using Npgsql;

namespace Kiln.Jobs;

/// <summary>
/// The job state machine of docs/queue.md ("States"), as SQL: every transition — lease, progress and heartbeat
/// renewals, completion, failure with a retry or for good, release, lease expiry and stall, cancel, pause, resume,
/// retry, and the cascades between parents and children — is one statement here, next to the others, so the table
/// and the code can be read side by side. Callers check what needs checking (the lease, the current state under the
/// row lock) and run one. Every way out of <c>running</c> clears <c>lease_id</c>, which is what closes the attempt's
/// history row (migration 004), and sets <c>lease_ended_at = @now</c>, the time that row is closed at (migration 008).
/// <para>
/// Time-based decisions take the time as <c>@now</c> from the injected <see cref="TimeProvider"/> (see
/// <see cref="AddNow"/>) instead of PostgreSQL's <c>now()</c>, so tests can drive lease expiry, stalls and backoff with a
/// fake clock. Nodes' clocks must then agree to well within <c>LeaseSeconds</c> (NTP does).
/// </para>
/// Enqueueing (<c>Jobs/JobInserts</c>) is the one change not here, as it creates rows rather than moving them; it
/// stamps them with the same clock, and so do queue rate windows (<see cref="QueueBudget"/>).
/// </summary>
internal static class JobStates
{
    /// <summary>Adds <c>@now</c>, the time every time-based transition is decided at.</summary>
    public static void AddNow(NpgsqlCommand command, TimeProvider time) => AddNow(command, time.GetUtcNow());

    public static void AddNow(NpgsqlCommand command, DateTimeOffset now) => AddNow(command.Parameters, now);

    public static void AddNow(NpgsqlParameterCollection parameters, DateTimeOffset now) => parameters.AddWithValue("now", now);

    // queued -> running: a lease. The attempt is counted now; everything below refers to the fresh lease_id.

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
            lease_id = gen_random_uuid(), lease_expires_at = @now + @lease, started_at = @now, lease_ended_at = null,
            last_progress_at = @now, progress = 0, stage = null, speed = null, eta_seconds = null,
            error_code = null, error_message = null
        where j.ctid = any(array(select ctid from picked))
        returning j.id, j.lease_id, j.kind, j.attempts, j.max_attempts, j.lease_expires_at,
            case when j.params = '{}'::jsonb then null else j.params::text end as params, j.owner_id,
            j.asset_id, extract(epoch from (@now - j.run_at))::float8 as waited, j.priority, j.run_at, j.ctid::text as tid
        """;

    /// <summary>
    /// Settings for the current transaction only (<c>set_config(…, true)</c>: they end with it and never reach the
    /// pool, which does not reset connections). <see cref="GenericPlan"/>: PostgreSQL kept planning the enqueue's
    /// insert and the batch completion afresh, and planning cost more than running them (docs/benchmarks.md, "Queue
    /// latency"). <see cref="AsyncCommit"/>: the commit does not wait for its WAL flush (the unlimited lease, also
    /// when it rides along with an enqueue).
    /// </summary>
    public const string GenericPlan = "set_config('plan_cache_mode', 'force_generic_plan', true)";

    /// <inheritdoc cref="GenericPlan"/>
    public const string AsyncCommit = "set_config('synchronous_commit', 'off', true)";

    /// <summary>
    /// For the queue's own transactions (enqueue, lease, completion), which find their rows by key, tuple id or an
    /// index: no sequential scans. Their arrays of ids and tuple ids have no known length at planning time (a generic
    /// plan, or an array built by a subquery), so the planner assumes ten, and on a jobs table of a few dozen pages
    /// reading all of it then looks cheaper than ten lookups. It read the whole table up to three times per
    /// completion and once per lease (auto_explain: 23 pages each at 1,000 jobs, 0.15–0.5 ms each), as every small
    /// deployment's table would. Local to the transaction, like the settings above (docs/benchmarks.md, "Sequential
    /// scans in the queue's statements").
    /// </summary>
    public const string KeyedLookups = "set_config('enable_seqscan', 'off', true)";

    /// <summary>
    /// The unlimited path: one statement, one round trip. It leases nothing when the queue is paused or has limits
    /// (the caller then looks at the queue and takes the locked path).
    /// </summary>
    public const string LeaseFast = $"""
        with picked as (
            select ctid from jobs
            where {LeaseFastWhere}
            {LeaseTail}
        """;

    /// <summary>
    /// <see cref="LeaseFast"/> as the enqueue sends it, in a transaction after the insert's own: only when the job
    /// <c>@guard</c> exists, so a failed insert, whose error ends the enqueue before this lease's results are read,
    /// leases nothing that no one would start.
    /// </summary>
    public const string LeaseAfterInsert = $"""
        with picked as (
            select ctid from jobs
            where {LeaseFastWhere} and exists (select 1 from jobs g where g.id = @guard)
            {LeaseTail}
        """;

    private const string LeaseFastWhere = """
        queue = @queue and state = 'queued' and run_at <= @now and kind = any(@kinds)
                and not exists (select 1 from queues q where q.name = @queue and (q.paused or q.concurrency > 0 or q.rate_max > 0))
        """;

    /// <summary>The limited path, run under the queue row's lock (see <see cref="QueueBudget"/>).</summary>
    public const string LeaseLocked = $"""
        with picked as (
            select ctid from jobs
            where queue = @queue and state = 'queued' and run_at <= @now and kind = any(@kinds)
            {LeaseTail}
        """;

    /// <summary>What both lease paths do with the due jobs they pick: oldest first by priority, lease, read back.</summary>
    private const string LeaseTail = $"""
        order by priority, run_at, id
            limit @max
            for update skip locked
        ), l as ({LeaseUpdate})
        select {LeaseColumns} from l left join assets a on a.id = l.asset_id
        order by l.priority, l.run_at, l.id
        """;

    /// <summary>What an empty fast lease needs next: is the queue paused or limited, and when is the next job due.</summary>
    public const string QueueState = """
        select coalesce(q.paused, false), coalesce(q.concurrency > 0 or q.rate_max > 0, false),
            (select extract(epoch from (min(j.run_at) - @now))::float8 from jobs j
             where j.queue = @queue and j.state = 'queued' and j.kind = any(@kinds))
        from (select 1) one left join queues q on q.name = @queue
        """;

    // running -> running: progress and heartbeats renew the lease. Neither sets lease_id, so neither touches history.

    public const string Progress = """
        update jobs set progress = @p, stage = coalesce(@stage, stage), speed = @speed, eta_seconds = @eta,
            total_bytes = coalesce(@bytes, total_bytes), last_progress_at = @now, lease_expires_at = @now + @lease
        where id = @id and lease_id = @lease_id and state = 'running'
        """;

    /// <summary>By primary key: the leases held here say which jobs they are for.</summary>
    public const string Heartbeat = """
        update jobs j set lease_expires_at = @now + @lease
        from unnest(@ids, @leases) as u(id, lease)
        where j.id = u.id and j.lease_id = u.lease and j.lease_owner = @worker and j.state = 'running'
        """;

    // running -> completed, under the current lease (CompletionWriter adds the derivatives in the same transaction).

    public const string CompleteOne = """
        update jobs set state = 'completed', progress = 100, result = @result::jsonb, finished_at = @now,
            lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
        where id = @id and lease_id = @lease_id and state = 'running'
        returning owner_id, asset_id, queue, kind, extract(epoch from (@now - started_at))::float8
        """;

    /// <summary>
    /// A batch of completions in one statement, so one round trip and one commit (group commit: concurrent callers
    /// share both). Each job is found first by the tuple id it was leased at (a TID scan, see
    /// <see cref="ActiveLease.Tid"/>: <c>@tid_…</c>, the reports that have one); the ones whose row
    /// moved since (progress, heartbeats) by primary key. Every way out of running clears lease_id, so a matching
    /// lease id alone proves the job still runs under it; not naming the state keeps the plan on those lookups (with
    /// <c>state = 'running'</c> the planner likes to scan the whole jobs_running index, dead entries included). The
    /// two updates never touch the same row (the second skips what the first returned; WITH sub-statements share one
    /// snapshot). The completed jobs' waiting children are released in the same statement, their queues NOTIFYed
    /// (one notification per queue: PostgreSQL folds identical ones within a transaction), tagged <c>@sender</c>.
    /// The ids reach the second update and the release as arrays (<c>= any(array(select …))</c>), so the planner probes
    /// the primary key and the children index per id. Each set of arrays is unnested once: joining two unnests on id
    /// planned a nested loop, n² comparisons per batch (40,000 for 200 jobs, two thirds of the statement's time).
    /// Returns <c>(true, id, owner, queue, kind, seconds)</c> per completed job and <c>(false, id, owner, queue)</c>
    /// per released child.
    /// </summary>
    public const string CompleteBatch = """
        with by_tid as (
            update jobs j set state = 'completed', progress = 100, result = u.result, finished_at = @now,
                lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
            from unnest(@tids::tid[], @tid_ids, @tid_leases, @tid_results::jsonb[]) as u(tid, id, lease, result)
            where j.ctid = any(@tids::tid[]) and j.ctid = u.tid and j.id = u.id and j.lease_id = u.lease
            returning j.id, j.owner_id, j.queue, j.kind, extract(epoch from (@now - j.started_at))::float8 as seconds
        ), rest as (
            select u.id, u.lease, u.result from unnest(@ids, @leases, @results::jsonb[]) as u(id, lease, result)
            where not exists (select 1 from by_tid b where b.id = u.id)
        ), by_id as (
            update jobs j set state = 'completed', progress = 100, result = u.result, finished_at = @now,
                lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
            from rest u
            where j.id = any(array(select id from rest)) and j.id = u.id and j.lease_id = u.lease
            returning j.id, j.owner_id, j.queue, j.kind, extract(epoch from (@now - j.started_at))::float8 as seconds
        ), done as (
            select * from by_tid union all select * from by_id
        ), released as (
            update jobs c set state = 'queued', run_at = greatest(c.run_at, @now)
            where c.parent_id = any(array(select id from done)) and c.state = 'waiting'
            returning c.id, c.owner_id, c.queue, pg_notify('kiln_jobs', c.queue || @sender)
        )
        select true, id, owner_id, queue, kind, seconds from done
        union all
        select false, id, owner_id, queue, null, null from released
        """;

    /// <summary>
    /// running -> queued with backoff (retryable, attempts left: <c>@base × 2^(attempt−1) × [0.9, 1.1]</c>), or
    /// running -> failed (not retryable, or out of attempts). The attempt was counted at lease time.
    /// </summary>
    public const string Fail = """
        update jobs set
            state = case when @retryable and attempts < max_attempts then 'queued' else 'failed' end,
            run_at = case when @retryable and attempts < max_attempts
                then @now + make_interval(secs => @base * power(2, attempts - 1) * (0.9 + random() * 0.2))
                else run_at end,
            finished_at = case when @retryable and attempts < max_attempts then null else @now end,
            error_code = @code, error_message = @message,
            lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
        where id = @id and lease_id = @lease_id and state = 'running'
        returning state, queue, kind, owner_id, extract(epoch from (@now - started_at))::float8
        """;

    /// <summary>running -> queued, the attempt given back (graceful shutdown, a worker's release), and the queue woken.</summary>
    public const string Release = """
        with released as (
            update jobs set state = 'queued', attempts = greatest(attempts - 1, 0), run_at = @now,
                lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
            where id = @id and lease_id = @lease_id and state = 'running'
            returning queue
        )
        select pg_notify('kiln_jobs', queue) from released
        """;

    /// <summary>
    /// running -> queued for an immediate retry (the attempt counted), or failed when none is left: the lease expired
    /// (<c>lease_expired</c>) or no progress came for the stall timeout (<c>stalled</c>). SKIP LOCKED, so nodes sweeping
    /// at once do not collide.
    /// </summary>
    public const string Expire = """
        with expired as (
            select id, lease_id, case when lease_expires_at < @now then 'lease_expired' else 'stalled' end as reason
            from jobs
            where state = 'running' and (lease_expires_at < @now or last_progress_at < @now - @stall)
            for update skip locked
        )
        update jobs j set
            state = case when j.attempts >= j.max_attempts then 'failed' else 'queued' end,
            run_at = @now,
            finished_at = case when j.attempts >= j.max_attempts then @now else null end,
            error_code = e.reason,
            error_message = case e.reason when 'lease_expired' then 'The worker stopped renewing its lease.'
                else 'No progress for the stall timeout.' end,
            lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
        from expired e
        where j.id = e.id
        returning j.id, j.state, j.queue, j.kind, j.owner_id, e.reason, e.lease_id
        """;

    // Started by a request (Jobs/JobCommands checks the current state under the row lock first, then runs one of these).

    /// <summary>any non-terminal -> cancelled; the caller cascades to the waiting children.</summary>
    public const string Cancel = """
        update jobs set state = 'cancelled', finished_at = @now, error_code = 'cancelled', error_message = 'Cancelled on request.',
            lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
        where id = @id returning queue
        """;

    /// <summary>queued / waiting / running -> paused. A paused running job keeps its attempt count: it did not fail, it was asked to wait.</summary>
    public const string Pause = """
        update jobs set state = 'paused', attempts = case when state = 'running' then greatest(attempts - 1, 0) else attempts end,
            lease_owner = null, lease_id = null, lease_expires_at = null, lease_ended_at = @now
        where id = @id returning queue
        """;

    /// <summary>paused -> queued or waiting (<c>@next</c>: waiting while its parent has not completed).</summary>
    public const string Resume = """
        update jobs set state = @next, run_at = @now where id = @id returning queue
        """;

    /// <summary>failed / cancelled -> queued or waiting, attempts reset.</summary>
    public const string Retry = """
        update jobs set state = @next, run_at = @now, attempts = 0, finished_at = null, error_code = null, error_message = null,
            progress = 0, stage = null, result = null
        where id = @id returning queue
        """;

    /// <summary>failed / cancelled -> waiting for the descendants that failed only because the retried job did.</summary>
    public const string RetryDescendants = """
        with recursive d as (
            select id from jobs where parent_id = @id and error_code in ('parent_failed', 'parent_cancelled')
            union
            select j.id from jobs j join d on j.parent_id = d.id where j.error_code in ('parent_failed', 'parent_cancelled')
        )
        update jobs set state = 'waiting', finished_at = null, error_code = null, error_message = null, attempts = 0
        where id in (select id from d)
        """;

    /// <summary>failed -> queued for every failed job of a queue whose parent (if any) completed; attempts reset.</summary>
    public const string RetryFailedOfQueue = """
        with r as (
            update jobs set state = 'queued', run_at = @now, attempts = 0, finished_at = null, error_code = null,
                error_message = null, progress = 0, stage = null
            where queue = @name and state = 'failed' and (parent_id is null or
                exists (select 1 from jobs p where p.id = jobs.parent_id and p.state = 'completed'))
            returning 1)
        select count(*), pg_notify('kiln_jobs', @name) from r
        """;

    // Parents and children: in the transaction of the parent's own transition.

    /// <summary>
    /// waiting / paused -> failed or cancelled, at any depth, for the descendants of jobs that failed or were
    /// cancelled: they can never run. Returns them (id, owner).
    /// </summary>
    private const string Cascade = """
        with recursive d as (
            select id from jobs where parent_id = any(@parents) and state in ('waiting', 'paused')
            union
            select j.id from jobs j join d on j.parent_id = d.id where j.state in ('waiting', 'paused')
        )
        update jobs set state = @state, error_code = @code, error_message = @message, finished_at = @now
        where id in (select id from d)
        returning id, owner_id
        """;

    /// <summary>waiting -> queued for the children of completed jobs, keeping a run_at still in the future; returns (id, owner, queue).</summary>
    private const string ReleaseChildren = """
        update jobs set state = 'queued', run_at = greatest(run_at, @now)
        where parent_id = any(@parents) and state = 'waiting'
        returning id, owner_id, queue
        """;

    public static async Task<List<(Guid Id, Guid? Owner)>> CascadeAsync(
        NpgsqlConnection conn, NpgsqlTransaction? tx, Guid[] parents, string state, string code, string message, TimeProvider time, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(Cascade, conn, tx);
        cmd.Parameters.AddWithValue("parents", parents);
        cmd.Parameters.AddWithValue("state", state);
        cmd.Parameters.AddWithValue("code", code);
        cmd.Parameters.AddWithValue("message", message);
        AddNow(cmd, time);
        var list = new List<(Guid, Guid?)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add((r.GetGuid(0), r.IsDBNull(1) ? null : r.GetGuid(1)));
        }

        return list;
    }

    public static async Task<List<(Guid Id, Guid? Owner, string Queue)>> ReleaseChildrenAsync(
        NpgsqlConnection conn, NpgsqlTransaction? tx, Guid[] parents, TimeProvider time, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(ReleaseChildren, conn, tx);
        cmd.Parameters.AddWithValue("parents", parents);
        AddNow(cmd, time);
        var list = new List<(Guid, Guid?, string)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add((r.GetGuid(0), r.IsDBNull(1) ? null : r.GetGuid(1), r.GetString(2)));
        }

        return list;
    }
}
