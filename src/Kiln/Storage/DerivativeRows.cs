using Npgsql;
using NpgsqlTypes;

namespace Kiln.Storage;

/// <summary>Writes derivative rows for a published job attempt, replacing what an earlier run of the same (asset, type, variant) left.</summary>
internal static class DerivativeRows
{
    /// <summary>
    /// Upserts the rows and returns the directories of earlier attempts that no row points into any more: the caller
    /// deletes them after the commit.
    /// </summary>
    public static async Task<List<string>> UpsertAsync(
        NpgsqlConnection conn,
        NpgsqlTransaction tx,
        BlobStore blobs,
        Guid assetId,
        Guid jobId,
        string publishedDirectory,
        IReadOnlyList<OutputFile> outputs,
        CancellationToken ct)
    {
        var oldDirectories = new HashSet<string>(StringComparer.Ordinal);
        await using (var old = new NpgsqlCommand("""
            select path from derivatives
            where asset_id = @asset and (type, variant) in (select * from unnest(@types, @variants))
            for update
            """, conn, tx))
        {
            old.Parameters.AddWithValue("asset", assetId);
            old.Parameters.AddWithValue("types", outputs.Select(o => o.Type).ToArray());
            old.Parameters.AddWithValue("variants", outputs.Select(o => o.Variant).ToArray());
            await using var r = await old.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                oldDirectories.Add(AttemptDirectory(r.GetString(0)));
            }
        }

        await using (var upsert = new NpgsqlCommand("""
            insert into derivatives (id, asset_id, job_id, type, variant, path, content_type, size, width, height, duration)
            select * from unnest(@ids, @assets, @jobs, @types, @variants, @paths, @content_types, @sizes, @widths, @heights, @durations)
            on conflict (asset_id, type, variant) do update set
                id = excluded.id, job_id = excluded.job_id, path = excluded.path, content_type = excluded.content_type,
                size = excluded.size, width = excluded.width, height = excluded.height, duration = excluded.duration,
                created_at = now()
            """, conn, tx))
        {
            var paths = outputs.Select(o => NormalizeRelative(Path.Combine(publishedDirectory, o.RelativePath))).ToArray();
            upsert.Parameters.AddWithValue("ids", outputs.Select(_ => Guid.CreateVersion7()).ToArray());
            upsert.Parameters.AddWithValue("assets", outputs.Select(_ => assetId).ToArray());
            upsert.Parameters.AddWithValue("jobs", outputs.Select(_ => jobId).ToArray());
            upsert.Parameters.AddWithValue("types", outputs.Select(o => o.Type).ToArray());
            upsert.Parameters.AddWithValue("variants", outputs.Select(o => o.Variant).ToArray());
            upsert.Parameters.AddWithValue("paths", paths);
            upsert.Parameters.AddWithValue("content_types", outputs.Select(o => o.ContentType).ToArray());
            upsert.Parameters.AddWithValue("sizes", paths.Select(p => new FileInfo(blobs.Resolve(p)).Length).ToArray());
            upsert.Parameters.Add(new NpgsqlParameter("widths", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = outputs.Select(o => o.Width).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter("heights", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = outputs.Select(o => o.Height).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter("durations", NpgsqlDbType.Array | NpgsqlDbType.Double) { Value = outputs.Select(o => o.Duration).ToArray() });
            await upsert.ExecuteNonQueryAsync(ct);
        }

        oldDirectories.Remove(publishedDirectory);
        if (oldDirectories.Count == 0)
        {
            return [];
        }

        // A directory is an attempt's; it may still hold other derivative types that were not replaced.
        var stillUsed = new HashSet<string>(StringComparer.Ordinal);
        await using (var used = new NpgsqlCommand("select path from derivatives where asset_id = @asset", conn, tx))
        {
            used.Parameters.AddWithValue("asset", assetId);
            await using var r = await used.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                stillUsed.Add(AttemptDirectory(r.GetString(0)));
            }
        }

        return oldDirectories.Where(d => !stillUsed.Contains(d)).ToList();
    }

    /// <summary>derivatives/{asset}/{attempt}/… → derivatives/{asset}/{attempt}.</summary>
    public static string AttemptDirectory(string path)
    {
        var parts = path.Split('/');
        return parts.Length >= 3 ? string.Join('/', parts[..3]) : path;
    }

    private static string NormalizeRelative(string path) => path.Replace('\\', '/');
}
