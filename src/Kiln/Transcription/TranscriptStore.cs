using System.Text.Json;
using Kiln.Media.Transcription;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Transcription;

internal static class TranscriptSource
{
    public const string Auto = "AUTO";
    public const string Manual = "MANUAL";
}

/// <summary>A transcript version without its text and segments, as the version list shows it.</summary>
internal sealed record TranscriptVersion(
    int Version, string Source, bool IsActive, string? Language, string? Provider, string? Model, Guid? JobId, DateTimeOffset CreatedAt, Guid? CreatedBy);

internal sealed record Transcript(TranscriptVersion Info, string Text, IReadOnlyList<TranscriptSegment> Segments);

/// <summary>What a new version carries; <see cref="Activate"/> says whether it may take over from the active one.</summary>
internal sealed record NewTranscript(
    string Source, string? Language, string Text, IReadOnlyList<TranscriptSegment> Segments, string? Provider, string? Model, Guid? JobId, Guid? CreatedBy);

/// <summary>Transcript rows. Versions are numbered per asset under a row lock on the asset, so two writers never collide.</summary>
internal sealed class TranscriptStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "version, source, is_active, language, provider, model, job_id, created_at, created_by";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<List<TranscriptVersion>> ListAsync(Guid assetId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"select {Columns} from transcripts where asset_id = @a order by version");
        cmd.Parameters.AddWithValue("a", assetId);
        var list = new List<TranscriptVersion>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(ReadInfo(r));
        }

        return list;
    }

    public async Task<Transcript?> GetActiveAsync(Guid assetId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"select {Columns}, text, segments::text from transcripts where asset_id = @a and is_active");
        cmd.Parameters.AddWithValue("a", assetId);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return null;
        }

        var segments = JsonSerializer.Deserialize<List<TranscriptSegment>>(r.GetString(10), Json) ?? [];
        return new Transcript(ReadInfo(r), r.GetString(9), segments);
    }

    /// <summary>Adds a MANUAL version and makes it active.</summary>
    public async Task<TranscriptVersion> AddManualAsync(Guid assetId, NewTranscript transcript, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var version = await AddAsync(conn, tx, assetId, transcript, activate: true, ct);
        await tx.CommitAsync(ct);
        return version;
    }

    /// <summary>
    /// Adds a version inside the caller's transaction. An AUTO version becomes active unless a MANUAL one is active
    /// and <paramref name="activate"/> is false: a person's edit outranks the machine unless the job asked otherwise.
    /// </summary>
    public static async Task<TranscriptVersion> AddAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, Guid assetId, NewTranscript t, bool activate, CancellationToken ct)
    {
        await using (var lockCmd = new NpgsqlCommand("select 1 from assets where id = @a for update", conn, tx))
        {
            lockCmd.Parameters.AddWithValue("a", assetId);
            await lockCmd.ExecuteScalarAsync(ct);
        }

        bool takesOver;
        int next;
        await using (var state = new NpgsqlCommand("""
            select coalesce(max(version), 0) + 1, coalesce(bool_or(is_active and source = 'MANUAL'), false)
            from transcripts where asset_id = @a
            """, conn, tx))
        {
            state.Parameters.AddWithValue("a", assetId);
            await using var sr = await state.ExecuteReaderAsync(ct);
            await sr.ReadAsync(ct);
            next = sr.GetInt32(0);
            takesOver = activate || t.Source == TranscriptSource.Manual || !sr.GetBoolean(1);
        }

        // Two statements, not one: the one-active index is checked row by row, so the old row must be cleared first.
        if (takesOver)
        {
            await using var clear = new NpgsqlCommand("update transcripts set is_active = false where asset_id = @a and is_active", conn, tx);
            clear.Parameters.AddWithValue("a", assetId);
            await clear.ExecuteNonQueryAsync(ct);
        }

        await using var cmd = new NpgsqlCommand($"""
            insert into transcripts (asset_id, version, source, is_active, language, text, segments, provider, model, job_id, created_by)
            values (@a, @v, @source, @active, @lang, @text, @segments::jsonb, @provider, @model, @job, @by)
            returning {Columns}
            """, conn, tx);
        cmd.Parameters.AddWithValue("v", next);
        cmd.Parameters.AddWithValue("active", takesOver);
        cmd.Parameters.AddWithValue("a", assetId);
        cmd.Parameters.AddWithValue("source", t.Source);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("lang", NpgsqlDbType.Text) { TypedValue = t.Language });
        cmd.Parameters.AddWithValue("text", t.Text);
        cmd.Parameters.AddWithValue("segments", JsonSerializer.Serialize(t.Segments, Json));
        cmd.Parameters.Add(new NpgsqlParameter<string?>("provider", NpgsqlDbType.Text) { TypedValue = t.Provider });
        cmd.Parameters.Add(new NpgsqlParameter<string?>("model", NpgsqlDbType.Text) { TypedValue = t.Model });
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("job", NpgsqlDbType.Uuid) { TypedValue = t.JobId });
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("by", NpgsqlDbType.Uuid) { TypedValue = t.CreatedBy });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return ReadInfo(r);
    }

    /// <summary>Makes <paramref name="version"/> the active one; false when it does not exist.</summary>
    public async Task<bool> ActivateAsync(Guid assetId, int version, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var exists = new NpgsqlCommand("select 1 from transcripts where asset_id = @a and version = @v for update", conn, tx))
        {
            exists.Parameters.AddWithValue("a", assetId);
            exists.Parameters.AddWithValue("v", version);
            if (await exists.ExecuteScalarAsync(ct) is null)
            {
                return false;
            }
        }

        await using var cmd = new NpgsqlCommand("""
            update transcripts set is_active = false where asset_id = @a and is_active and version <> @v;
            update transcripts set is_active = true where asset_id = @a and version = @v;
            """, conn, tx);
        cmd.Parameters.AddWithValue("a", assetId);
        cmd.Parameters.AddWithValue("v", version);
        await cmd.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return true;
    }

    private static TranscriptVersion ReadInfo(NpgsqlDataReader r) => new(
        r.GetInt32(0),
        r.GetString(1),
        r.GetBoolean(2),
        r.IsDBNull(3) ? null : r.GetString(3),
        r.IsDBNull(4) ? null : r.GetString(4),
        r.IsDBNull(5) ? null : r.GetString(5),
        r.IsDBNull(6) ? null : r.GetGuid(6),
        r.GetFieldValue<DateTimeOffset>(7),
        r.IsDBNull(8) ? null : r.GetGuid(8));
}
