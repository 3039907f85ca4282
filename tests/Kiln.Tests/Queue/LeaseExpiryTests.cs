using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

/// <summary>A fake worker leases by hand and then renews, reports or goes silent; LeaseSeconds is 2.</summary>
public sealed class LeaseExpiryTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;
    private IJobDispatcher _dispatcher = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:test"] = "0",
            ["Kiln:Queue:LeaseSeconds"] = "2",
        });
        _dispatcher = _server.Get<IJobDispatcher>();
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task An_expired_lease_puts_the_job_back_in_the_queue_and_counts_the_attempt()
    {
        var id = await _server.EnqueueAsync();
        var first = Assert.Single((await _server.LeaseAsync(1)).Jobs);

        var job = await _server.WaitForStateAsync(id, "queued");

        Assert.Equal(1, job.Attempts);
        Assert.Equal("lease_expired", job.ErrorCode);
        Assert.Null(job.LeaseOwner);
        Assert.Null(job.LeaseExpiresAt);
        var second = Assert.Single((await _server.LeaseAsync(1)).Jobs);
        Assert.Equal(2, second.Attempt);
        Assert.NotEqual(first.LeaseId, second.LeaseId);
    }

    [Fact]
    public async Task A_stale_attempt_failing_or_releasing_leaves_the_current_lease_registered()
    {
        var id = await _server.EnqueueAsync();
        var stale = Assert.Single((await _server.LeaseAsync(1)).Jobs);
        await _server.WaitForStateAsync(id, "queued");
        var current = Assert.Single((await _server.LeaseAsync(1)).Jobs);

        // The first attempt, still winding down, reports its end after its lease expired.
        Assert.False(await _dispatcher.FailAsync(new FailureReport(id, stale.LeaseId, "late", "too late"), CancellationToken.None));
        Assert.False(await _dispatcher.ReleaseAsync(id, stale.LeaseId, CancellationToken.None));

        // The current attempt still holds its lease here: its progress is taken, not refused as unknown.
        Assert.True(await _dispatcher.ReportProgressAsync(new ProgressReport(id, current.LeaseId, 10, "working"), CancellationToken.None));
        var job = await _server.JobAsync(id);
        Assert.Equal("running", job.State);
        Assert.Equal(2, job.Attempts);
        Assert.True(await _dispatcher.CompleteAsync(new CompletionReport(id, current.LeaseId), CancellationToken.None));
        Assert.Equal("completed", (await _server.JobAsync(id)).State);
    }

    [Fact]
    public async Task A_job_whose_last_attempt_loses_its_lease_fails()
    {
        var id = await _server.EnqueueAsync(maxAttempts: 1);
        Assert.Single((await _server.LeaseAsync(1)).Jobs);

        var job = await _server.WaitForStateAsync(id, "failed");

        Assert.Equal("lease_expired", job.ErrorCode);
        Assert.NotNull(job.FinishedAt);
    }

    [Fact]
    public async Task Progress_renews_the_lease()
    {
        var id = await _server.EnqueueAsync();
        var lease = Assert.Single((await _server.LeaseAsync(1)).Jobs);

        for (var i = 1; i <= 10; i++)
        {
            Assert.True(await _dispatcher.ReportProgressAsync(new ProgressReport(id, lease.LeaseId, i * 5, "working"), CancellationToken.None));
            // Real time must pass (3 s in all, past the 2 s lease): the database's clock expires leases, so no fake
            // clock reaches it. A slower machine only lengthens the gaps, which makes the test stricter, not flaky.
            await Task.Delay(300);
        }

        var job = await _server.JobAsync(id);
        Assert.Equal("running", job.State);
        Assert.Equal(1, job.Attempts);
        Assert.InRange(job.Progress, 40, 50);
        Assert.Equal("working", job.Stage);
        Assert.True(await _dispatcher.CompleteAsync(new CompletionReport(id, lease.LeaseId), CancellationToken.None));
        Assert.Equal("completed", (await _server.JobAsync(id)).State);
    }

    [Fact]
    public async Task A_heartbeat_renews_the_lease()
    {
        var id = await _server.EnqueueAsync();
        var lease = Assert.Single((await _server.LeaseAsync(1)).Jobs);

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(1, await _dispatcher.HeartbeatAsync("fake-worker", [lease.LeaseId], CancellationToken.None));
            // Real time past the 2 s lease, as above.
            await Task.Delay(300);
        }

        Assert.Equal("running", (await _server.JobAsync(id)).State);
        Assert.Equal(0, await _dispatcher.HeartbeatAsync("another-worker", [lease.LeaseId], CancellationToken.None));
    }

    [Fact]
    public async Task Reports_under_an_expired_lease_are_refused()
    {
        var id = await _server.EnqueueAsync();
        var lease = Assert.Single((await _server.LeaseAsync(1)).Jobs);
        await _server.WaitForStateAsync(id, "queued");

        Assert.False(await _dispatcher.ReportProgressAsync(new ProgressReport(id, lease.LeaseId, 50), CancellationToken.None));
        Assert.False(await _dispatcher.CompleteAsync(new CompletionReport(id, lease.LeaseId), CancellationToken.None));
        Assert.False(await _dispatcher.FailAsync(new FailureReport(id, lease.LeaseId, "late", "too late"), CancellationToken.None));
        Assert.Equal(0, await _dispatcher.HeartbeatAsync("fake-worker", [lease.LeaseId], CancellationToken.None));
        var job = await _server.JobAsync(id);
        Assert.Equal("queued", job.State);
        Assert.Equal("lease_expired", job.ErrorCode);
    }

    [Fact]
    public async Task A_report_with_a_forged_lease_id_is_refused()
    {
        var id = await _server.EnqueueAsync();
        Assert.Single((await _server.LeaseAsync(1)).Jobs);

        Assert.False(await _dispatcher.ReportProgressAsync(new ProgressReport(id, Guid.NewGuid(), 50), CancellationToken.None));
        Assert.False(await _dispatcher.CompleteAsync(new CompletionReport(id, Guid.NewGuid()), CancellationToken.None));
        Assert.Equal("running", (await _server.JobAsync(id)).State);
    }
}
