using System.Text.Json.Nodes;
using Kiln.Jobs;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Assets;

/// <summary>Filters of the asset list; null leaves a filter off. <c>Search</c> matches the id or a part of the name.</summary>
internal sealed record AssetFilter(string? Kind = null, string? Category = null, string? Tag = null, string? State = null, string? Search = null)
{
    public static readonly string[] Kinds = ["image", "audio", "video", "other"];
    public static readonly string[] States = ["processing", "done", "failed"];
}

/// <summary>Asset and derivative rows.</summary>
internal sealed class AssetStore(NpgsqlDataSource dataSource)
{
    private const string AssetColumns = """
        id, owner_id, kind, content_type, original_name, size, sha256, path, metadata::text, category, tags, source, source_url, created_at, expires_at
        """;

    private const string DerivativeColumns = "id, asset_id, job_id, type, variant, path, content_type, size, width, height, duration, created_at";

    public static async Task InsertAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Asset asset, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            insert into assets (id, owner_id, kind, content_type, original_name, size, sha256, path, metadata, category, tags, source, source_url, expires_at)
            values (@id, @owner, @kind, @ct, @name, @size, @sha, @path, @meta::jsonb, @category, @tags, @source, @url, @expires)
            """, conn, tx);
        cmd.Parameters.AddWithValue("id", asset.Id);
        cmd.Parameters.AddWithValue("owner", asset.OwnerId);
        cmd.Parameters.AddWithValue("kind", asset.Kind);
        cmd.Parameters.AddWithValue("ct", asset.ContentType);
        cmd.Parameters.AddWithValue("name", asset.OriginalName);
        cmd.Parameters.AddWithValue("size", asset.Size);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("sha", NpgsqlDbType.Text) { TypedValue = asset.Sha256 });
        cmd.Parameters.AddWithValue("path", asset.Path);
        cmd.Parameters.AddWithValue("meta", asset.Metadata.ToJsonString());
        cmd.Parameters.Add(new NpgsqlParameter<string?>("category", NpgsqlDbType.Text) { TypedValue = asset.Category });
        cmd.Parameters.AddWithValue("tags", asset.Tags.ToArray());
        cmd.Parameters.AddWithValue("source", asset.Source);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("url", NpgsqlDbType.Text) { TypedValue = asset.SourceUrl });
        cmd.Parameters.Add(new NpgsqlParameter<DateTimeOffset?>("expires", NpgsqlDbType.TimestampTz) { TypedValue = asset.ExpiresAt });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// The asset, its derivatives and its jobs as of one moment: three reads in one REPEATABLE READ transaction, so a
    /// job that completed between them cannot show as completed without the outputs it published.
    /// </summary>
    public async Task<(Asset Asset, List<Derivative> Derivatives, List<Job> Jobs)?> DetailsAsync(Guid id, Guid? ownerScope, JobStore jobs, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        if (await GetAsync(conn, id, ownerScope, ct) is not { } asset)
        {
            return null;
        }

        var derivatives = await DerivativesAsync(conn, id, ct);
        var assetJobs = await jobs.ListForAssetAsync(conn, id, ct);
        await tx.CommitAsync(ct);
        return (asset, derivatives, assetJobs);
    }

    public Task<Asset?> GetAsync(Guid id, Guid? ownerScope, CancellationToken ct) => GetAsync(null, id, ownerScope, ct);

    private async Task<Asset?> GetAsync(NpgsqlConnection? conn, Guid id, Guid? ownerScope, CancellationToken ct)
    {
        await using var cmd = Command($"select {AssetColumns} from assets where id = @id and (@owner::uuid is null or owner_id = @owner)", conn);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("owner", NpgsqlDbType.Uuid) { TypedValue = ownerScope });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? ReadAsset(r) : null;
    }

    public async Task<List<Asset>> ListAsync(Guid? ownerScope, AssetFilter filter, int limit, int offset, CancellationToken ct)
    {
        // Each filter is off while its parameter is null, so one statement serves every combination. An asset's state
        // comes from its jobs: processing while any is unfinished, failed when one failed, done otherwise.
        await using var cmd = dataSource.CreateCommand($"""
            select {AssetColumns} from assets a
            where (@owner::uuid is null or owner_id = @owner)
              and (@kind::text is null or kind = @kind)
              and (@category::text is null or category = @category)
              and (@tag::text is null or @tag = any(tags))
              and (@q::text is null or id::text = lower(@q) or original_name ilike '%' || @like || '%' escape '\')
              and (@state::text is null
                   or (@state = 'processing' and exists (select 1 from jobs j where j.asset_id = a.id and j.state in ('waiting', 'queued', 'running', 'paused')))
                   or (@state = 'failed' and exists (select 1 from jobs j where j.asset_id = a.id and j.state = 'failed'))
                   or (@state = 'done' and not exists (select 1 from jobs j where j.asset_id = a.id and j.state not in ('completed', 'cancelled'))))
            order by created_at desc, id desc limit @limit offset @offset
            """);
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("owner", NpgsqlDbType.Uuid) { TypedValue = ownerScope });
        cmd.Parameters.Add(new NpgsqlParameter<string?>("kind", NpgsqlDbType.Text) { TypedValue = filter.Kind });
        cmd.Parameters.Add(new NpgsqlParameter<string?>("category", NpgsqlDbType.Text) { TypedValue = filter.Category });
        cmd.Parameters.Add(new NpgsqlParameter<string?>("tag", NpgsqlDbType.Text) { TypedValue = filter.Tag });
        cmd.Parameters.Add(new NpgsqlParameter<string?>("q", NpgsqlDbType.Text) { TypedValue = filter.Search });
        cmd.Parameters.Add(new NpgsqlParameter<string?>("like", NpgsqlDbType.Text)
        {
            TypedValue = filter.Search?.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal),
        });
        cmd.Parameters.Add(new NpgsqlParameter<string?>("state", NpgsqlDbType.Text) { TypedValue = filter.State });
        cmd.Parameters.AddWithValue("limit", limit);
        cmd.Parameters.AddWithValue("offset", offset);
        var list = new List<Asset>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(ReadAsset(r));
        }

        return list;
    }

    public Task<List<Derivative>> DerivativesAsync(Guid assetId, CancellationToken ct) => DerivativesAsync(null, assetId, ct);

    private async Task<List<Derivative>> DerivativesAsync(NpgsqlConnection? conn, Guid assetId, CancellationToken ct)
    {
        await using var cmd = Command($"select {DerivativeColumns} from derivatives where asset_id = @id order by type, variant", conn);
        cmd.Parameters.AddWithValue("id", assetId);
        var list = new List<Derivative>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(ReadDerivative(r));
        }

        return list;
    }

    /// <summary>A derivative by id, with the owner of its asset for the access check.</summary>
    public async Task<(Derivative Derivative, Guid OwnerId)?> GetDerivativeAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"""
            select {string.Join(", ", DerivativeColumns.Split(", ").Select(c => "d." + c))}, a.owner_id
            from derivatives d join assets a on a.id = d.asset_id where d.id = @id
            """);
        cmd.Parameters.AddWithValue("id", id);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (ReadDerivative(r), r.GetGuid(12)) : null;
    }

    /// <summary>Deletes the asset row (jobs and derivatives cascade) and returns the paths to remove from disk.</summary>
    public async Task<List<string>?> DeleteAsync(Guid id, Guid? ownerScope, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var paths = new List<string>();
        await using (var select = new NpgsqlCommand("select path from derivatives where asset_id = @id", conn, tx))
        {
            select.Parameters.AddWithValue("id", id);
            await using var r = await select.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                paths.Add(r.GetString(0));
            }
        }

        await using (var delete = new NpgsqlCommand("delete from assets where id = @id and (@owner::uuid is null or owner_id = @owner) returning path", conn, tx))
        {
            delete.Parameters.AddWithValue("id", id);
            delete.Parameters.Add(new NpgsqlParameter<Guid?>("owner", NpgsqlDbType.Uuid) { TypedValue = ownerScope });
            if (await delete.ExecuteScalarAsync(ct) is not string original)
            {
                return null;
            }

            paths.Add(original);
        }

        await tx.CommitAsync(ct);
        return paths;
    }

    /// <summary>Ids of assets past their expiry, oldest first.</summary>
    public async Task<List<Guid>> ExpiredAsync(int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select id from assets where expires_at < now() order by expires_at limit @limit");
        cmd.Parameters.AddWithValue("limit", limit);
        var list = new List<Guid>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(r.GetGuid(0));
        }

        return list;
    }

    private static Asset ReadAsset(NpgsqlDataReader r) => new()
    {
        Id = r.GetGuid(0),
        OwnerId = r.GetGuid(1),
        Kind = r.GetString(2),
        ContentType = r.GetString(3),
        OriginalName = r.GetString(4),
        Size = r.GetInt64(5),
        Sha256 = r.IsDBNull(6) ? null : r.GetString(6),
        Path = r.GetString(7),
        Metadata = JsonNode.Parse(r.GetString(8)) as JsonObject ?? [],
        Category = r.IsDBNull(9) ? null : r.GetString(9),
        Tags = r.GetFieldValue<string[]>(10),
        Source = r.GetString(11),
        SourceUrl = r.IsDBNull(12) ? null : r.GetString(12),
        CreatedAt = r.GetFieldValue<DateTimeOffset>(13),
        ExpiresAt = r.IsDBNull(14) ? null : r.GetFieldValue<DateTimeOffset>(14),
    };

    private static Derivative ReadDerivative(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetGuid(1), r.IsDBNull(2) ? null : r.GetGuid(2), r.GetString(3), r.GetString(4), r.GetString(5),
        r.GetString(6), r.GetInt64(7), r.IsDBNull(8) ? null : r.GetInt32(8), r.IsDBNull(9) ? null : r.GetInt32(9),
        r.IsDBNull(10) ? null : r.GetDouble(10), r.GetFieldValue<DateTimeOffset>(11));

    /// <summary>A command on <paramref name="conn"/> (and its transaction) when given, else on a pooled connection of its own.</summary>
    private NpgsqlCommand Command(string sql, NpgsqlConnection? conn) => conn is null ? dataSource.CreateCommand(sql) : new NpgsqlCommand(sql, conn);
}
