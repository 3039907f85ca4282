using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

/// <summary>Two servers in turn on one database and one data directory, as a restart would have them.</summary>
public sealed class RestartSafetyTests : IAsyncLifetime
{
    private readonly List<KilnServer> _servers = [];
    private TestDatabase _database = null!;
    private string _data = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-test-restart-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }

        await _database.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task A_server_stopped_mid_job_publishes_nothing_and_the_job_runs_again_after_restart()
    {
        var before = await StartAsync(new JobRecorder(), new() { ["Kiln:Workers:ShutdownTimeoutSeconds"] = "0.3" });
        var asset = await before.UploadAssetAsync();
        var id = await before.EnqueueAsync(parameters: new() { ["outputs"] = new JsonArray("THUMBNAIL", "MEDIUM"), ["block"] = true }, assetId: asset);
        await before.Get<JobRecorder>().StartedAsync(id);

        await before.StopAsync();

        var stopped = await before.JobAsync(id);
        Assert.Equal("queued", stopped.State);
        Assert.Equal(0, stopped.Attempts);
        Assert.Empty(await before.DerivativesAsync(asset));
        Assert.Empty(AssetKit.DerivativeFiles(_data, asset));
        Assert.False(AssetKit.HasJobTemp(_data, id), "the stopped attempt left its temporary files");

        var afterRecorder = new JobRecorder { OpenGates = true };
        var after = await StartAsync(afterRecorder, []);
        var job = await after.WaitForStateAsync(id, "completed");

        Assert.Equal(1, job.Attempts);
        var lease = Assert.Single(afterRecorder.RunsOf(id)).LeaseId;
        var rows = await after.DerivativesAsync(asset);
        Assert.Equal(2, rows.Count);
        Assert.Equal($"{id}:{lease}:THUMBNAIL", await File.ReadAllTextAsync(Path.Combine(_data, rows["THUMBNAIL"].Path)));
        Assert.Equal(2, AssetKit.DerivativeFiles(_data, asset).Count);
    }

    [Fact]
    public async Task A_worker_that_dies_mid_job_publishes_nothing_and_the_job_runs_again_once_its_lease_expires()
    {
        var crashed = await StartAsync(new JobRecorder(), new()
        {
            ["Kiln:Workers:Slots:test"] = "0",
            ["Kiln:Queue:LeaseSeconds"] = "1",
            // This node must not sweep the lease itself before it goes: the survivor does.
            ["Kiln:Queue:MaintenanceIntervalSeconds"] = "60",
        });
        var asset = await crashed.UploadAssetAsync();
        var id = await crashed.EnqueueAsync(parameters: new() { ["outputs"] = new JsonArray("THUMBNAIL") }, assetId: asset);
        Assert.Single((await crashed.LeaseAsync(1, worker: "doomed-worker")).Jobs);
        // The worker never reports again; this node goes away without releasing what the worker held.
        await crashed.StopAsync();
        Assert.Equal("running", (await crashed.JobAsync(id)).State);

        var recorder = new JobRecorder();
        // The dead worker's lease (1 s, from the first node) expires by its row; the survivor's own leases stay long.
        var survivor = await StartAsync(recorder, []);
        var job = await survivor.WaitForStateAsync(id, "completed");

        Assert.Equal(2, job.Attempts);
        Assert.Equal([2], recorder.RunsOf(id).Select(r => r.Attempt));
        var row = Assert.Single(await survivor.DerivativesAsync(asset));
        Assert.Equal(id, row.Value.JobId);
        Assert.Single(AssetKit.DerivativeFiles(_data, asset));
    }

    private async Task<KilnServer> StartAsync(JobRecorder recorder, Dictionary<string, string?> settings)
    {
        var server = await QueueServer.StartAsync(recorder, settings, _database, _data);
        _servers.Add(server);
        return server;
    }
}
