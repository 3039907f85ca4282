using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Npgsql;

namespace Kiln.Tests.Processing;

/// <summary>The log says what a shutdown did to each job running in the process, one line per job.</summary>
public sealed class ShutdownJobReportTests
{
    private const string Unserved = "unserved";

    [Fact]
    public async Task A_job_that_finishes_in_the_grace_period_is_reported_completed_and_one_nobody_runs_is_left_for_lease_expiry()
    {
        var logs = new FakeLogCollector();
        await using var server = await StartAsync(logs, graceSeconds: 300);
        var finishing = (await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Gate])).Jobs[TestJobs.Gate];
        await server.WaitForJobAsync(finishing, ["running"], TimeSpan.FromSeconds(60));

        // Leased in the in-process workers' name but run by nobody, as when a release could not be written.
        var orphan = new NewJob { Kind = TestJobs.Output, Queue = Unserved, Params = [] };
        await server.Get<JobStore>().EnqueueAsync([orphan], CancellationToken.None);
        var leased = await server.Get<IJobDispatcher>().LeaseAsync(
            new LeaseRequest(server.Get<InProcessWorkers>().WorkerId, Unserved, [TestJobs.Output], 1), CancellationToken.None);
        Assert.Equal(orphan.Id, Assert.Single(leased.Jobs).JobId);

        // The gate opens once shutdown has taken its list of running jobs, so the job finishes within the grace period.
        var stopping = server.StopAsync();
        await Poll.UntilAsync(
            () => Task.FromResult(Lines(logs).Contains("Shutdown: 2 jobs running in this process")), "shutdown to list the running jobs", 60);
        server.Get<TestGate>().Open();
        await stopping;

        var jobs = Lines(logs).Where(l => l.StartsWith("Shutdown: job ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, jobs.Count);
        Assert.Contains($"Shutdown: job {finishing} (test.gate) completed", jobs);
        Assert.Contains($"Shutdown: job {orphan.Id} (test.output) left running for lease expiry", jobs);
    }

    [Fact]
    public async Task A_job_still_running_when_the_grace_period_ends_is_reported_released_to_the_queue()
    {
        var logs = new FakeLogCollector();
        await using var server = await StartAsync(logs, graceSeconds: 0.5);
        var held = (await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Gate])).Jobs[TestJobs.Gate];
        await server.WaitForJobAsync(held, ["running"], TimeSpan.FromSeconds(60));

        await server.StopAsync();

        Assert.Equal(
            ["Shutdown: 1 jobs running in this process", $"Shutdown: job {held} (test.gate) released to the queue"],
            Lines(logs));
        await using var cmd = server.Get<NpgsqlDataSource>().CreateCommand("select state from jobs where id = @id");
        cmd.Parameters.AddWithValue("id", held);
        Assert.Equal("queued", await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken));
    }

    private static Task<KilnServer> StartAsync(FakeLogCollector logs, double graceSeconds) =>
        KilnServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["Kiln:Workers:Slots:test"] = "4",
                ["Kiln:Workers:ShutdownTimeoutSeconds"] = graceSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                [$"Logging:LogLevel:{typeof(ShutdownJobReport).FullName}"] = "Information",
            },
            builder =>
            {
                TestJobs.Register(builder);
                builder.Logging.AddProvider(new FakeLoggerProvider(logs));
            });

    /// <summary>What the shutdown report logged, in order.</summary>
    private static List<string> Lines(FakeLogCollector logs) =>
        [.. logs.GetSnapshot().Where(r => r.Category == typeof(ShutdownJobReport).FullName && r.Level == LogLevel.Information).Select(r => r.Message)];
}
