using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Media;
using Kiln.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Assets;

internal sealed record IngestedJob(Guid Id, string Kind, string State);

internal sealed record IngestedAsset(Guid Id, string Name, string Kind, string ContentType, long Size, IReadOnlyList<IngestedJob> Jobs);

/// <summary>
/// Turns uploaded files into assets and their jobs. Files are renamed into place first and the rows inserted in one
/// transaction after; should that fail, the files are removed again, so no asset exists without its file or the reverse.
/// </summary>
internal sealed class AssetIngest(
    NpgsqlDataSource dataSource,
    BlobStore blobs,
    JobStore jobs,
    PipelinePlanner planner,
    IOptions<RetentionOptions> retention,
    TimeProvider time,
    ILogger<AssetIngest> logger)
{
    public Task<List<IngestedAsset>> IngestAsync(UploadForm form, Guid ownerId, Guid? batchId, CancellationToken ct) =>
        IngestAsync(form, ownerId, batchId, withinTransaction: null, ct);

    /// <summary>
    /// <paramref name="withinTransaction"/> runs in the transaction that inserts the assets (given their ids), so a
    /// caller's own bookkeeping (a tus upload marked finished) commits or rolls back with them.
    /// </summary>
    public async Task<List<IngestedAsset>> IngestAsync(
        UploadForm form,
        Guid ownerId,
        Guid? batchId,
        Func<NpgsqlConnection, NpgsqlTransaction, IReadOnlyList<Guid>, CancellationToken, Task>? withinTransaction,
        CancellationToken ct)
    {
        var published = new List<string>();
        var assets = new List<(Asset Asset, List<NewJob> Jobs)>();
        var ttl = retention.Value.AssetTtlHours;
        DateTimeOffset? expiresAt = ttl > 0 ? time.GetUtcNow().AddHours(ttl) : null;
        try
        {
            foreach (var file in form.Files)
            {
                var id = Guid.CreateVersion7();
                var path = blobs.PublishOriginal(file.TempPath, id);
                published.Add(path);
                var kind = file.Sniffed.Kind.ToName();
                var asset = new Asset
                {
                    Id = id,
                    OwnerId = ownerId,
                    Kind = kind,
                    ContentType = file.Sniffed.ContentType,
                    OriginalName = file.FileName,
                    Size = file.Size,
                    Path = path,
                    Category = form.Category,
                    Tags = form.Tags,
                    ExpiresAt = expiresAt,
                };
                assets.Add((asset, planner.Plan(id, ownerId, batchId, kind, form.Category, form.Settings)));
            }

            await using var conn = await dataSource.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            foreach (var (asset, _) in assets)
            {
                await AssetStore.InsertAsync(conn, tx, asset, ct);
            }

            var enqueued = await jobs.EnqueueAsync(assets.SelectMany(a => a.Jobs).ToList(), conn, tx, ct);
            if (withinTransaction is not null)
            {
                await withinTransaction(conn, tx, assets.Select(a => a.Asset.Id).ToList(), ct);
            }

            await tx.CommitAsync(ct);
            published.Clear();
            jobs.Announce(enqueued);

            var states = enqueued.Jobs.ToDictionary(j => j.Id, j => j.State);
            return assets.Select(a => new IngestedAsset(
                a.Asset.Id, a.Asset.OriginalName, a.Asset.Kind, a.Asset.ContentType, a.Asset.Size,
                a.Jobs.Select(j => new IngestedJob(j.Id, j.Kind, states[j.Id])).ToList())).ToList();
        }
        finally
        {
            foreach (var path in published)
            {
                blobs.DeleteQuietly(path, logger);
            }

            foreach (var file in form.Files.Where(f => File.Exists(f.TempPath)))
            {
                File.Delete(file.TempPath);
            }
        }
    }

    /// <summary>Runs a pipeline on existing assets (a batch over asset ids).</summary>
    public async Task<List<IngestedAsset>> PlanForAssetsAsync(IReadOnlyList<Asset> assets, Guid ownerId, Guid batchId, JsonObject? settings, CancellationToken ct)
    {
        var planned = assets.Select(a => (Asset: a, Jobs: planner.Plan(a.Id, ownerId, batchId, a.Kind, a.Category, settings))).ToList();
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var enqueued = await jobs.EnqueueAsync(planned.SelectMany(p => p.Jobs).ToList(), conn, tx, ct);
        await tx.CommitAsync(ct);
        jobs.Announce(enqueued);
        var states = enqueued.Jobs.ToDictionary(j => j.Id, j => j.State);
        return planned.Select(p => new IngestedAsset(
            p.Asset.Id, p.Asset.OriginalName, p.Asset.Kind, p.Asset.ContentType, p.Asset.Size,
            p.Jobs.Select(j => new IngestedJob(j.Id, j.Kind, states[j.Id])).ToList())).ToList();
    }
}
