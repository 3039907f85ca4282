using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class QueueStatsTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "0" });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Stats_count_the_jobs_of_a_queue_by_state()
    {
        var dispatcher = _server.Get<IJobDispatcher>();
        var toRun = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            toRun.Add(await _server.EnqueueAsync(priority: 1));
        }

        var leases = (await _server.LeaseAsync(3)).Jobs;
        Assert.True(await dispatcher.CompleteAsync(new CompletionReport(leases[0].JobId, leases[0].LeaseId), CancellationToken.None));
        Assert.True(await dispatcher.FailAsync(new FailureReport(leases[1].JobId, leases[1].LeaseId, "x", "y", Retryable: false), CancellationToken.None));
        var waiting = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            waiting.Add(await _server.EnqueueAsync());
        }

        await _server.EnqueueAsync(runAt: DateTimeOffset.UtcNow.AddHours(1));
        await _server.EnqueueAsync(parentId: waiting[0]);
        await _server.Get<JobCommands>().PauseAsync(waiting[3], null, CancellationToken.None);
        await _server.EnqueueAsync(TestKinds.Other);

        var stats = await _server.Admin.GetFromJsonAsync<JsonObject>("/api/queues/test");

        Assert.Equal(3, stats!["waiting"]!.GetValue<long>());
        Assert.Equal(1, stats["active"]!.GetValue<long>());
        Assert.Equal(1, stats["completed"]!.GetValue<long>());
        Assert.Equal(1, stats["failed"]!.GetValue<long>());
        Assert.Equal(1, stats["delayed"]!.GetValue<long>());
        Assert.Equal(1, stats["pausedJobs"]!.GetValue<long>());
        Assert.Equal(1, stats["waitingChildren"]!.GetValue<long>());
        Assert.False(stats["paused"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Stats_show_a_paused_queue_and_list_every_queue()
    {
        await _server.EnqueueAsync();
        await _server.EnqueueAsync(TestKinds.Other);
        Assert.True(await _server.Get<QueueStore>().SetPausedAsync(TestKinds.Queue, true, CancellationToken.None));

        var all = await _server.Admin.GetFromJsonAsync<JsonArray>("/api/queues");

        var byName = all!.ToDictionary(q => q!["name"]!.GetValue<string>(), q => q!.AsObject());
        Assert.True(byName["test"]["paused"]!.GetValue<bool>());
        Assert.False(byName["other"]["paused"]!.GetValue<bool>());
        Assert.Equal(1, byName["other"]["waiting"]!.GetValue<long>() + byName["other"]["active"]!.GetValue<long>() + byName["other"]["completed"]!.GetValue<long>());
    }
}
