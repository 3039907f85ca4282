using Kiln.Core;
using Kiln.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Fetch;

/// <summary>
/// Removes <c>tmp/fetch/{jobId}</c> directories whose job will never resume: cancelled, completed (a crash after
/// publishing) or deleted. The handler cannot do it itself, because a pause and a cancel reach it as the same
/// cancellation, and a paused download must keep its bytes. Failed jobs keep theirs (a retry resumes) until the job
/// goes. Runs at start and on the cleanup interval (Kiln:Retention:CleanupIntervalSeconds).
/// </summary>
internal sealed class FetchSweeper(
    NpgsqlDataSource dataSource, BlobStore blobs, IOptions<RetentionOptions> retention, TimeProvider time, ILogger<FetchSweeper> logger) : BackgroundService
{
    private const string LiveSql = """
        select id from jobs where id = any(@ids) and state not in ('completed', 'cancelled')
        """;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(retention.Value.CleanupIntervalSeconds), time);
        do
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
                logger.LogWarning(e, "Sweeping fetch directories failed; will try again");
            }
        }
        while (await TimerTicks.NextAsync(timer, stoppingToken));
    }

    /// <summary>Deletes the directories of jobs that will not resume; returns how many.</summary>
    public async Task<int> SweepAsync(CancellationToken ct)
    {
        var root = Path.Combine(blobs.Root, "tmp", "fetch");
        if (!Directory.Exists(root))
        {
            return 0;
        }

        var found = Directory.EnumerateDirectories(root)
            .Select(d => (Path: d, Id: Guid.TryParseExact(Path.GetFileName(d), "N", out var id) ? id : (Guid?)null))
            .Where(d => d.Id is not null)
            .ToList();
        if (found.Count == 0)
        {
            return 0;
        }

        var live = new HashSet<Guid>();
        await using (var cmd = dataSource.CreateCommand(LiveSql))
        {
            cmd.Parameters.AddWithValue("ids", found.Select(d => d.Id!.Value).ToArray());
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                live.Add(reader.GetGuid(0));
            }
        }

        var removed = 0;
        foreach (var (path, id) in found.Where(d => !live.Contains(d.Id!.Value)))
        {
            DirectDownloader.Forget(path);
            logger.LogInformation("Removed the fetch directory of job {JobId}, which will not resume", id);
            removed++;
        }

        return removed;
    }
}
