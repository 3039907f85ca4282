using System.Diagnostics;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

/// <summary>Queue-wide limits hold across workers: two servers share one database, each with its own slots.</summary>
public sealed class ConcurrencyAndRateLimitTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private TestDatabase _database = null!;
    private KilnServer _first = null!;
    private KilnServer _second = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        var settings = new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "3" };
        _first = await QueueServer.StartAsync(_recorder, settings, _database);
        _second = await QueueServer.StartAsync(_recorder, settings, _database);
    }

    public async ValueTask DisposeAsync()
    {
        await _first.DisposeAsync();
        await _second.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task The_global_concurrency_caps_running_jobs_across_all_workers()
    {
        await SetLimitsAsync(new QueueSettings(Concurrency: 2, null, null, null, null));
        var ids = new List<Guid>();
        for (var i = 0; i < 8; i++)
        {
            ids.Add(await (i % 2 == 0 ? _first : _second).EnqueueAsync(parameters: new() { ["sleepMs"] = 150 }));
        }

        foreach (var id in ids)
        {
            await _first.WaitForStateAsync(id, "completed");
        }

        Assert.Equal(2, _recorder.MaxRunning);
    }

    [Fact]
    public async Task A_lease_beyond_the_concurrency_cap_gets_nothing_until_a_job_finishes()
    {
        await using var manual = await QueueServer.StartAsync(new JobRecorder(), new Dictionary<string, string?> { ["Kiln:Workers:Slots:other"] = "0" });
        await manual.Get<QueueStore>().EnsureAsync(TestKinds.OtherQueue, 1000, 200, CancellationToken.None);
        await manual.Get<QueueStore>().UpdateAsync(TestKinds.OtherQueue, new QueueSettings(1, null, null, null, null), CancellationToken.None);
        for (var i = 0; i < 3; i++)
        {
            await manual.EnqueueAsync(TestKinds.Other);
        }

        var first = Assert.Single((await manual.LeaseAsync(5, kind: TestKinds.Other)).Jobs);
        Assert.Empty((await manual.LeaseAsync(5, kind: TestKinds.Other)).Jobs);
        Assert.True(await manual.Get<IJobDispatcher>().CompleteAsync(new CompletionReport(first.JobId, first.LeaseId), CancellationToken.None));
        Assert.Single((await manual.LeaseAsync(5, kind: TestKinds.Other)).Jobs);
    }

    [Fact]
    public async Task The_rate_limit_caps_starts_per_period_across_all_workers()
    {
        await SetLimitsAsync(new QueueSettings(null, RateMax: 3, RatePeriodMs: 1000, null, null));
        var ids = new List<Guid>();
        for (var i = 0; i < 9; i++)
        {
            ids.Add(await (i % 2 == 0 ? _first : _second).EnqueueAsync());
        }

        foreach (var id in ids)
        {
            await _first.WaitForStateAsync(id, "completed");
        }

        // When each lease happened, as the database recorded it (handlers may start late on a loaded machine).
        var starts = new List<DateTimeOffset>();
        foreach (var id in ids)
        {
            starts.Add((await _first.JobAsync(id)).StartedAt!.Value);
        }

        starts.Sort();
        // Windows are one period long and hold 3 starts each: starts six apart lie at least a whole window apart.
        for (var i = 0; i + 6 < starts.Count; i++)
        {
            Assert.True((starts[i + 6] - starts[i]).TotalSeconds >= 0.95, $"starts {i} and {i + 6} only {(starts[i + 6] - starts[i]).TotalSeconds:F3} s apart");
        }

        // Only the lower bound: how late the last start comes depends on the machine's load, not on the limiter.
        Assert.True((starts[^1] - starts[0]).TotalSeconds >= 1.85, $"nine starts within {(starts[^1] - starts[0]).TotalSeconds:F3} s");
        Assert.Equal(9, _recorder.Runs.Count);
    }

    [Fact]
    public async Task A_rate_limited_lease_says_when_the_window_opens()
    {
        await using var manual = await QueueServer.StartAsync(new JobRecorder(), new Dictionary<string, string?> { ["Kiln:Workers:Slots:other"] = "0" });
        await manual.Get<QueueStore>().EnsureAsync(TestKinds.OtherQueue, 1000, 200, CancellationToken.None);
        await manual.Get<QueueStore>().UpdateAsync(TestKinds.OtherQueue, new QueueSettings(null, 2, 5000, null, null), CancellationToken.None);
        for (var i = 0; i < 4; i++)
        {
            await manual.EnqueueAsync(TestKinds.Other);
        }

        var windowOpened = Stopwatch.GetTimestamp();
        Assert.Equal(2, (await manual.LeaseAsync(5, kind: TestKinds.Other)).Jobs.Count);
        var limited = await manual.LeaseAsync(5, kind: TestKinds.Other);
        // What is left of the 5 s window is 5 s less the time the two calls took, however long that was under load.
        var spent = Stopwatch.GetElapsedTime(windowOpened).TotalSeconds;

        Assert.Empty(limited.Jobs);
        Assert.NotNull(limited.RetryAfter);
        Assert.InRange(limited.RetryAfter.Value.TotalSeconds, 5 - spent - 0.01, 5.01);
    }

    private async Task SetLimitsAsync(QueueSettings settings)
    {
        var queues = _first.Get<QueueStore>();
        await queues.EnsureAsync(TestKinds.Queue, 1000, 200, CancellationToken.None);
        Assert.True(await queues.UpdateAsync(TestKinds.Queue, settings, CancellationToken.None));
    }
}
