using System.Text;
using Kiln.Core;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Jobs;

/// <summary>Filters, sorting and paging for <c>GET /api/jobs</c>.</summary>
internal sealed record JobFilter(
    string? State = null,
    string? Kind = null,
    string? Queue = null,
    Guid? AssetId = null,
    Guid? BatchId = null,
    Guid? OwnerScope = null,
    string Sort = "-createdAt",
    int Page = 1,
    int PageSize = 50);

internal sealed record JobPage(IReadOnlyList<Job> Items, long Total, int Page, int PageSize);

internal static class JobQuery
{
    /// <summary>Sort keys clients may use, mapped to columns; anything else is refused, never spliced into SQL.</summary>
    public static readonly IReadOnlyDictionary<string, string> SortColumns = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        // Job ids are UUIDv7, minted when the job is made: their order is creation order, and the primary key
        // serves it, so the queue does not maintain a separate created_at index on every state change.
        ["createdAt"] = "id",
        ["finishedAt"] = "finished_at",
        ["startedAt"] = "started_at",
        ["priority"] = "priority",
        ["runAt"] = "run_at",
        ["state"] = "state",
        ["kind"] = "kind",
        ["progress"] = "progress",
    };

    public static async Task<JobPage> ListAsync(NpgsqlDataSource dataSource, JobFilter filter, CancellationToken ct)
    {
        var descending = filter.Sort.StartsWith('-');
        var column = SortColumns[filter.Sort.TrimStart('-', '+')];
        var where = new StringBuilder("true");
        await using var cmd = dataSource.CreateCommand();
        Add(cmd, where, "state", filter.State, NpgsqlDbType.Text);
        Add(cmd, where, "kind", filter.Kind, NpgsqlDbType.Text);
        Add(cmd, where, "queue", filter.Queue, NpgsqlDbType.Text);
        Add(cmd, where, "asset_id", filter.AssetId, NpgsqlDbType.Uuid);
        Add(cmd, where, "batch_id", filter.BatchId, NpgsqlDbType.Uuid);
        Add(cmd, where, "owner_id", filter.OwnerScope, NpgsqlDbType.Uuid);
        var direction = descending ? "desc nulls last" : "asc nulls first";
        cmd.CommandText = $"""
            select {JobRows.Columns}, count(*) over () from jobs where {where}
            order by {column} {direction}, id {(descending ? "desc" : "asc")}
            limit @limit offset @offset
            """;
        cmd.Parameters.AddWithValue("limit", filter.PageSize);
        cmd.Parameters.AddWithValue("offset", Paging.Offset(filter.Page, filter.PageSize));
        var items = new List<Job>();
        long total = 0;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                items.Add(JobRows.Read(r));
                total = r.GetInt64(27);
            }
        }

        if (items.Count == 0 && filter.Page > 1)
        {
            // Past the last page the window count is unavailable; ask for it directly.
            cmd.CommandText = $"select count(*) from jobs where {where}";
            total = (long)(await cmd.ExecuteScalarAsync(ct))!;
        }

        return new JobPage(items, total, filter.Page, filter.PageSize);
    }

    private static void Add<T>(NpgsqlCommand cmd, StringBuilder where, string column, T? value, NpgsqlDbType type)
    {
        if (value is null)
        {
            return;
        }

        where.Append(" and ").Append(column).Append(" = @").Append(column);
        cmd.Parameters.Add(new NpgsqlParameter(column, type) { Value = value });
    }
}
