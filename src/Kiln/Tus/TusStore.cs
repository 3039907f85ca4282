using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Tus;

/// <summary>A resumable upload as stored; its offset is the length of its file, not a column.</summary>
internal sealed record TusUpload(
    Guid Id,
    Guid OwnerId,
    long Length,
    string FileName,
    string? Category,
    IReadOnlyList<string> Tags,
    JsonObject? Settings,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset? CompletedAt,
    Guid? AssetId)
{
    public bool IsComplete => CompletedAt is not null;
}

/// <summary>Rows of <c>tus_uploads</c>. Times come from the caller (a <see cref="TimeProvider"/>) so expiry can be tested.</summary>
internal sealed class TusStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "id, owner_id, length, file_name, category, tags, settings, created_at, expires_at, completed_at, asset_id";

    /// <summary>Inserts the upload unless its owner already has <paramref name="maxOpen"/> unfinished ones; false then.</summary>
    public async Task<bool> TryCreateAsync(TusUpload upload, int maxOpen, DateTimeOffset now, CancellationToken ct)
    {
        // One statement, so two creations racing cannot both pass the count.
        await using var cmd = dataSource.CreateCommand("""
            insert into tus_uploads (id, owner_id, length, file_name, category, tags, settings, created_at, expires_at)
            select @id, @owner, @length, @name, @category, @tags, @settings, @now, @expires
            where (select count(*) from tus_uploads where owner_id = @owner and completed_at is null and expires_at > @now) < @max
            """);
        cmd.Parameters.AddWithValue("id", upload.Id);
        cmd.Parameters.AddWithValue("owner", upload.OwnerId);
        cmd.Parameters.AddWithValue("length", upload.Length);
        cmd.Parameters.AddWithValue("name", upload.FileName);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("category", NpgsqlDbType.Text) { TypedValue = upload.Category });
        cmd.Parameters.AddWithValue("tags", upload.Tags.ToArray());
        cmd.Parameters.Add(new NpgsqlParameter<string?>("settings", NpgsqlDbType.Jsonb) { TypedValue = upload.Settings?.ToJsonString() });
        cmd.Parameters.AddWithValue("now", now);
        cmd.Parameters.AddWithValue("expires", upload.ExpiresAt);
        cmd.Parameters.AddWithValue("max", maxOpen);
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>The owner's upload, or null: another key's upload is as unknown as a missing one.</summary>
    public async Task<TusUpload?> GetAsync(Guid id, Guid ownerId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"select {Columns} from tus_uploads where id = @id and owner_id = @owner");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("owner", ownerId);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? Read(r) : null;
    }

    /// <summary>Moves an unfinished upload's expiry forward (each PATCH does, so a slow upload is not swept mid-way).</summary>
    public async Task ExtendAsync(Guid id, DateTimeOffset expiresAt, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("update tus_uploads set expires_at = @expires where id = @id and completed_at is null");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("expires", expiresAt);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Marks the upload finished inside the transaction that inserts its asset, so an upload becomes exactly one
    /// asset. Throws when the row is gone (terminated or swept meanwhile) or already finished: the ingest rolls back.
    /// </summary>
    public static async Task MarkCompletedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Guid id, Guid assetId, DateTimeOffset now, DateTimeOffset expiresAt, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            update tus_uploads set completed_at = @now, asset_id = @asset, expires_at = @expires where id = @id and completed_at is null
            """, conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("asset", assetId);
        cmd.Parameters.AddWithValue("now", now);
        cmd.Parameters.AddWithValue("expires", expiresAt);
        if (await cmd.ExecuteNonQueryAsync(ct) != 1)
        {
            throw new TusRejectedException(StatusCodes.Status410Gone, "tus.gone", "The upload was terminated or expired while it finished.");
        }
    }

    public async Task<bool> DeleteAsync(Guid id, Guid ownerId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("delete from tus_uploads where id = @id and owner_id = @owner");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("owner", ownerId);
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Uploads past their expiry, oldest first, at most <paramref name="limit"/>.</summary>
    public async Task<List<(Guid Id, bool Complete)>> ExpiredAsync(DateTimeOffset now, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select id, completed_at is not null from tus_uploads where expires_at <= @now order by expires_at limit @limit");
        cmd.Parameters.AddWithValue("now", now);
        cmd.Parameters.AddWithValue("limit", limit);
        var list = new List<(Guid, bool)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add((r.GetGuid(0), r.GetBoolean(1)));
        }

        return list;
    }

    /// <summary>Deletes an expired row unless a PATCH extended it meanwhile; true when deleted.</summary>
    public async Task<bool> DeleteExpiredAsync(Guid id, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("delete from tus_uploads where id = @id and expires_at <= @now");
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("now", now);
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<bool> ExistsAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select exists (select 1 from tus_uploads where id = @id)");
        cmd.Parameters.AddWithValue("id", id);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static TusUpload Read(NpgsqlDataReader r) => new(
        r.GetGuid(0),
        r.GetGuid(1),
        r.GetInt64(2),
        r.GetString(3),
        r.IsDBNull(4) ? null : r.GetString(4),
        r.GetFieldValue<string[]>(5),
        r.IsDBNull(6) ? null : JsonNode.Parse(r.GetString(6)) as JsonObject,
        r.GetFieldValue<DateTimeOffset>(7),
        r.GetFieldValue<DateTimeOffset>(8),
        r.IsDBNull(9) ? null : r.GetFieldValue<DateTimeOffset>(9),
        r.IsDBNull(10) ? null : r.GetGuid(10));
}
