using System.Text.Json.Nodes;
using Npgsql;

namespace Kiln.Jobs;

/// <summary>The one mapping between the jobs table and <see cref="Job"/>.</summary>
internal static class JobRows
{
    public const string Columns = """
        id, asset_id, batch_id, parent_id, owner_id, kind, queue, state, priority, run_at, attempts, max_attempts,
        stage, progress, speed, eta_seconds, total_bytes, params::text, result::text, error_code, error_message,
        lease_owner, lease_expires_at, last_progress_at, created_at, started_at, finished_at
        """;

    public static Job Read(NpgsqlDataReader r) => new()
    {
        Id = r.GetGuid(0),
        AssetId = r.IsDBNull(1) ? null : r.GetGuid(1),
        BatchId = r.IsDBNull(2) ? null : r.GetGuid(2),
        ParentId = r.IsDBNull(3) ? null : r.GetGuid(3),
        OwnerId = r.IsDBNull(4) ? null : r.GetGuid(4),
        Kind = r.GetString(5),
        Queue = r.GetString(6),
        State = r.GetString(7),
        Priority = r.GetInt32(8),
        RunAt = r.GetFieldValue<DateTimeOffset>(9),
        Attempts = r.GetInt32(10),
        MaxAttempts = r.GetInt32(11),
        Stage = r.IsDBNull(12) ? null : r.GetString(12),
        Progress = r.GetFloat(13),
        Speed = r.IsDBNull(14) ? null : r.GetDouble(14),
        EtaSeconds = r.IsDBNull(15) ? null : r.GetDouble(15),
        TotalBytes = r.IsDBNull(16) ? null : r.GetInt64(16),
        Params = r.IsDBNull(17) ? null : JsonNode.Parse(r.GetString(17)) as JsonObject,
        Result = r.IsDBNull(18) ? null : JsonNode.Parse(r.GetString(18)),
        ErrorCode = r.IsDBNull(19) ? null : r.GetString(19),
        ErrorMessage = r.IsDBNull(20) ? null : r.GetString(20),
        LeaseOwner = r.IsDBNull(21) ? null : r.GetString(21),
        LeaseExpiresAt = r.IsDBNull(22) ? null : r.GetFieldValue<DateTimeOffset>(22),
        LastProgressAt = r.IsDBNull(23) ? null : r.GetFieldValue<DateTimeOffset>(23),
        CreatedAt = r.GetFieldValue<DateTimeOffset>(24),
        StartedAt = r.IsDBNull(25) ? null : r.GetFieldValue<DateTimeOffset>(25),
        FinishedAt = r.IsDBNull(26) ? null : r.GetFieldValue<DateTimeOffset>(26),
    };

    /// <summary>
    /// NOTIFYs <c>kiln_jobs</c> for the queues, tagged as this node's (<see cref="QueueWakeups.NotifySuffix"/>): every
    /// caller wakes this node's loops itself after its commit.
    /// </summary>
    public static async Task NotifyQueuesAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, IEnumerable<string> queues, QueueWakeups wakeups, CancellationToken ct)
    {
        var distinct = queues.Distinct(StringComparer.Ordinal).ToArray();
        if (distinct.Length == 0)
        {
            return;
        }

        await using var cmd = new NpgsqlCommand("select pg_notify('kiln_jobs', q || @sender) from unnest(@qs) as q", conn, tx);
        cmd.Parameters.AddWithValue("qs", distinct);
        cmd.Parameters.AddWithValue("sender", wakeups.NotifySuffix);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
