using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class QueueStatsTests : HandLeasedQueueTests
{
    [Fact]
    public async Task Stats_count_the_jobs_of_a_queue_by_state()
    {
        var dispatcher = Server.Get<IJobDispatcher>();
        var toRun = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            toRun.Add(await Server.EnqueueAsync(priority: 1));
        }

        var leases = (await Server.LeaseAsync(3)).Jobs;
        Assert.True(await dispatcher.CompleteAsync(new CompletionReport(leases[0].JobId, leases[0].LeaseId), CancellationToken.None));
        Assert.True(await dispatcher.FailAsync(new FailureReport(leases[1].JobId, leases[1].LeaseId, "x", "y", Retryable: false), CancellationToken.None));
        var waiting = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            waiting.Add(await Server.EnqueueAsync());
        }

        await Server.EnqueueAsync(runAt: DateTimeOffset.UtcNow.AddHours(1));
        await Server.EnqueueAsync(parentId: waiting[0]);
        await Server.Get<JobCommands>().PauseAsync(waiting[3], null, CancellationToken.None);
        await Server.EnqueueAsync(TestKinds.Other);

        var stats = await Server.Admin.GetFromJsonAsync<JsonObject>("/api/queues/test");

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
        await Server.EnqueueAsync();
        await Server.EnqueueAsync(TestKinds.Other);
        Assert.True(await Server.Get<QueueStore>().SetPausedAsync(TestKinds.Queue, true, CancellationToken.None));

        var all = await Server.Admin.GetFromJsonAsync<JsonArray>("/api/queues");

        var byName = all!.ToDictionary(q => q!["name"]!.GetValue<string>(), q => q!.AsObject());
        Assert.True(byName["test"]["paused"]!.GetValue<bool>());
        Assert.False(byName["other"]["paused"]!.GetValue<bool>());
        Assert.Equal(1, byName["other"]["waiting"]!.GetValue<long>() + byName["other"]["active"]!.GetValue<long>() + byName["other"]["completed"]!.GetValue<long>());
    }
}
