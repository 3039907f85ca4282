using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

/// <summary>
/// Stall timeout 1.5 s; leases stay alive through heartbeats, so only missing progress counts. The sweep runs every
/// second, so an abort is due 1.5–2.5 s after the start; only the lower bound is asserted (never aborted early): a CI
/// machine busy starting other test servers once took over 5 s, so how late is left to the generous waits.
/// </summary>
public sealed class StallTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Queue:StallTimeoutSeconds"] = "1.5",
            ["Kiln:Queue:BackoffBaseSeconds"] = "0.1",
        });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_job_without_progress_for_the_stall_timeout_is_aborted_and_retried()
    {
        var id = await _server.EnqueueAsync(parameters: new() { ["block"] = true });
        var first = await _recorder.StartedAsync(id);

        var cancelledAt = await first.Cancelled.Task.WaitAsync(Poll.DefaultTimeout);

        Assert.True(QueueServer.Seconds(first.StartedTicks, cancelledAt) >= 1.4, "aborted before the stall timeout");
        Assert.Equal("cancelled", await first.Ended.Task.WaitAsync(Poll.DefaultTimeout));
        _recorder.Release(id);
        var second = await _recorder.StartedAsync(id, attempt: 2);
        Assert.NotEqual(first.LeaseId, second.LeaseId);
        var job = await _server.WaitForStateAsync(id, "completed");
        Assert.Equal(2, job.Attempts);
    }

    [Fact]
    public async Task A_job_that_stalls_on_every_attempt_fails_as_stalled()
    {
        var id = await _server.EnqueueAsync(TestKinds.Run, new() { ["block"] = true });
        var first = await _recorder.StartedAsync(id);
        await first.Cancelled.Task.WaitAsync(Poll.DefaultTimeout);

        // Every attempt blocks, so every attempt stalls, and the last one fails the job.
        var second = await _recorder.StartedAsync(id, attempt: 2);
        Assert.True(QueueServer.Seconds(first.StartedTicks, second.StartedTicks) >= 1.4, "retried before the stall timeout");
        await second.Cancelled.Task.WaitAsync(Poll.DefaultTimeout);
        var third = await _recorder.StartedAsync(id, attempt: 3);
        await third.Cancelled.Task.WaitAsync(Poll.DefaultTimeout);

        var job = await _server.WaitForStateAsync(id, "failed");
        Assert.Equal("stalled", job.ErrorCode);
        Assert.Equal(3, job.Attempts);
    }

    [Fact]
    public async Task A_job_that_keeps_reporting_progress_is_not_stalled()
    {
        var id = await _server.EnqueueAsync(parameters: new() { ["block"] = true, ["progressMs"] = 150 });
        var run = await _recorder.StartedAsync(id);

        // Real time past the stall timeout is the behaviour under test (the sweep compares against the database's
        // clock); a slower machine only means more progress reports in between.
        await Task.Delay(3500);

        Assert.False(run.Cancelled.Task.IsCompleted, "the job was aborted although it reported progress");
        Assert.Equal("running", (await _server.JobAsync(id)).State);
        _recorder.Release(id);
        var job = await _server.WaitForStateAsync(id, "completed");
        Assert.Equal(1, job.Attempts);
    }

    [Fact]
    public async Task A_remote_worker_that_heartbeats_but_never_reports_progress_is_stalled()
    {
        await using var manual = await QueueServer.StartAsync(new JobRecorder(), new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:other"] = "0",
            ["Kiln:Queue:StallTimeoutSeconds"] = "1",
        });
        var id = await manual.EnqueueAsync(TestKinds.Other);
        var lease = Assert.Single((await manual.LeaseAsync(1, kind: TestKinds.Other)).Jobs);
        var dispatcher = manual.Get<IJobDispatcher>();

        // Heartbeats keep the lease alive while the wait lasts; only the missing progress can end the attempt.
        var job = await Poll.UntilAsync(
            async () =>
            {
                await dispatcher.HeartbeatAsync("fake-worker", [lease.LeaseId], CancellationToken.None);
                return await manual.JobAsync(id);
            },
            j => j.State != "running",
            "the stalled job to leave running");

        Assert.Equal("queued", job.State);
        Assert.Equal("stalled", job.ErrorCode);
        Assert.Equal(1, job.Attempts);
    }
}
