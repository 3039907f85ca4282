using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// The rest of issue 9's "time from an injected TimeProvider": enqueueing (<see cref="JobInserts"/>, both the INSERT and
/// the COPY path), queue rate windows (<see cref="QueueBudget"/>) and the attempt history (migration 008) take their
/// time from the clock, not from PostgreSQL's now(). The clock runs a day ahead of the real one, so a value stamped by
/// the database is a day off and cannot pass for the fake one; the server's own sweeps (real clock, long leases) never
/// act on these jobs.
/// </summary>
public sealed class EnqueueClockTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow.AddDays(1));
    private KilnServer _server = null!;
    private JobStore _jobs = null!;
    private JobLeaser _leaser = null!;
    private JobDispatcher _dispatcher = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:test"] = "0",
            ["Kiln:Queue:LeaseSeconds"] = "600",
            ["Kiln:Queue:StallTimeoutSeconds"] = "3600",
            ["Kiln:Queue:BackoffBaseSeconds"] = "10",
        });
        var options = _server.Get<IOptions<QueueOptions>>();
        var dataSource = _server.Get<NpgsqlDataSource>();
        _jobs = new JobStore(dataSource, _server.Get<JobReader>(), _server.Get<QueueWakeups>(), _server.Get<IJobEventSink>(), options, _clock);
        _leaser = new JobLeaser(dataSource, _server.Get<LeaseRegistry>(), _server.Get<IJobEventSink>(), _server.Get<KilnMetrics>(), options, _clock);
        _dispatcher = new JobDispatcher(
            dataSource, _leaser, _server.Get<LeaseRegistry>(), _server.Get<CompletionWriter>(), _server.Get<IJobEventSink>(), _server.Get<KilnMetrics>(), _server.Get<QueueWakeups>(), options, _clock);
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_job_enqueued_without_run_at_is_created_and_due_at_the_clocks_time()
    {
        var job = QueueServer.NewJob();
        await _jobs.EnqueueAsync([job], CancellationToken.None);

        var row = await _server.JobAsync(job.Id);
        Assert.Equal(_clock.GetUtcNow(), row.CreatedAt, TimeSpan.FromMilliseconds(1));
        Assert.Equal(_clock.GetUtcNow(), row.RunAt, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task A_bulk_enqueue_written_with_copy_is_stamped_by_the_clock_too()
    {
        var jobs = Enumerable.Range(0, 250).Select(_ => QueueServer.NewJob()).ToList();
        Assert.True(JobInserts.UseCopy(jobs));
        await _jobs.EnqueueAsync(jobs, CancellationToken.None);

        var first = await _server.JobAsync(jobs[0].Id);
        var last = await _server.JobAsync(jobs[^1].Id);
        Assert.Equal(_clock.GetUtcNow(), first.CreatedAt, TimeSpan.FromMilliseconds(1));
        Assert.Equal(_clock.GetUtcNow(), last.RunAt, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task A_child_of_a_missing_parent_fails_at_the_clocks_time()
    {
        var child = QueueServer.NewJob(parentId: Guid.CreateVersion7());
        await _jobs.EnqueueAsync([child], CancellationToken.None);

        var row = await _server.JobAsync(child.Id);
        Assert.Equal("failed", row.State);
        Assert.Equal("parent_missing", row.ErrorCode);
        Assert.Equal(_clock.GetUtcNow(), row.FinishedAt!.Value, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task A_rate_window_opens_and_ends_by_the_clock()
    {
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            var job = QueueServer.NewJob();
            await _jobs.EnqueueAsync([job], CancellationToken.None);
            ids.Add(job.Id);
        }

        Assert.True(await _server.Get<QueueStore>().UpdateAsync(TestKinds.Queue, new QueueSettings(null, 2, 60_000, null, null), CancellationToken.None));

        var opened = _clock.GetUtcNow();
        var started = (await LeaseAsync(3)).Jobs;
        Assert.Equal(2, started.Count);
        _clock.Advance(TimeSpan.FromSeconds(20));
        var full = await LeaseAsync(3);
        Assert.Empty(full.Jobs);
        // The window opened at the first lease on this clock, so it ends 60 s after it: 40 s from now.
        Assert.InRange(full.RetryAfter!.Value.TotalMilliseconds, 39_999, 40_001);

        _clock.Advance(TimeSpan.FromSeconds(41));
        var next = Assert.Single((await LeaseAsync(3)).Jobs);
        Assert.Equal(Assert.Single(ids.Except(started.Select(j => j.JobId))), next.JobId);
        Assert.Equal(opened.AddSeconds(61), (await _server.JobAsync(next.JobId)).StartedAt!.Value, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task An_attempts_history_row_starts_and_ends_at_the_clocks_times()
    {
        var job = QueueServer.NewJob(maxAttempts: 2);
        await _jobs.EnqueueAsync([job], CancellationToken.None);
        var leasedAt = _clock.GetUtcNow();
        var first = Assert.Single((await LeaseAsync(1)).Jobs);

        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.True(await _dispatcher.FailAsync(new FailureReport(job.Id, first.LeaseId, "flaky", "try again"), CancellationToken.None));

        var attempt = Assert.Single(await _server.Get<JobReader>().HistoryAsync(job.Id, CancellationToken.None));
        Assert.Equal("failed", attempt.Outcome);
        Assert.Equal(leasedAt, attempt.StartedAt, TimeSpan.FromMilliseconds(1));
        Assert.Equal(leasedAt.AddMinutes(5), attempt.FinishedAt!.Value, TimeSpan.FromMilliseconds(1));
    }

    private Task<LeaseResult> LeaseAsync(int max) =>
        _leaser.LeaseAsync(new LeaseRequest("fake-worker", TestKinds.Queue, [TestKinds.Run], max), CancellationToken.None);
}
