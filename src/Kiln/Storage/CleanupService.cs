using System.ComponentModel.DataAnnotations;
using Kiln.Assets;
using Kiln.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Storage;

/// <summary>Section <c>Kiln:Retention</c>.</summary>
internal sealed class RetentionOptions
{
    public const string Section = "Kiln:Retention";

    /// <summary>Assets (original and derivatives) expire this many hours after upload; 0 keeps them until deleted.</summary>
    [Range(0, 24 * 365 * 100)]
    public double AssetTtlHours { get; set; }

    /// <summary>How often expired assets are removed.</summary>
    [Range(1, 86_400)]
    public double CleanupIntervalSeconds { get; set; } = 300;

    /// <summary>Upload temp files older than this are left over from a crash and are deleted.</summary>
    [Range(1, 100_000)]
    public double OrphanTempMinutes { get; set; } = 60;
}

/// <summary>
/// At start, removes what a crash left in tmp/ (job directories of jobs no longer running or paused, stale
/// uploads); then periodically deletes expired assets with their files.
/// </summary>
internal sealed class CleanupService(
    NpgsqlDataSource dataSource,
    BlobStore blobs,
    AssetStore assets,
    IOptions<RetentionOptions> options,
    ILogger<CleanupService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RemoveOrphansAsync(stoppingToken);
        }
        catch (Exception e) when (e is IOException or NpgsqlException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Removing orphaned temporary files failed");
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.CleanupIntervalSeconds));
        do
        {
            try
            {
                await RemoveExpiredAssetsAsync(stoppingToken);
            }
            catch (Exception e) when (e is IOException or NpgsqlException or UnauthorizedAccessException)
            {
                logger.LogWarning(e, "Removing expired assets failed; will try again");
            }
        }
        while (await TimerTicks.NextAsync(timer, stoppingToken));
    }

    public async Task<int> RemoveOrphansAsync(CancellationToken ct)
    {
        var removed = 0;
        var cutoff = DateTime.UtcNow - TimeSpan.FromMinutes(options.Value.OrphanTempMinutes);
        foreach (var file in new DirectoryInfo(blobs.UploadsTemp).EnumerateFiles().Where(f => f.LastWriteTimeUtc < cutoff))
        {
            file.Delete();
            removed++;
        }

        var live = new HashSet<string>(StringComparer.Ordinal);
        await using (var cmd = dataSource.CreateCommand("select id from jobs where state in ('running', 'paused')"))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                live.Add(r.GetGuid(0).ToString("N"));
            }
        }

        foreach (var dir in new DirectoryInfo(blobs.JobsTemp).EnumerateDirectories().Where(d => !live.Contains(d.Name)))
        {
            dir.Delete(recursive: true);
            removed++;
        }

        if (removed > 0)
        {
            logger.LogInformation("Removed {Count} orphaned temporary files and directories", removed);
        }

        return removed;
    }

    public async Task<int> RemoveExpiredAssetsAsync(CancellationToken ct)
    {
        var count = 0;
        foreach (var id in await assets.ExpiredAsync(500, ct))
        {
            if (await assets.DeleteAsync(id, null, ct) is { } paths)
            {
                foreach (var path in paths.Select(DerivativeRows.AttemptDirectory).Distinct(StringComparer.Ordinal))
                {
                    blobs.DeleteQuietly(path, logger);
                }

                count++;
            }
        }

        if (count > 0)
        {
            logger.LogInformation("Deleted {Count} expired assets", count);
        }

        return count;
    }
}
