using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Assets;

internal sealed record BatchSummary(
    Guid Id,
    DateTimeOffset CreatedAt,
    JsonObject Pipeline,
    long Total,
    IReadOnlyDictionary<string, long> ByState,
    double Progress,
    bool Finished);

/// <summary>Batches: several assets run through one pipeline, followed as one.</summary>
internal sealed class BatchStore(NpgsqlDataSource dataSource)
{
    public async Task<Guid> CreateAsync(Guid ownerId, JsonObject? pipeline, CancellationToken ct)
    {
        var id = Guid.CreateVersion7();
        await using var cmd = dataSource.CreateCommand("insert into batches (id, owner_id, pipeline) values (@id, @owner, @pipeline::jsonb)");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("owner", ownerId);
        cmd.Parameters.AddWithValue("pipeline", pipeline?.ToJsonString() ?? "{}");
        await cmd.ExecuteNonQueryAsync(ct);
        return id;
    }

    /// <summary>Aggregate progress: the mean of the jobs' progress, finished jobs counting as 100.</summary>
    public async Task<BatchSummary?> GetAsync(Guid id, Guid? ownerScope, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select b.id, b.created_at, b.pipeline::text, j.state, count(j.id),
                coalesce(sum(case when j.state in ('completed', 'failed', 'cancelled') then 100 else j.progress end), 0)
            from batches b left join jobs j on j.batch_id = b.id
            where b.id = @id and (@owner::uuid is null or b.owner_id = @owner)
            group by b.id, b.created_at, b.pipeline::text, j.state
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("owner", NpgsqlDbType.Uuid) { TypedValue = ownerScope });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var byState = new Dictionary<string, long>(StringComparer.Ordinal);
        DateTimeOffset created = default;
        JsonObject pipeline = [];
        double progressSum = 0;
        var found = false;
        while (await r.ReadAsync(ct))
        {
            found = true;
            created = r.GetFieldValue<DateTimeOffset>(1);
            pipeline = JsonNode.Parse(r.GetString(2)) as JsonObject ?? [];
            if (!r.IsDBNull(3))
            {
                byState[r.GetString(3)] = r.GetInt64(4);
                progressSum += r.GetDouble(5);
            }
        }

        if (!found)
        {
            return null;
        }

        var total = byState.Values.Sum();
        var unfinished = byState.Where(s => s.Key is not ("completed" or "failed" or "cancelled")).Sum(s => s.Value);
        return new BatchSummary(id, created, pipeline, total, byState, total == 0 ? 0 : Math.Round(progressSum / total, 2), total > 0 && unfinished == 0);
    }
}
