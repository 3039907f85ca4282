using Npgsql;
using NpgsqlTypes;

namespace Kiln.Jobs;

/// <summary>
/// How jobs are written: one INSERT over unnested arrays, or binary COPY for large batches of ready jobs. Both stamp
/// <c>created_at</c>, a missing <c>run_at</c> and a cascaded <c>finished_at</c> with <c>@now</c> from the injected
/// <see cref="TimeProvider"/>, the clock every other transition (<see cref="JobStates"/>) decides on: a job is due by
/// the same clock that leases it.
/// </summary>
internal static class JobInserts
{
    /// <summary>
    /// A child starts as its parent's outcome allows: queued once the parent completed, failed or cancelled with it,
    /// else waiting. A parent inserted by the same statement is not visible to it yet, so its children wait; a parent
    /// that exists nowhere (never did, or pruned long ago) fails the child.
    /// </summary>
    public const string InsertSql = """
        insert into jobs (id, asset_id, batch_id, parent_id, owner_id, kind, queue, state, priority, run_at, max_attempts, params,
            error_code, error_message, finished_at, created_at)
        select u.id, u.asset_id, u.batch_id, u.parent_id, u.owner_id, u.kind, u.queue, s.state,
            u.priority, coalesce(u.run_at, @now), u.max_attempts, coalesce(u.params, '{}'),
            case when s.state = 'failed' and s.parent_state is null then 'parent_missing'
                when s.state = 'failed' then 'parent_failed' when s.state = 'cancelled' then 'parent_cancelled' end,
            case when s.state = 'failed' and s.parent_state is null then 'The job this one depends on does not exist.'
                when s.state = 'failed' then 'A job this one depends on failed.'
                when s.state = 'cancelled' then 'A job this one depends on was cancelled.' end,
            case when s.state in ('failed', 'cancelled') then @now end, @now
        from unnest(@ids, @asset_ids, @batch_ids, @parent_ids, @owner_ids, @kinds, @queues, @priorities, @run_ats, @max_attempts, @params::jsonb[])
            as u(id, asset_id, batch_id, parent_id, owner_id, kind, queue, priority, run_at, max_attempts, params)
        cross join lateral (
            select p.parent_state,
                case when u.parent_id is null then 'queued'
                    when u.parent_id = any(@ids) then 'waiting'
                    when p.parent_state is null then 'failed'
                    when p.parent_state = 'completed' then 'queued'
                    when p.parent_state in ('failed', 'cancelled') then p.parent_state
                    else 'waiting' end as state
            from (select (select j.state from jobs j where j.id = u.parent_id) as parent_state) p
        ) s
        returning id, state, queue, owner_id
        """;

    /// <summary>
    /// <see cref="InsertSql"/> for one job without a parent: a plain VALUES insert, which PostgreSQL plans in
    /// microseconds on every call, where the unnest of a dozen arrays with its parent lookup needs the generic plan
    /// (and the settings statement that asks for it) to be cheap, and one with a parent lookup costs ~0.4 ms to plan.
    /// </summary>
    public const string InsertOneSql = """
        insert into jobs (id, asset_id, batch_id, owner_id, kind, queue, state, priority, run_at, max_attempts, params, created_at)
        values (@id, @asset_id, @batch_id, @owner_id, @kind, @queue, 'queued', @priority, coalesce(@run_at, @now), @max_attempts,
            coalesce(@params::jsonb, '{}'), @now)
        returning id, state, queue, owner_id
        """;

    /// <summary>Whether <see cref="InsertOneSql"/> can write these jobs.</summary>
    public static bool IsOne(IReadOnlyList<NewJob> jobs) => jobs is [{ ParentId: null }];

    public static void AddOneParameters(NpgsqlParameterCollection p, NewJob job, DateTimeOffset now)
    {
        JobStates.AddNow(p, now);
        p.AddWithValue("id", job.Id);
        p.Add(new NpgsqlParameter<Guid?>("asset_id", job.AssetId));
        p.Add(new NpgsqlParameter<Guid?>("batch_id", job.BatchId));
        p.Add(new NpgsqlParameter<Guid?>("owner_id", job.OwnerId));
        p.AddWithValue("kind", job.Kind);
        p.AddWithValue("queue", job.Queue);
        p.AddWithValue("priority", job.Priority);
        p.Add(new NpgsqlParameter<DateTimeOffset?>("run_at", job.RunAt));
        p.AddWithValue("max_attempts", job.MaxAttempts);
        p.Add(new NpgsqlParameter<string?>("params", job.Params?.ToJsonString()));
    }

    /// <summary>From this many jobs on, a batch without parents or delays is written with binary COPY.</summary>
    private const int CopyThreshold = 200;

    public static bool UseCopy(IReadOnlyList<NewJob> jobs) =>
        jobs.Count >= CopyThreshold && jobs.All(j => j.ParentId is null && j.RunAt is null);

    public static void AddParameters(NpgsqlParameterCollection p, IReadOnlyList<NewJob> jobs, DateTimeOffset now)
    {
        JobStates.AddNow(p, now);
        p.AddWithValue("ids", jobs.Select(j => j.Id).ToArray());
        AddNullableUuids(p, "asset_ids", jobs.Select(j => j.AssetId));
        AddNullableUuids(p, "batch_ids", jobs.Select(j => j.BatchId));
        AddNullableUuids(p, "parent_ids", jobs.Select(j => j.ParentId));
        AddNullableUuids(p, "owner_ids", jobs.Select(j => j.OwnerId));
        p.AddWithValue("kinds", jobs.Select(j => j.Kind).ToArray());
        p.AddWithValue("queues", jobs.Select(j => j.Queue).ToArray());
        p.AddWithValue("priorities", jobs.Select(j => j.Priority).ToArray());
        p.Add(new NpgsqlParameter("run_ats", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = jobs.Select(j => j.RunAt).ToArray() });
        p.AddWithValue("max_attempts", jobs.Select(j => j.MaxAttempts).ToArray());
        p.Add(new NpgsqlParameter("params", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = jobs.Select(j => j.Params?.ToJsonString()).ToArray() });
    }

    public static async Task<List<EnqueuedJob>> ReadAsync(NpgsqlDataReader r, int expected, CancellationToken ct)
    {
        var inserted = new List<EnqueuedJob>(expected);
        while (await r.ReadAsync(ct))
        {
            inserted.Add(new EnqueuedJob(r.GetGuid(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetGuid(3)));
        }

        return inserted;
    }

    /// <summary>
    /// Bulk enqueue: binary COPY, several times cheaper for the server than unnesting a dozen arrays. Only for jobs
    /// that are all ready at once (no parent to look up; run_at and created_at are <paramref name="now"/>).
    /// </summary>
    public static async Task<List<EnqueuedJob>> CopyAsync(NpgsqlConnection conn, IReadOnlyList<NewJob> jobs, DateTimeOffset now, CancellationToken ct)
    {
        await using (var writer = await conn.BeginBinaryImportAsync(
            "copy jobs (id, asset_id, batch_id, owner_id, kind, queue, state, priority, max_attempts, params, run_at, created_at) from stdin (format binary)", ct))
        {
            foreach (var job in jobs)
            {
                await writer.StartRowAsync(ct);
                await writer.WriteAsync(job.Id, NpgsqlDbType.Uuid, ct);
                await WriteNullableAsync(writer, job.AssetId, ct);
                await WriteNullableAsync(writer, job.BatchId, ct);
                await WriteNullableAsync(writer, job.OwnerId, ct);
                await writer.WriteAsync(job.Kind, NpgsqlDbType.Text, ct);
                await writer.WriteAsync(job.Queue, NpgsqlDbType.Text, ct);
                await writer.WriteAsync(JobState.Queued, NpgsqlDbType.Text, ct);
                await writer.WriteAsync(job.Priority, NpgsqlDbType.Integer, ct);
                await writer.WriteAsync(job.MaxAttempts, NpgsqlDbType.Integer, ct);
                await writer.WriteAsync(job.Params?.ToJsonString() ?? "{}", NpgsqlDbType.Jsonb, ct);
                await writer.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                await writer.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            }

            await writer.CompleteAsync(ct);
        }

        return [.. jobs.Select(j => new EnqueuedJob(j.Id, JobState.Queued, j.Queue, j.OwnerId))];
    }

    private static async Task WriteNullableAsync(NpgsqlBinaryImporter writer, Guid? value, CancellationToken ct)
    {
        if (value is { } v)
        {
            await writer.WriteAsync(v, NpgsqlDbType.Uuid, ct);
        }
        else
        {
            await writer.WriteNullAsync(ct);
        }
    }

    private static void AddNullableUuids(NpgsqlParameterCollection p, string name, IEnumerable<Guid?> values) =>
        p.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = values.ToArray() });
}
