using Kiln.Tests.Infrastructure;
using Kiln.Tests.Queue;

namespace Kiln.Tests.Storage;

public sealed class PeriodicCleanupTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync(new Dictionary<string, string?>
    {
        ["Kiln:Retention:CleanupIntervalSeconds"] = "1",
        ["Kiln:Retention:OrphanTempMinutes"] = "30",
    });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Abandoned_uploads_and_work_directories_of_unknown_jobs_are_swept_while_the_server_runs()
    {
        // Made after start, so only the periodic round can remove them.
        var uploads = Path.Combine(_server.DataDirectory, "tmp", "uploads");
        var abandoned = Path.Combine(uploads, Guid.NewGuid().ToString("N") + ".part");
        await File.WriteAllBytesAsync(abandoned, new byte[1000], TestContext.Current.CancellationToken);
        File.SetLastWriteTimeUtc(abandoned, DateTime.UtcNow.AddHours(-2));
        var live = Path.Combine(uploads, Guid.NewGuid().ToString("N") + ".part");
        await File.WriteAllBytesAsync(live, new byte[1000], TestContext.Current.CancellationToken);
        var killedWorkersDirectory = Path.Combine(_server.DataDirectory, "tmp", "jobs", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(killedWorkersDirectory, "work"));
        await File.WriteAllBytesAsync(Path.Combine(killedWorkersDirectory, "work", "segment.ts"), new byte[1000], TestContext.Current.CancellationToken);

        await Poll.UntilAsync(() => Task.FromResult(!File.Exists(abandoned) && !Directory.Exists(killedWorkersDirectory)), "the periodic cleanup", 60);

        // A .part file still being written (recently changed) is a live upload: kept.
        Assert.True(File.Exists(live));
    }
}
