using System.Text.Json.Nodes;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class RetentionTests : IAsyncDisposable
{
    private readonly JobRecorder _recorder = new();
    private KilnServer? _server;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Pruning_keeps_the_newest_completed_and_failed_jobs_of_each_queue()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:test"] = "0",
            ["Kiln:Workers:Slots:other"] = "0",
        });
        var completed = new List<Guid>();
        var failed = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            completed.Add(await FinishAsync(TestKinds.Run, fail: false));
        }

        for (var i = 0; i < 5; i++)
        {
            failed.Add(await FinishAsync(TestKinds.Run, fail: true));
        }

        var otherQueue = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            otherQueue.Add(await FinishAsync(TestKinds.Other, fail: false));
        }

        var queued = await _server.EnqueueAsync();
        await _server.Get<QueueStore>().UpdateAsync(TestKinds.Queue, new QueueSettings(null, null, null, KeepCompleted: 5, KeepFailed: 2), CancellationToken.None);

        var deleted = await _server.Get<QueueMaintenance>().PruneAsync(CancellationToken.None);

        Assert.Equal(7 + 3, deleted);
        Assert.Equal(completed[^5..].Order(), await IdsAsync("test", "completed"));
        Assert.Equal(failed[^2..].Order(), await IdsAsync("test", "failed"));
        Assert.Equal(otherQueue.Order(), await IdsAsync("other", "completed"));
        Assert.Equal("queued", (await _server.JobAsync(queued)).State);
    }

    [Fact]
    public async Task Retention_never_removes_jobs_that_are_not_finished()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "0" });
        var queued = await _server.EnqueueAsync();
        var running = await _server.EnqueueAsync(priority: 1);
        Assert.Equal(running, Assert.Single((await _server.LeaseAsync(1)).Jobs).JobId);
        var waiting = await _server.EnqueueAsync(parentId: running);
        await _server.Get<QueueStore>().UpdateAsync(TestKinds.Queue, new QueueSettings(null, null, null, 0, 0), CancellationToken.None);

        Assert.Equal(0, await _server.Get<QueueMaintenance>().PruneAsync(CancellationToken.None));

        Assert.Equal("queued", (await _server.JobAsync(queued)).State);
        Assert.Equal("running", (await _server.JobAsync(running)).State);
        Assert.Equal("waiting", (await _server.JobAsync(waiting)).State);
    }

    [Fact]
    public async Task Retention_runs_by_itself_every_interval()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Queue:RetentionIntervalSeconds"] = "1" });
        // The server creates a row for every known queue at start, so set the retention rather than ensure it.
        await _server.Get<QueueStore>().EnsureAsync(TestKinds.Queue, 2, 1, CancellationToken.None);
        await _server.Get<QueueStore>().UpdateAsync(TestKinds.Queue, new QueueSettings(null, null, null, 2, 1), CancellationToken.None);
        // Two rounds: the first prune comes a few seconds after start whatever the interval; the second proves the
        // interval. Not waited for job by job: retention may prune a completed job before a poll sees it. Two rows
        // left, both completed, means every job enqueued so far completed and the rest were pruned.
        for (var round = 1; round <= 2; round++)
        {
            for (var i = 0; i < 5; i++)
            {
                await _server.EnqueueAsync();
            }

            await Poll.UntilAsync(
                async () => (string)(await _server.ScalarAsync(
                    "select count(*) || '/' || count(*) filter (where state = 'completed') from jobs where queue = 'test'"))! == "2/2",
                $"retention pruning the queue to 2 completed jobs (round {round})", timeoutSeconds: 30);
        }
    }

    [Fact]
    public async Task New_queues_keep_1000_completed_and_200_failed_jobs_by_default()
    {
        _server = await QueueServer.StartAsync(_recorder);
        await _server.EnqueueAsync();

        var stats = Assert.Single(await _server.Get<QueueStore>().StatsAsync(TestKinds.Queue, CancellationToken.None));

        Assert.Equal(1000, stats.KeepCompleted);
        Assert.Equal(200, stats.KeepFailed);
    }

    private async Task<Guid> FinishAsync(string kind, bool fail)
    {
        var server = _server!;
        var id = await server.EnqueueAsync(kind);
        var lease = Assert.Single((await server.LeaseAsync(1, kind: kind)).Jobs);
        var dispatcher = server.Get<IJobDispatcher>();
        Assert.True(fail
            ? await dispatcher.FailAsync(new FailureReport(id, lease.LeaseId, "broken", "no", Retryable: false), CancellationToken.None)
            : await dispatcher.CompleteAsync(new CompletionReport(id, lease.LeaseId, new JsonObject()), CancellationToken.None));
        return id;
    }

    private async Task<List<Guid>> IdsAsync(string queue, string state)
    {
        await using var cmd = _server!.Get<Npgsql.NpgsqlDataSource>().CreateCommand("select id from jobs where queue = @q and state = @s");
        cmd.Parameters.AddWithValue("q", queue);
        cmd.Parameters.AddWithValue("s", state);
        var ids = new List<Guid>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            ids.Add(r.GetGuid(0));
        }

        return [.. ids.Order()];
    }
}
