using System.Security.Cryptography;
using Npgsql;

namespace Kiln.Workers;

/// <summary>A connected worker as <c>GET /api/workers</c> shows it.</summary>
internal sealed record WorkerView(
    string Id,
    string Name,
    string Version,
    string Node,
    Guid TokenId,
    string[] Kinds,
    int Slots,
    string? Address,
    DateTimeOffset ConnectedAt,
    DateTimeOffset LastSeenAt,
    IReadOnlyList<WorkerJobView> Running);

internal sealed record WorkerJobView(Guid JobId, string Kind, double Progress, string? Stage);

/// <summary>What a connection records about itself.</summary>
internal sealed record WorkerRecord(string Id, string Name, string Version, Guid KeyId, string Node, string[] Kinds, int Slots, string? Address);

/// <summary>A job's leased input, when the lease is still held.</summary>
internal sealed record LeasedInput(string? AssetPath, string? ContentType, string? OriginalName);

/// <summary>The <c>workers</c> table (every node's connections) and the lease checks of the worker file endpoints.</summary>
internal sealed class WorkerStore(NpgsqlDataSource dataSource)
{
    public async Task UpsertAsync(WorkerRecord worker, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            insert into workers (id, name, version, key_id, node, kinds, slots, remote_address)
            values (@id, @name, @version, @key, @node, @kinds, @slots, @address)
            on conflict (id) do update set last_seen_at = now(), disconnected_at = null
            """);
        cmd.Parameters.AddWithValue("id", worker.Id);
        cmd.Parameters.AddWithValue("name", worker.Name);
        cmd.Parameters.AddWithValue("version", worker.Version);
        cmd.Parameters.AddWithValue("key", worker.KeyId);
        cmd.Parameters.AddWithValue("node", worker.Node);
        cmd.Parameters.AddWithValue("kinds", worker.Kinds);
        cmd.Parameters.AddWithValue("slots", worker.Slots);
        cmd.Parameters.AddWithValue("address", (object?)worker.Address ?? DBNull.Value);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task TouchAsync(string id, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("update workers set last_seen_at = now() where id = @id");
        cmd.Parameters.AddWithValue("id", id);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task DisconnectedAsync(string id, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("update workers set disconnected_at = now() where id = @id");
        cmd.Parameters.AddWithValue("id", id);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Workers connected now: not disconnected, and heard from within <paramref name="silence"/> (a node that died leaves rows behind).</summary>
    public async Task<List<WorkerView>> ListLiveAsync(TimeSpan silence, CancellationToken cancellationToken)
    {
        var workers = new List<(WorkerRecord Record, DateTimeOffset ConnectedAt, DateTimeOffset LastSeenAt)>();
        await using (var cmd = dataSource.CreateCommand("""
            select id, name, version, key_id, node, kinds, slots, remote_address, connected_at, last_seen_at from workers
            where disconnected_at is null and last_seen_at > now() - @silence
            order by connected_at, id
            """))
        {
            cmd.Parameters.AddWithValue("silence", silence);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                workers.Add((
                    new WorkerRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetGuid(3), r.GetString(4), r.GetFieldValue<string[]>(5), r.GetInt32(6), r.IsDBNull(7) ? null : r.GetString(7)),
                    r.GetFieldValue<DateTimeOffset>(8),
                    r.GetFieldValue<DateTimeOffset>(9)));
            }
        }

        var running = new Dictionary<string, List<WorkerJobView>>(StringComparer.Ordinal);
        if (workers.Count > 0)
        {
            await using var cmd = dataSource.CreateCommand("""
                select lease_owner, id, kind, progress, stage from jobs where state = 'running' and lease_owner = any(@ids) order by started_at, id
                """);
            cmd.Parameters.AddWithValue("ids", workers.Select(w => w.Record.Id).ToArray());
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var owner = r.GetString(0);
                if (!running.TryGetValue(owner, out var list))
                {
                    running[owner] = list = [];
                }

                list.Add(new WorkerJobView(r.GetGuid(1), r.GetString(2), r.GetFloat(3), r.IsDBNull(4) ? null : r.GetString(4)));
            }
        }

        return workers.Select(w => new WorkerView(
            w.Record.Id, w.Record.Name, w.Record.Version, w.Record.Node, w.Record.KeyId, w.Record.Kinds, w.Record.Slots, w.Record.Address,
            w.ConnectedAt, w.LastSeenAt, running.TryGetValue(w.Record.Id, out var jobs) ? jobs : [])).ToList();
    }

    /// <summary>The job's input when the lease is still held; null when it is not (finished, cancelled, expired, forged).</summary>
    public async Task<LeasedInput?> FindLeaseAsync(Guid jobId, Guid leaseId, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            select a.path, a.content_type, a.original_name from jobs j left join assets a on a.id = j.asset_id
            where j.id = @id and j.lease_id = @lease and j.state = 'running'
            """);
        cmd.Parameters.AddWithValue("id", jobId);
        cmd.Parameters.AddWithValue("lease", leaseId);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken)
            ? new LeasedInput(r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2))
            : null;
    }

    /// <summary>Forgets workers gone for a day.</summary>
    public async Task<int> PruneAsync(CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("delete from workers where coalesce(disconnected_at, last_seen_at) < now() - interval '1 day'");
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// The secret of the given name, created on first use; every node reads the same one. Null in the rare race where
    /// another node created it during this statement: ask again.
    /// </summary>
    public async Task<byte[]?> SecretAsync(string name, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            with created as (
                insert into server_secrets (name, value) values (@name, @value) on conflict (name) do nothing returning value
            )
            select value from created union all select value from server_secrets where name = @name limit 1
            """);
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.AddWithValue("value", RandomNumberGenerator.GetBytes(32));
        return await cmd.ExecuteScalarAsync(cancellationToken) as byte[];
    }
}
