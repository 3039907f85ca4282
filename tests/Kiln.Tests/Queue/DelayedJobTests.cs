using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class DelayedJobTests : IAsyncDisposable
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
    public async Task A_delayed_job_is_not_leased_before_its_run_at_and_the_lease_says_when_to_look_again()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "0" });
        var runAt = DateTimeOffset.UtcNow.AddSeconds(1.5);
        var id = await _server.EnqueueAsync(runAt: runAt);

        var early = await _server.LeaseAsync(5);
        Assert.Empty(early.Jobs);
        Assert.NotNull(early.RetryAfter);
        Assert.InRange(early.RetryAfter.Value.TotalSeconds, 0.5, 1.6);

        var leased = await WaitForLeaseAsync();
        Assert.Equal(id, leased);
        Assert.True(DateTimeOffset.UtcNow >= runAt.AddMilliseconds(-50), "leased before run_at");
    }

    [Fact]
    public async Task An_idle_worker_starts_a_delayed_job_on_time_without_waiting_for_the_idle_poll()
    {
        // The longest idle poll (600 s) outlasts the wait for the start, so only the worker's own timer for run_at can
        // start the job in time; how soon after run_at depends on the machine's load, so it is not asserted.
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Queue:IdlePollSeconds"] = "600" });
        var runAt = DateTimeOffset.UtcNow.AddSeconds(1);
        var id = await _server.EnqueueAsync(runAt: runAt);

        var run = await _recorder.StartedAsync(id);

        Assert.True(run.StartedAt >= runAt.AddMilliseconds(-50), $"started {(runAt - run.StartedAt).TotalMilliseconds:0} ms before run_at");
        await _server.WaitForStateAsync(id, "completed");
    }

    private async Task<Guid> WaitForLeaseAsync() =>
        (await Poll.UntilAsync(() => _server!.LeaseAsync(5), lease => lease.Jobs.Count == 1, "the delayed job to be leased")).Jobs[0].JobId;
}
