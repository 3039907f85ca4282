using Kiln.Core;
using Kiln.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Tus;

/// <summary>
/// Deletes expired resumable uploads (their record and partial file) every <see cref="TusOptions.SweepIntervalSeconds"/>,
/// and partial files left without a record. Runs on the injected <see cref="TimeProvider"/>, so tests can move time.
/// </summary>
internal sealed class TusSweeper(
    TusStore store,
    BlobStore blobs,
    IOptions<TusOptions> options,
    TimeProvider time,
    ILogger<TusSweeper> logger) : BackgroundService
{
    private const int Batch = 500;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SweepIntervalSeconds), time);
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                await SweepAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or NpgsqlException or UnauthorizedAccessException or TimeoutException)
            {
                logger.LogWarning(e, "Sweeping expired resumable uploads failed; will try again");
            }
        }
    }

    /// <summary>Returns how many uploads were removed.</summary>
    public async Task<int> SweepAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var removed = 0;
        List<(Guid Id, bool Complete)> expired;
        do
        {
            expired = await store.ExpiredAsync(now, Batch, ct);
            foreach (var (id, _) in expired)
            {
                // The record goes first and only if still expired: a PATCH that just extended it keeps its upload.
                if (await store.DeleteExpiredAsync(id, now, ct))
                {
                    File.Delete(blobs.TusUploadPath(id));
                    File.Delete(blobs.TusLockPath(id));
                    removed++;
                }
            }
        }
        while (expired.Count == Batch);

        await RemoveOrphanFilesAsync(now, ct);
        return removed;
    }

    /// <summary>A crash between deleting a record and its file leaves the file; one older than the expiry with no record goes.</summary>
    private async Task RemoveOrphanFilesAsync(DateTimeOffset now, CancellationToken ct)
    {
        var cutoff = now - TimeSpan.FromHours(options.Value.ExpirationHours);
        var files = new DirectoryInfo(blobs.TusTemp).EnumerateFiles("*.part").Concat(new DirectoryInfo(blobs.TusTemp).EnumerateFiles("*.lock"));
        foreach (var file in files)
        {
            if (file.LastWriteTimeUtc < cutoff.UtcDateTime
                && Guid.TryParseExact(Path.GetFileNameWithoutExtension(file.Name), "N", out var id)
                && !await store.ExistsAsync(id, ct))
            {
                file.Delete();
            }
        }
    }
}
