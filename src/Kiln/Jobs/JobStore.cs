using System.Collections.Concurrent;
using Kiln.Queue;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Jobs;

/// <summary>Enqueues jobs and reads them. State changes asked for through the API live in <see cref="JobCommands"/>.</summary>
internal sealed class JobStore(
    NpgsqlDataSource dataSource,
    QueueWakeups wakeups,
    IJobEventSink events,
    IOptions<QueueOptions> options)
{
    /// <summary>
    /// A child starts as its parent's outcome allows: queued once the parent completed, failed or cancelled with it,
    /// else waiting. A parent inserted by the same statement is not visible to it yet, so its children wait.
    /// </summary>
    private const string InsertSql = """
        insert into jobs (id, asset_id, batch_id, parent_id, owner_id, kind, queue, state, priority, run_at, max_attempts, params,
            error_code, error_message, finished_at)
        select u.id, u.asset_id, u.batch_id, u.parent_id, u.owner_id, u.kind, u.queue, s.state,
            u.priority, coalesce(u.run_at, now()), u.max_attempts, coalesce(u.params, '{}'),
            case s.state when 'failed' then 'parent_failed' when 'cancelled' then 'parent_cancelled' end,
            case s.state when 'failed' then 'A job this one depends on failed.'
                when 'cancelled' then 'A job this one depends on was cancelled.' end,
            case when s.state in ('failed', 'cancelled') then now() end
        from unnest(@ids, @asset_ids, @batch_ids, @parent_ids, @owner_ids, @kinds, @queues, @priorities, @run_ats, @max_attempts, @params::jsonb[])
            as u(id, asset_id, batch_id, parent_id, owner_id, kind, queue, priority, run_at, max_attempts, params)
        cross join lateral (
            select case when u.parent_id is null then 'queued'
                else coalesce((select case p.state when 'completed' then 'queued' when 'failed' then 'failed'
                    when 'cancelled' then 'cancelled' else 'waiting' end from jobs p where p.id = u.parent_id), 'waiting')
            end as state
        ) s
        returning id, state, queue, owner_id
        """;

    /// <summary>From this many jobs on, a batch without parents or delays is written with binary COPY.</summary>
    private const int CopyThreshold = 200;

    private readonly ConcurrentDictionary<string, bool> _knownQueues = new(StringComparer.Ordinal);

    public async Task<EnqueuedJobs> EnqueueAsync(IReadOnlyList<NewJob> jobs, CancellationToken cancellationToken)
    {
        var enqueued = await EnqueueAsync(jobs, null, null, cancellationToken);
        Announce(enqueued);
        return enqueued;
    }

    /// <summary>
    /// Inserts jobs in one statement (a parent may come in the same list, before its children). With a caller's
    /// transaction, the caller must call <see cref="Announce"/> after it commits.
    /// </summary>
    public async Task<EnqueuedJobs> EnqueueAsync(
        IReadOnlyList<NewJob> jobs, NpgsqlConnection? connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        if (jobs.Count == 0)
        {
            return new EnqueuedJobs([]);
        }

        var ownConnection = connection is null;
        var conn = connection ?? await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var ownTx = ownConnection ? await conn.BeginTransactionAsync(cancellationToken) : null;
            var tx = transaction ?? ownTx;
            var created = await EnsureQueuesAsync(conn, tx, jobs, cancellationToken);
            var inserted = new List<EnqueuedJob>(jobs.Count);
            if (jobs.Count >= CopyThreshold && jobs.All(j => j.ParentId is null && j.RunAt is null))
            {
                await CopyAsync(conn, jobs, inserted, cancellationToken);
            }
            else
            {
                await using var cmd = new NpgsqlCommand(InsertSql, conn, tx);
                cmd.Parameters.AddWithValue("ids", jobs.Select(j => j.Id).ToArray());
                AddNullableUuids(cmd, "asset_ids", jobs.Select(j => j.AssetId));
                AddNullableUuids(cmd, "batch_ids", jobs.Select(j => j.BatchId));
                AddNullableUuids(cmd, "parent_ids", jobs.Select(j => j.ParentId));
                AddNullableUuids(cmd, "owner_ids", jobs.Select(j => j.OwnerId));
                cmd.Parameters.AddWithValue("kinds", jobs.Select(j => j.Kind).ToArray());
                cmd.Parameters.AddWithValue("queues", jobs.Select(j => j.Queue).ToArray());
                cmd.Parameters.AddWithValue("priorities", jobs.Select(j => j.Priority).ToArray());
                cmd.Parameters.Add(new NpgsqlParameter("run_ats", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = jobs.Select(j => j.RunAt).ToArray() });
                cmd.Parameters.AddWithValue("max_attempts", jobs.Select(j => j.MaxAttempts).ToArray());
                cmd.Parameters.Add(new NpgsqlParameter("params", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = jobs.Select(j => j.Params?.ToJsonString()).ToArray() });
                await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                {
                    inserted.Add(new EnqueuedJob(r.GetGuid(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetGuid(3)));
                }
            }

            await JobRows.NotifyQueuesAsync(conn, tx, inserted.Where(i => i.State == JobState.Queued).Select(i => i.Queue), cancellationToken);
            if (ownTx is not null)
            {
                await ownTx.CommitAsync(cancellationToken);

                // Only now are the queue rows certain to exist; a caller's transaction may still roll back.
                foreach (var queue in created)
                {
                    _knownQueues[queue] = true;
                }
            }

            return new EnqueuedJobs(inserted);
        }
        finally
        {
            if (ownConnection)
            {
                await conn.DisposeAsync();
            }
        }
    }

    public async Task<Job?> GetAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand($"select {JobRows.Columns} from jobs where id = @id and (@owner::uuid is null or owner_id = @owner)");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("owner", NpgsqlDbType.Uuid) { TypedValue = ownerScope });
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? JobRows.Read(r) : null;
    }

    public async Task<List<Job>> ListForAssetAsync(Guid assetId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand($"select {JobRows.Columns} from jobs where asset_id = @id order by created_at, id");
        cmd.Parameters.AddWithValue("id", assetId);
        var list = new List<Job>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            list.Add(JobRows.Read(r));
        }

        return list;
    }

    /// <summary>Jobs ahead of this one in its queue (0 = next), or null when it is not queued.</summary>
    public async Task<long?> QueuePositionAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            select (select count(*) from jobs o where o.queue = j.queue and o.state = 'queued'
                    and (o.priority, o.run_at, o.id) < (j.priority, j.run_at, j.id))
            from jobs j where j.id = @id and j.state = 'queued'
            """);
        cmd.Parameters.AddWithValue("id", id);
        return await cmd.ExecuteScalarAsync(cancellationToken) is long n ? n : null;
    }

    public int DefaultMaxAttempts => options.Value.DefaultMaxAttempts;

    /// <summary>After the jobs' transaction committed: wakes local loops at once and announces the jobs.</summary>
    public void Announce(EnqueuedJobs enqueued)
    {
        var inserted = enqueued.Jobs;
        foreach (var queue in inserted.Where(i => i.State == JobState.Queued).Select(i => i.Queue).Distinct(StringComparer.Ordinal))
        {
            wakeups.Wake(queue);
        }

        // Bulk enqueues (benchmarks, batches) would flood listeners; one event per job is for interactive sizes.
        if (inserted.Count <= 1000)
        {
            foreach (var job in inserted)
            {
                events.Publish(job.State == JobState.Queued ? JobEvents.Queued(job.Id, job.OwnerId) : JobEvents.Update(job.Id, job.OwnerId, job.State));
            }
        }
    }

    /// <summary>
    /// Bulk enqueue: binary COPY, several times cheaper for the server than unnesting a dozen arrays. Only for jobs
    /// that are all ready at once (no parent to look up; run_at and created_at take the server's now()).
    /// </summary>
    private static async Task CopyAsync(NpgsqlConnection conn, IReadOnlyList<NewJob> jobs, List<EnqueuedJob> inserted, CancellationToken ct)
    {
        await using (var writer = await conn.BeginBinaryImportAsync(
            "copy jobs (id, asset_id, batch_id, owner_id, kind, queue, state, priority, max_attempts, params) from stdin (format binary)", ct))
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
            }

            await writer.CompleteAsync(ct);
        }

        foreach (var job in jobs)
        {
            inserted.Add(new EnqueuedJob(job.Id, JobState.Queued, job.Queue, job.OwnerId));
        }
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

    /// <summary>Creates queue rows not known to exist yet; returns the names it made sure of.</summary>
    private async Task<string[]> EnsureQueuesAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, IReadOnlyList<NewJob> jobs, CancellationToken ct)
    {
        var missing = jobs.Select(j => j.Queue).Distinct(StringComparer.Ordinal).Where(q => !_knownQueues.ContainsKey(q)).ToArray();
        if (missing.Length == 0)
        {
            return missing;
        }

        await using var cmd = new NpgsqlCommand("""
            insert into queues (name, keep_completed, keep_failed) select q, @keep_completed, @keep_failed from unnest(@names) as q
            on conflict (name) do nothing
            """, conn, tx);
        cmd.Parameters.AddWithValue("names", missing);
        cmd.Parameters.AddWithValue("keep_completed", options.Value.KeepCompleted);
        cmd.Parameters.AddWithValue("keep_failed", options.Value.KeepFailed);
        await cmd.ExecuteNonQueryAsync(ct);
        return missing;
    }

    /// <summary>Forgets cached queue names (a test or an admin deleted rows behind our back).</summary>
    public void ForgetQueues() => _knownQueues.Clear();

    private static void AddNullableUuids(NpgsqlCommand cmd, string name, IEnumerable<Guid?> values) =>
        cmd.Parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = values.ToArray() });
}

internal sealed record EnqueuedJob(Guid Id, string State, string Queue, Guid? OwnerId);

internal sealed record EnqueuedJobs(IReadOnlyList<EnqueuedJob> Jobs);
