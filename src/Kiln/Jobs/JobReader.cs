using Npgsql;
using NpgsqlTypes;

namespace Kiln.Jobs;

/// <summary>
/// Reads jobs, their attempt history and queue positions. It depends on nothing but the database, so the hub's event
/// dispatchers (which are themselves listeners of the job event sink that <see cref="JobStore"/> publishes to) can
/// take it by constructor injection instead of resolving JobStore lazily.
/// </summary>
internal sealed class JobReader(NpgsqlDataSource dataSource)
{
    public async Task<Job?> GetAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand($"select {JobRows.Columns} from jobs where id = @id and (@owner::uuid is null or owner_id = @owner)");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("owner", NpgsqlDbType.Uuid) { TypedValue = ownerScope });
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? JobRows.Read(r) : null;
    }

    /// <summary>The job with its attempt history: what <c>GET /api/jobs/{id}</c> shows (hub snapshots stay without it).</summary>
    public async Task<Job?> GetDetailAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken) =>
        await GetAsync(id, ownerScope, cancellationToken) is { } job
            ? job with { History = await HistoryAsync(id, cancellationToken) }
            : null;

    /// <summary>The job's attempts, oldest first: those that ended (written as they end, migration 009) and the running one.</summary>
    public async Task<List<JobAttempt>> HistoryAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            select attempt, lease_id, worker, started_at, finished_at, outcome, error_code, error_message
            from job_history where job_id = @id order by started_at, attempt
            """);
        cmd.Parameters.AddWithValue("id", id);
        var list = new List<JobAttempt>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            list.Add(new JobAttempt(
                r.GetInt32(0),
                r.GetGuid(1),
                r.IsDBNull(2) ? null : r.GetString(2),
                r.GetFieldValue<DateTimeOffset>(3),
                r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4),
                r.IsDBNull(5) ? null : r.GetString(5),
                r.IsDBNull(6) ? null : r.GetString(6),
                r.IsDBNull(7) ? null : r.GetString(7)));
        }

        return list;
    }

    /// <summary>The asset's jobs; on <paramref name="conn"/> when the caller reads a snapshot in its transaction.</summary>
    public async Task<List<Job>> ListForAssetAsync(NpgsqlConnection? conn, Guid assetId, CancellationToken cancellationToken)
    {
        const string sql = $"select {JobRows.Columns} from jobs where asset_id = @id order by created_at, id";
        await using var cmd = conn is null ? dataSource.CreateCommand(sql) : new NpgsqlCommand(sql, conn);
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
}
