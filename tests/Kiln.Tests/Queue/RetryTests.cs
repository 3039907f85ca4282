using System.Text.Json.Nodes;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class RetryTests : IAsyncDisposable
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
    public async Task A_retryable_failure_is_retried_with_exponential_backoff_until_attempts_run_out()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Queue:BackoffBaseSeconds"] = "0.6" });
        var id = await _server.EnqueueAsync(parameters: new() { ["fail"] = new JsonObject { ["code"] = "flaky" } });

        var job = await _server.WaitForStateAsync(id, "failed");

        Assert.Equal(3, job.Attempts);
        Assert.Equal("flaky", job.ErrorCode);
        var runs = _recorder.RunsOf(id);
        Assert.Equal([1, 2, 3], runs.Select(r => r.Attempt));

        // 0.6 s then 1.2 s, ±10 %; the upper bounds leave room for a loaded machine (the exact delays are checked below).
        var firstGap = QueueServer.Seconds(runs[0].StartedTicks, runs[1].StartedTicks);
        var secondGap = QueueServer.Seconds(runs[1].StartedTicks, runs[2].StartedTicks);
        Assert.InRange(firstGap, 0.54, 1.1);
        Assert.InRange(secondGap, 1.08, 2.0);
        Assert.True(secondGap > firstGap, $"backoff did not grow: {firstGap:F3} s then {secondGap:F3} s");
    }

    [Fact]
    public async Task The_default_backoff_is_two_then_four_seconds_with_jitter()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:test"] = "0",
            ["Kiln:Queue:BackoffBaseSeconds"] = "2",
        });
        var dispatcher = _server.Get<IJobDispatcher>();
        var ids = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add(await _server.EnqueueAsync());
        }

        var firstDelays = await FailAllAsync(dispatcher, ids.Count);
        await _server.ExecuteAsync("update jobs set run_at = now() where state = 'queued'");
        var secondDelays = await FailAllAsync(dispatcher, ids.Count);

        Assert.All(firstDelays, d => Assert.InRange(d, 1.75, 2.25));
        Assert.All(secondDelays, d => Assert.InRange(d, 3.55, 4.45));
        Assert.True(firstDelays.Distinct().Count() > 1, "every job got the same delay: no jitter");
        foreach (var id in ids)
        {
            Assert.Equal(2, (await _server.JobAsync(id)).Attempts);
        }
    }

    [Fact]
    public async Task A_non_retryable_failure_fails_the_job_at_once()
    {
        _server = await QueueServer.StartAsync(_recorder);
        var id = await _server.EnqueueAsync(parameters: new() { ["fail"] = new JsonObject { ["code"] = "bad_input", ["retryable"] = false } });

        var job = await _server.WaitForStateAsync(id, "failed");

        Assert.Equal(1, job.Attempts);
        Assert.Equal("bad_input", job.ErrorCode);
        Assert.NotNull(job.FinishedAt);
        Assert.Null(job.LeaseOwner);
        Assert.Single(_recorder.RunsOf(id));
    }

    [Fact]
    public async Task A_job_that_succeeds_on_a_retry_completes_with_the_result_of_that_attempt()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Queue:BackoffBaseSeconds"] = "0.05" });
        var id = await _server.EnqueueAsync(parameters: new() { ["fail"] = new JsonObject { ["times"] = 1 } });

        var job = await _server.WaitForStateAsync(id, "completed");

        Assert.Equal(2, job.Attempts);
        Assert.Equal(2, job.Result!["attempt"]!.GetValue<int>());
        Assert.Null(job.ErrorCode);
    }

    [Fact]
    public async Task Max_attempts_of_one_means_no_retry()
    {
        _server = await QueueServer.StartAsync(_recorder);
        var id = await _server.EnqueueAsync(parameters: new() { ["fail"] = new JsonObject() }, maxAttempts: 1);

        var job = await _server.WaitForStateAsync(id, "failed");

        Assert.Equal(1, job.Attempts);
        Assert.Single(_recorder.RunsOf(id));
    }

    [Fact]
    public async Task Jobs_default_to_three_attempts()
    {
        _server = await QueueServer.StartAsync(_recorder);
        Assert.Equal(3, _server.Get<Kiln.Jobs.JobStore>().DefaultMaxAttempts);
        Assert.Equal(3, new Kiln.Jobs.NewJob { Kind = "k", Queue = "q" }.MaxAttempts);
    }

    /// <summary>Leases every ready job once, fails it, and returns each one's new delay in seconds.</summary>
    private async Task<List<double>> FailAllAsync(IJobDispatcher dispatcher, int count)
    {
        var server = _server!;
        var leased = await server.LeaseAsync(count);
        Assert.Equal(count, leased.Jobs.Count);
        var delays = new List<double>();
        foreach (var lease in leased.Jobs)
        {
            Assert.True(await dispatcher.FailAsync(new FailureReport(lease.JobId, lease.LeaseId, "flaky", "try again"), CancellationToken.None));
            var seconds = (double)(await server.ScalarAsync(
                "select extract(epoch from (run_at - now()))::float8 from jobs where id = @id and state = 'queued'", ("id", lease.JobId)))!;
            delays.Add(seconds);
        }

        return delays;
    }
}
