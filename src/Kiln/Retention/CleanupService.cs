using Kiln.Assets;
using Kiln.Core;
using Kiln.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Retention;

/// <summary>
/// At start and then every <see cref="RetentionOptions.CleanupIntervalSeconds"/>: removes what a crash or a killed
/// worker left in tmp/ (job directories of finished or unknown jobs, abandoned uploads), expired assets with their
/// files, and finished jobs past their retention.
/// </summary>
internal sealed class CleanupService(
    NpgsqlDataSource dataSource,
    BlobStore blobs,
    AssetStore assets,
    IOptions<RetentionOptions> options,
    TimeProvider time,
    ILogger<CleanupService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.CleanupIntervalSeconds), time);
        do
        {
            try
            {
                // Every round, not only at start: a killed worker's directory or an abandoned .part file (a 440 MB
                // one survived a restart) would otherwise wait for the next restart.
                await RemoveOrphansAsync(stoppingToken);
                await RemoveExpiredAssetsAsync(stoppingToken);
                await RemoveOldJobsAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or NpgsqlException or UnauthorizedAccessException or TimeoutException)
            {
                logger.LogWarning(e, "Periodic cleanup failed; will try again");
            }
        }
        while (await TimerTicks.NextAsync(timer, stoppingToken));
    }

    public async Task<int> RemoveOrphansAsync(CancellationToken ct)
    {
        var removed = 0;
        // A live upload writes its .part file continuously and a live job's directory belongs to an unfinished job:
        // neither is old enough or finished enough to match.
        var cutoff = time.GetUtcNow().UtcDateTime - TimeSpan.FromMinutes(options.Value.OrphanTempMinutes);
        foreach (var file in new DirectoryInfo(blobs.UploadsTemp).EnumerateFiles().Where(f => f.LastWriteTimeUtc < cutoff))
        {
            file.Delete();
            removed++;
        }

        // A job's work directory is kept until the job has finished: a queued or waiting job may be about to start
        // an attempt in it (here or on another node), a paused one keeps its partial work there.
        var workDirectories = new DirectoryInfo(blobs.JobsTemp).EnumerateDirectories().ToList();
        var unfinished = await UnfinishedAsync(workDirectories.Select(d => d.Name), ct);
        foreach (var dir in workDirectories.Where(d => !unfinished.Contains(d.Name)))
        {
            dir.Delete(recursive: true);
            removed++;
        }

        removed += await RemoveUnreferencedAttemptsAsync(cutoff, ct);

        if (removed > 0)
        {
            logger.LogInformation("Removed {Count} orphaned temporary files and directories", removed);
        }

        return removed;
    }

    /// <summary>
    /// Deletes attempt directories (<c>derivatives/{asset}/{job}-{lease}</c>) that no derivative row points at: left by
    /// a crash between the publish rename and the commit, or between the commit and the removal of the attempt it
    /// replaced. A directory of a job that has not finished is never touched (it may be between its rename and its
    /// commit right now, on another node), nor one changed within <see cref="RetentionOptions.OrphanTempMinutes"/>.
    /// </summary>
    private async Task<int> RemoveUnreferencedAttemptsAsync(DateTime cutoff, CancellationToken ct)
    {
        var root = new DirectoryInfo(blobs.Resolve("derivatives"));
        if (!root.Exists)
        {
            return 0;
        }

        var old = root.EnumerateDirectories()
            .SelectMany(asset => asset.EnumerateDirectories())
            .Where(attempt => attempt.LastWriteTimeUtc < cutoff)
            .ToList();
        var unfinished = await UnfinishedAsync(old.Select(attempt => attempt.Name.Split('-')[0]), ct);
        var candidates = old
            .Where(attempt => !unfinished.Contains(attempt.Name.Split('-')[0]))
            .Select(attempt => (Asset: attempt.Parent!.Name, Relative: $"derivatives/{attempt.Parent!.Name}/{attempt.Name}"))
            .ToList();
        var removed = 0;
        foreach (var chunk in candidates.Chunk(1000))
        {
            var referenced = new HashSet<string>(StringComparer.Ordinal);
            await using (var cmd = dataSource.CreateCommand("select path from derivatives where asset_id = any(@assets)"))
            {
                cmd.Parameters.AddWithValue("assets", chunk.Select(c => Guid.TryParseExact(c.Asset, "N", out var id) ? id : Guid.Empty).Distinct().ToArray());
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    referenced.Add(DerivativeRows.AttemptDirectory(r.GetString(0)));
                }
            }

            foreach (var (_, relative) in chunk.Where(c => !referenced.Contains(c.Relative)))
            {
                blobs.DeleteQuietly(relative, logger);
                removed++;
            }
        }

        return removed;
    }

    /// <summary>Of the given job ids (directory names, <c>N</c> format), those of jobs that exist and have not finished.</summary>
    private async Task<HashSet<string>> UnfinishedAsync(IEnumerable<string> names, CancellationToken ct)
    {
        var ids = names.Select(n => Guid.TryParseExact(n, "N", out var id) ? id : Guid.Empty).Where(id => id != Guid.Empty).Distinct().ToArray();
        var unfinished = new HashSet<string>(StringComparer.Ordinal);
        foreach (var chunk in ids.Chunk(5000))
        {
            await using var cmd = dataSource.CreateCommand("select id from jobs where id = any(@ids) and state not in ('completed', 'failed', 'cancelled')");
            cmd.Parameters.AddWithValue("ids", chunk);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                unfinished.Add(r.GetGuid(0).ToString("N"));
            }
        }

        return unfinished;
    }

    /// <summary>Deletes finished jobs older than the configured retention, in bounded chunks; returns how many.</summary>
    public async Task<int> RemoveOldJobsAsync(CancellationToken ct)
    {
        if (options.Value.FinishedJobTtlHours <= 0)
        {
            return 0;
        }

        var total = 0;
        int deleted;
        do
        {
            await using var cmd = dataSource.CreateCommand("""
                delete from jobs where id in (
                    select id from jobs
                    where state in ('completed', 'failed', 'cancelled') and finished_at < now() - @ttl
                    limit 5000 for update skip locked)
                """);
            cmd.Parameters.AddWithValue("ttl", TimeSpan.FromHours(options.Value.FinishedJobTtlHours));
            deleted = await cmd.ExecuteNonQueryAsync(ct);
            total += deleted;
        }
        while (deleted == 5000);

        if (total > 0)
        {
            logger.LogInformation("Deleted {Count} finished jobs older than {Hours} h", total, options.Value.FinishedJobTtlHours);
        }

        return total;
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
