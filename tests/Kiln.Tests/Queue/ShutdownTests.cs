using System.Diagnostics;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class ShutdownTests : IAsyncDisposable
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
    public async Task Shutdown_stops_leasing_and_lets_running_jobs_finish()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:test"] = "1",
            ["Kiln:Workers:ShutdownTimeoutSeconds"] = "10",
        });
        var running = await _server.EnqueueAsync(parameters: new() { ["sleepMs"] = 800 }, priority: 1);
        var next = await _server.EnqueueAsync(priority: 20);
        await _recorder.StartedAsync(running);

        await _server.StopAsync();

        var finished = await _server.JobAsync(running);
        Assert.Equal("completed", finished.State);
        Assert.Equal(1, finished.Attempts);
        var waiting = await _server.JobAsync(next);
        Assert.Equal("queued", waiting.State);
        Assert.Equal(0, waiting.Attempts);
        Assert.Empty(_recorder.RunsOf(next));
    }

    [Fact]
    public async Task Jobs_still_running_at_the_timeout_are_released_without_counting_the_attempt()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:ShutdownTimeoutSeconds"] = "0.5" });
        var id = await _server.EnqueueAsync(parameters: new() { ["block"] = true });
        var run = await _recorder.StartedAsync(id);

        var stopping = Stopwatch.GetTimestamp();
        await _server.StopAsync();

        // A lower bound only (the stop waited for the timeout); how long past it depends on the machine's load.
        Assert.True(QueueServer.Seconds(stopping, Stopwatch.GetTimestamp()) >= 0.4, "the stop did not wait for the shutdown timeout");
        Assert.True(run.Cancelled.Task.IsCompleted, "the handler was not told to stop");
        var job = await _server.JobAsync(id);
        Assert.Equal("queued", job.State);
        Assert.Equal(0, job.Attempts);
        Assert.Null(job.LeaseOwner);
        Assert.Null(job.LeaseExpiresAt);
    }

    [Fact]
    public async Task Leases_stay_alive_while_running_jobs_finish_during_shutdown()
    {
        // The job outlives two leases, so it completes only if heartbeats keep renewing during the grace period. A
        // 2 s lease once expired on a loaded CI machine (three heartbeats in a row were late), hence 3 s.
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Queue:LeaseSeconds"] = "3",
            ["Kiln:Workers:ShutdownTimeoutSeconds"] = "15",
        });
        var id = await _server.EnqueueAsync(parameters: new() { ["sleepMs"] = 6500 });
        var run = await _recorder.StartedAsync(id);

        await _server.StopAsync();

        Assert.Equal("ok", await run.Ended.Task);
        var job = await _server.JobAsync(id);
        Assert.Equal("completed", job.State);
        Assert.Equal(1, job.Attempts);
    }
}
