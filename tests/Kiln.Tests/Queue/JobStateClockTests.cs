using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// The time-based transitions of <see cref="JobStates"/> — lease expiry, stalls, retry backoff, renewals — decided by
/// the injected <see cref="TimeProvider"/>: a leaser, dispatcher and sweep built here on a <see cref="FakeTimeProvider"/>
/// moved by hand, against the server's database. The server's own ones run on the real clock with leases and stalls
/// far longer than a test, so they never act on these jobs.
/// </summary>
public sealed class JobStateClockTests : IAsyncLifetime
{
    private const int LeaseSeconds = 600;
    private const int StallSeconds = 3600;
    private const double BackoffSeconds = 10;

    private readonly JobRecorder _recorder = new();
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow.AddDays(1));
    private KilnServer _server = null!;
    private JobLeaser _leaser = null!;
    private JobDispatcher _dispatcher = null!;
    private QueueMaintenance _sweep = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:test"] = "0",
            ["Kiln:Queue:LeaseSeconds"] = LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Kiln:Queue:StallTimeoutSeconds"] = StallSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Kiln:Queue:BackoffBaseSeconds"] = BackoffSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var options = _server.Get<IOptions<QueueOptions>>();
        var dataSource = _server.Get<NpgsqlDataSource>();
        _leaser = new JobLeaser(dataSource, _server.Get<LeaseRegistry>(), _server.Get<IJobEventSink>(), _server.Get<KilnMetrics>(), options, _clock);
        _dispatcher = new JobDispatcher(
            dataSource, _leaser, _server.Get<LeaseRegistry>(), _server.Get<CompletionWriter>(), _server.Get<IJobEventSink>(), _server.Get<KilnMetrics>(), _server.Get<QueueWakeups>(), options, _clock);
        _sweep = new QueueMaintenance(
            dataSource, _server.Get<JobStopper>(), _server.Get<IJobEventSink>(), _server.Get<KilnMetrics>(), _server.Get<QueueWakeups>(), options, _clock,
            NullLogger<QueueMaintenance>.Instance);
    }

    public async ValueTask DisposeAsync()
    {
        _sweep.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_lease_expires_when_the_clock_passes_its_expiry_and_the_attempt_is_counted()
    {
        var id = await _server.EnqueueAsync();
        var lease = Assert.Single((await LeaseAsync()).Jobs);
        Assert.Equal(_clock.GetUtcNow().AddSeconds(LeaseSeconds), lease.LeaseExpiresAt, TimeSpan.FromMilliseconds(1));

        _clock.Advance(TimeSpan.FromSeconds(LeaseSeconds - 1));
        Assert.Equal(0, await _sweep.ExpireAsync(CancellationToken.None));
        Assert.Equal("running", (await _server.JobAsync(id)).State);

        _clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, await _sweep.ExpireAsync(CancellationToken.None));

        var job = await _server.JobAsync(id);
        Assert.Equal("queued", job.State);
        Assert.Equal(1, job.Attempts);
        Assert.Equal("lease_expired", job.ErrorCode);
        Assert.Null(job.LeaseExpiresAt);
        var second = Assert.Single((await LeaseAsync()).Jobs);
        Assert.Equal(2, second.Attempt);
    }

    [Fact]
    public async Task A_heartbeat_renews_the_lease_from_the_clock_so_it_does_not_expire()
    {
        var id = await _server.EnqueueAsync();
        var lease = Assert.Single((await LeaseAsync()).Jobs);

        _clock.Advance(TimeSpan.FromSeconds(LeaseSeconds - 10));
        Assert.Equal(1, await _dispatcher.HeartbeatAsync("fake-worker", [lease.LeaseId], CancellationToken.None));
        _clock.Advance(TimeSpan.FromSeconds(20));

        Assert.Equal(0, await _sweep.ExpireAsync(CancellationToken.None));
        var job = await _server.JobAsync(id);
        Assert.Equal("running", job.State);
        Assert.Equal(_clock.GetUtcNow().AddSeconds(LeaseSeconds - 20), job.LeaseExpiresAt!.Value, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task A_job_without_progress_for_the_stall_timeout_is_retried_as_stalled()
    {
        var id = await _server.EnqueueAsync();
        var lease = Assert.Single((await LeaseAsync()).Jobs);

        // Heartbeats keep the lease alive; only progress would keep the job from stalling.
        for (var waited = 0; waited <= StallSeconds; waited += LeaseSeconds / 2)
        {
            Assert.Equal(1, await _dispatcher.HeartbeatAsync("fake-worker", [lease.LeaseId], CancellationToken.None));
            Assert.Equal(0, await _sweep.ExpireAsync(CancellationToken.None));
            _clock.Advance(TimeSpan.FromSeconds(LeaseSeconds / 2));
        }

        Assert.Equal(1, await _dispatcher.HeartbeatAsync("fake-worker", [lease.LeaseId], CancellationToken.None));
        Assert.Equal(1, await _sweep.ExpireAsync(CancellationToken.None));
        var job = await _server.JobAsync(id);
        Assert.Equal("queued", job.State);
        Assert.Equal("stalled", job.ErrorCode);
    }

    [Fact]
    public async Task A_retryable_failure_waits_a_doubling_backoff_counted_from_the_clock()
    {
        var id = await _server.EnqueueAsync(maxAttempts: 3);
        var first = Assert.Single((await LeaseAsync()).Jobs);
        var failedAt = _clock.GetUtcNow();
        Assert.True(await _dispatcher.FailAsync(new FailureReport(id, first.LeaseId, "flaky", "try again"), CancellationToken.None));

        var job = await _server.JobAsync(id);
        Assert.Equal("queued", job.State);
        Assert.InRange(job.RunAt, failedAt.AddSeconds(BackoffSeconds * 0.9), failedAt.AddSeconds(BackoffSeconds * 1.1));

        // Not due before its run_at on this clock, whatever the real time; due after it.
        _clock.Advance(TimeSpan.FromSeconds(BackoffSeconds * 0.85));
        var early = await LeaseAsync();
        Assert.Empty(early.Jobs);
        Assert.NotNull(early.RetryAfter);
        Assert.InRange(early.RetryAfter.Value.TotalSeconds, BackoffSeconds * 0.04, BackoffSeconds * 0.26);
        _clock.Advance(TimeSpan.FromSeconds(BackoffSeconds * 0.3));
        var second = Assert.Single((await LeaseAsync()).Jobs);
        Assert.Equal(2, second.Attempt);

        failedAt = _clock.GetUtcNow();
        Assert.True(await _dispatcher.FailAsync(new FailureReport(id, second.LeaseId, "flaky", "try again"), CancellationToken.None));
        job = await _server.JobAsync(id);
        Assert.InRange(job.RunAt, failedAt.AddSeconds(2 * BackoffSeconds * 0.9), failedAt.AddSeconds(2 * BackoffSeconds * 1.1));

        _clock.Advance(TimeSpan.FromSeconds(2 * BackoffSeconds * 1.1));
        var third = Assert.Single((await LeaseAsync()).Jobs);
        Assert.True(await _dispatcher.FailAsync(new FailureReport(id, third.LeaseId, "flaky", "out of attempts"), CancellationToken.None));
        job = await _server.JobAsync(id);
        Assert.Equal("failed", job.State);
        Assert.Equal(_clock.GetUtcNow(), job.FinishedAt!.Value, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task Cancel_and_retry_by_request_take_their_times_from_the_clock()
    {
        var commands = new JobCommands(
            _server.Get<NpgsqlDataSource>(), _server.Get<JobStopper>(), _server.Get<JobKindCatalog>(), _server.Get<QueueWakeups>(),
            _server.Get<IJobEventSink>(), _clock);
        var id = await _server.EnqueueAsync();
        Assert.Single((await LeaseAsync()).Jobs);

        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(CommandOutcome.Done, (await commands.CancelAsync(id, null, CancellationToken.None)).Outcome);
        var cancelled = await _server.JobAsync(id);
        Assert.Equal("cancelled", cancelled.State);
        Assert.Equal(_clock.GetUtcNow(), cancelled.FinishedAt!.Value, TimeSpan.FromMilliseconds(1));

        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(CommandOutcome.Done, (await commands.RetryAsync(id, null, CancellationToken.None)).Outcome);
        var retried = await _server.JobAsync(id);
        Assert.Equal("queued", retried.State);
        Assert.Equal(_clock.GetUtcNow(), retried.RunAt, TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, retried.Attempts);
    }

    [Fact]
    public async Task A_rate_window_opens_at_the_first_start_not_at_an_empty_lease_before_it()
    {
        var queues = _server.Get<QueueStore>();
        await queues.EnsureAsync(TestKinds.Queue, 1000, 200, CancellationToken.None);
        Assert.True(await queues.UpdateAsync(TestKinds.Queue, new QueueSettings(null, RateMax: 3, RatePeriodMs: 1000, null, null), CancellationToken.None));

        // A worker polls the empty queue: nothing starts, so no window may open here.
        Assert.Empty((await LeaseAsync(5)).Jobs);

        _clock.Advance(TimeSpan.FromMilliseconds(600));
        for (var i = 0; i < 6; i++)
        {
            await _server.EnqueueAsync();
        }

        Assert.Equal(3, (await LeaseAsync(5)).Jobs.Count);

        // 1.2 s after the empty lease but 0.6 s into the window the first starts opened: still full.
        _clock.Advance(TimeSpan.FromMilliseconds(600));
        var limited = await LeaseAsync(5);
        Assert.Empty(limited.Jobs);
        Assert.InRange(limited.RetryAfter!.Value.TotalMilliseconds, 399, 401);

        _clock.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Equal(3, (await LeaseAsync(5)).Jobs.Count);
    }

    private Task<LeaseResult> LeaseAsync(int max = 1) =>
        _leaser.LeaseAsync(new LeaseRequest("fake-worker", TestKinds.Queue, [TestKinds.Run], max), CancellationToken.None);
}
