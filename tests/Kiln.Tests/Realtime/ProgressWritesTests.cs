using System.Diagnostics;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;
using Kiln.Workers.Testing;
using Npgsql;

namespace Kiln.Tests.Realtime;

/// <summary>Progress is broadcast as it comes but written to the database at most four times a second per job.</summary>
public sealed class ProgressWritesTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await KilnServer.StartAsync(new Dictionary<string, string?> { [TestKinds.Setting] = "true" });

        // Every write of progress to a running job leaves a row, timed by the database's clock.
        await using var cmd = _server.Get<NpgsqlDataSource>().CreateCommand("""
            create table progress_writes (at timestamptz not null default clock_timestamp(), progress real not null);
            create function log_progress_write() returns trigger language plpgsql as
                $$ begin insert into progress_writes (progress) values (new.progress); return new; end $$;
            create trigger progress_write after update on jobs for each row
                when (old.state = 'running' and new.state = 'running' and old.last_progress_at is distinct from new.last_progress_at)
                execute function log_progress_write();
            """);
        await cmd.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Progress_reaches_a_watcher_as_it_comes_while_the_database_gets_at_most_four_writes_a_second()
    {
        var job = new NewJob { Kind = TestKinds.Sleep, Queue = TestKinds.Queue, Params = [] };
        await _server.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);
        var dispatcher = _server.Get<IJobDispatcher>();
        var lease = (await dispatcher.LeaseAsync(new LeaseRequest("test-runner", TestKinds.Queue, [TestKinds.Sleep], 1), CancellationToken.None)).Jobs.Single();
        await using var hub = await RecordingHubClient.ConnectAsync(_server.BaseAddress, _server.AdminKey);
        await hub.InvokeAsync("join-job", job.Id);

        // Each report waits until the watcher heard the one before: none is coalesced away on its way, however slow
        // the machine, so every one must arrive, while the database write rate is bounded by the time the loop took.
        const int reports = 150;
        var watch = Stopwatch.StartNew();
        for (var i = 1; i <= reports; i++)
        {
            var progress = Math.Round(100.0 * i / reports, 2);
            Assert.True(await dispatcher.ReportProgressAsync(new ProgressReport(job.Id, lease.LeaseId, progress, "step"), CancellationToken.None));
            await hub.WaitForAsync("job-progress", e => e!["progress"]!.GetValue<double>() == progress);
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var received = hub.EventsFor(job.Id).Count(e => e.Target == "job-progress");
        await using var cmd = _server.Get<NpgsqlDataSource>().CreateCommand("select count(*) from progress_writes");
        var writes = (long)(await cmd.ExecuteScalarAsync())!;

        // The first report is written at once, then one per 250 ms window at most.
        Assert.InRange(writes, 1, (long)Math.Floor(seconds * 4) + 1);
        Assert.Equal(reports, received);
        var values = hub.EventsFor(job.Id).Where(e => e.Target == "job-progress").Select(e => e.Payload!["progress"]!.GetValue<double>()).ToList();
        Assert.Equal(values.Order(), values);
    }
}
