using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class DerivativePublishTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await QueueServer.StartAsync(_recorder);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_completed_job_publishes_its_outputs_and_the_rows_point_at_the_files()
    {
        var asset = await _server.UploadAssetAsync();
        var id = await _server.EnqueueAsync(parameters: Outputs("THUMBNAIL", "MEDIUM"), assetId: asset);

        await _server.WaitForStateAsync(id, "completed");

        var rows = await _server.DerivativesAsync(asset);
        Assert.Equal(["MEDIUM", "THUMBNAIL"], rows.Keys.Order(StringComparer.Ordinal));
        var lease = Assert.Single(_recorder.RunsOf(id)).LeaseId;
        foreach (var (type, (path, size, jobId)) in rows)
        {
            var full = Path.Combine(_server.DataDirectory, path);
            Assert.Equal($"{id}:{lease}:{type}", await File.ReadAllTextAsync(full));
            Assert.Equal(new FileInfo(full).Length, size);
            Assert.Equal(id, jobId);
            Assert.StartsWith(Path.Combine("derivatives", asset.ToString("N"), id.ToString("N")), path, StringComparison.Ordinal);
        }

        Assert.Equal(2, AssetKit.DerivativeFiles(_server.DataDirectory, asset).Count);
        Assert.False(AssetKit.HasJobTemp(_server.DataDirectory, id), "the job's temporary directory was left behind");
    }

    [Fact]
    public async Task A_publish_that_fails_fails_the_attempt_at_once_instead_of_holding_the_lease()
    {
        var asset = await _server.UploadAssetAsync();
        // A file where the asset's derivative directory has to go: the rename into place cannot happen.
        var derivatives = Path.Combine(_server.DataDirectory, "derivatives");
        Directory.CreateDirectory(derivatives);
        await File.WriteAllTextAsync(Path.Combine(derivatives, asset.ToString("N")), "in the way");

        var id = await _server.EnqueueAsync(parameters: Outputs("THUMBNAIL"), assetId: asset, maxAttempts: 2);

        // Well inside the 30 s lease: the attempts are given up, not left running until the lease expires.
        var job = await _server.WaitForStateAsync(id, "failed");
        Assert.Equal("publish_failed", job.ErrorCode);
        Assert.Equal(2, job.Attempts);
        Assert.Empty(await _server.DerivativesAsync(asset));
    }

    [Fact]
    public async Task A_rerun_replaces_the_derivatives_and_deletes_the_old_files()
    {
        var asset = await _server.UploadAssetAsync();
        var first = await _server.EnqueueAsync(parameters: Outputs("THUMBNAIL", "MEDIUM"), assetId: asset);
        await _server.WaitForStateAsync(first, "completed");
        var before = await _server.DerivativesAsync(asset);

        var second = await _server.EnqueueAsync(parameters: Outputs("THUMBNAIL", "MEDIUM"), assetId: asset);
        await _server.WaitForStateAsync(second, "completed");

        var after = await _server.DerivativesAsync(asset);
        Assert.Equal(2, after.Count);
        Assert.All(after.Values, row => Assert.Equal(second, row.JobId));
        // The old files go once the new rows have committed, just after the job shows as completed.
        await Poll.UntilAsync(
            () => Task.FromResult(before.Values.All(row => !File.Exists(Path.Combine(_server.DataDirectory, row.Path)))),
            "the first run's files to be deleted");
        Assert.Equal(after.Values.Select(r => r.Path).Order(StringComparer.Ordinal), AssetKit.DerivativeFiles(_server.DataDirectory, asset));
        Assert.False(Directory.Exists(Path.GetDirectoryName(Path.Combine(_server.DataDirectory, before["THUMBNAIL"].Path))));
        Assert.Equal(2L, await _server.ScalarAsync("select count(*) from derivatives where asset_id = @a", ("a", asset)));
    }

    [Fact]
    public async Task A_partial_rerun_keeps_the_files_other_derivatives_still_use()
    {
        var asset = await _server.UploadAssetAsync();
        var first = await _server.EnqueueAsync(parameters: Outputs("THUMBNAIL", "MEDIUM"), assetId: asset);
        await _server.WaitForStateAsync(first, "completed");

        var second = await _server.EnqueueAsync(parameters: Outputs("THUMBNAIL"), assetId: asset);
        await _server.WaitForStateAsync(second, "completed");

        var rows = await _server.DerivativesAsync(asset);
        Assert.Equal(second, rows["THUMBNAIL"].JobId);
        Assert.Equal(first, rows["MEDIUM"].JobId);
        Assert.All(rows.Values, row => Assert.True(File.Exists(Path.Combine(_server.DataDirectory, row.Path)), $"{row.Path} is missing"));
    }

    [Fact]
    public async Task A_failed_job_publishes_nothing_and_leaves_no_temporary_files()
    {
        var asset = await _server.UploadAssetAsync();
        var parameters = Outputs("THUMBNAIL");
        parameters["fail"] = new JsonObject { ["retryable"] = false };
        var id = await _server.EnqueueAsync(parameters: parameters, assetId: asset);

        await _server.WaitForStateAsync(id, "failed");

        Assert.Empty(await _server.DerivativesAsync(asset));
        Assert.Empty(AssetKit.DerivativeFiles(_server.DataDirectory, asset));
        await Poll.UntilAsync(() => Task.FromResult(!AssetKit.HasJobTemp(_server.DataDirectory, id)), "the job's temporary directory to go");
    }

    [Fact]
    public async Task An_output_outside_the_staging_directory_fails_the_job_and_publishes_nothing()
    {
        var asset = await _server.UploadAssetAsync();
        var id = await _server.EnqueueAsync(parameters: new() { ["escape"] = true }, assetId: asset);

        var job = await _server.WaitForStateAsync(id, "failed");

        Assert.Equal("invalid_output", job.ErrorCode);
        Assert.Empty(await _server.DerivativesAsync(asset));
        Assert.Empty(AssetKit.DerivativeFiles(_server.DataDirectory, asset));
    }

    private static JsonObject Outputs(params string[] types) => new() { ["outputs"] = new JsonArray([.. types.Select(t => JsonValue.Create(t))]) };
}
