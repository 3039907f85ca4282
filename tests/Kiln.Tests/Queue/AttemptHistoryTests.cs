using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Queue;
using Npgsql;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

/// <summary>A fake worker leases by hand; every attempt leaves a history row with its own error.</summary>
public sealed class AttemptHistoryTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;
    private IJobDispatcher _dispatcher = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "0" });
        _dispatcher = _server.Get<IJobDispatcher>();
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Each_attempt_keeps_its_own_error_and_the_job_shows_them_all()
    {
        var id = await _server.EnqueueAsync();
        var first = await LeaseOneAsync();
        Assert.True(await _dispatcher.FailAsync(new FailureReport(id, first.LeaseId, "first_error", "went wrong once"), CancellationToken.None));
        await _server.ExecuteAsync("update jobs set run_at = now() where id = @id", ("id", id));
        var second = await LeaseOneAsync();
        Assert.True(await _dispatcher.FailAsync(new FailureReport(id, second.LeaseId, "second_error", "went wrong twice"), CancellationToken.None));
        await _server.ExecuteAsync("update jobs set run_at = now() where id = @id", ("id", id));
        var third = await LeaseOneAsync();

        // While the third attempt runs, its row is open and the two errors before it are still there.
        var running = await HistoryAsync(id);
        Assert.Equal(3, running.Count);
        Assert.Null(running[2]["outcome"]);
        Assert.Null(running[2]["finishedAt"]);
        Assert.True(await _dispatcher.CompleteAsync(new CompletionReport(id, third.LeaseId), CancellationToken.None));

        var history = await HistoryAsync(id);
        Assert.Equal([1, 2, 3], history.Select(h => h["attempt"]!.GetValue<int>()));
        Assert.Equal([first.LeaseId, second.LeaseId, third.LeaseId], history.Select(h => h["leaseId"]!.GetValue<Guid>()));
        Assert.Equal(["failed", "failed", "completed"], history.Select(h => h["outcome"]!.GetValue<string>()));
        Assert.Equal(["first_error", "second_error", null], history.Select(h => h["errorCode"]?.GetValue<string>()));
        Assert.Equal(["went wrong once", "went wrong twice", null], history.Select(h => h["errorMessage"]?.GetValue<string>()));
        Assert.All(history, h => Assert.Equal("fake-worker", h["worker"]!.GetValue<string>()));
        Assert.All(history, h => Assert.True(h["finishedAt"]!.GetValue<DateTimeOffset>() >= h["startedAt"]!.GetValue<DateTimeOffset>()));
    }

    [Fact]
    public async Task A_released_lease_and_a_lost_one_are_told_apart_and_history_goes_with_its_job()
    {
        var id = await _server.EnqueueAsync();
        var released = await LeaseOneAsync();
        Assert.True(await _dispatcher.ReleaseAsync(id, released.LeaseId, CancellationToken.None));
        var cancelled = await LeaseOneAsync();
        using (var response = await _server.Admin.PostAsync($"/api/jobs/{id}/cancel", null))
        {
            response.EnsureSuccessStatusCode();
        }

        var history = await HistoryAsync(id);
        Assert.Equal(["released", "cancelled"], history.Select(h => h["outcome"]!.GetValue<string>()));
        Assert.Equal([1, 1], history.Select(h => h["attempt"]!.GetValue<int>()));
        Assert.Equal(cancelled.LeaseId, history[1]["leaseId"]!.GetValue<Guid>());

        Assert.Equal(1, await _server.ExecuteAsync("delete from jobs where id = @id", ("id", id)));
        Assert.Equal(0L, await _server.ScalarAsync("select count(*) from job_attempts where job_id = @id", ("id", id)));
    }

    [Fact]
    public async Task A_job_list_does_not_carry_history()
    {
        var id = await _server.EnqueueAsync();
        await LeaseOneAsync();

        var page = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/jobs?queue={TestKinds.Queue}");
        var listed = Assert.Single(page!["items"]!.AsArray(), j => j!["id"]!.GetValue<Guid>() == id)!;
        Assert.Null(listed["history"]);
        Assert.Single(await HistoryAsync(id));
    }

    [Fact]
    public async Task An_attempt_is_written_once_as_it_ends_by_one_trigger_call_for_a_whole_batch()
    {
        // Function call counts, for the server's connections opened from now on.
        await _server.ExecuteAsync("do $$ begin execute format('alter database %I set track_functions = ''pl''', current_database()); end $$");
        _server.Get<NpgsqlDataSource>().Clear();
        var ids = new List<Guid>();
        for (var i = 0; i < 40; i++)
        {
            ids.Add(await _server.EnqueueAsync());
        }

        var leases = (await _server.LeaseAsync(40)).Jobs;
        Assert.Equal(ids.Order(), leases.Select(l => l.JobId).Order());

        // While they run, no history row is written: the job rows are the record, and the history shows them.
        Assert.Equal(0L, await _server.ScalarAsync("select count(*) from job_attempts where job_id = any(@ids)", ("ids", ids.ToArray())));
        var running = Assert.Single(await HistoryAsync(leases[0].JobId));
        Assert.Equal(leases[0].LeaseId, running["leaseId"]!.GetValue<Guid>());
        Assert.Null(running["outcome"]);
        Assert.Null(running["finishedAt"]);

        // One statement ends all 40 leases: the history trigger runs once for all of them, where the row trigger before
        // it ran 40 times (and 40 more at the lease). The lease and the server's own maintenance call it too, ending
        // nothing, so a few calls are counted. A backend creates the count at the call and reports it when idle, at
        // most once a second: poll.
        var cancelled = await _server.ExecuteAsync(
            "update jobs set state = 'cancelled', lease_id = null, lease_owner = null, lease_ended_at = now(), finished_at = now() where id = any(@ids)",
            ("ids", ids.ToArray()));
        Assert.Equal(40, cancelled);
        Assert.Equal(40L, await _server.ScalarAsync(
            "select count(*) from job_attempts where job_id = any(@ids) and outcome = 'cancelled' and finished_at is not null", ("ids", ids.ToArray())));
        var calls = await Poll.UntilAsync(
            async () => (long?)await _server.ScalarAsync("select calls from pg_stat_user_functions where funcname = 'kiln_job_attempts'"),
            c => c > 0,
            "the history trigger's call count");
        Assert.InRange(calls!.Value, 1, 10);

        foreach (var lease in leases)
        {
            var history = Assert.Single(await HistoryAsync(lease.JobId));
            Assert.Equal(lease.LeaseId, history["leaseId"]!.GetValue<Guid>());
            Assert.Equal("cancelled", history["outcome"]!.GetValue<string>());
            Assert.Equal(1, history["attempt"]!.GetValue<int>());
        }
    }

    [Fact]
    public async Task An_attempt_opened_before_the_upgrade_is_closed_when_its_lease_ends()
    {
        var id = await _server.EnqueueAsync();
        var lease = await LeaseOneAsync();
        // What the row trigger of migrations 004/008 left for a lease that was running when 009 was applied.
        await _server.ExecuteAsync(
            "insert into job_attempts (job_id, lease_id, attempt, worker, started_at) select id, lease_id, attempts, lease_owner, started_at from jobs where id = @id",
            ("id", id));
        Assert.Null(Assert.Single(await HistoryAsync(id))["outcome"]);

        Assert.True(await _dispatcher.FailAsync(new FailureReport(id, lease.LeaseId, "broken", "no", Retryable: false), CancellationToken.None));

        var history = Assert.Single(await HistoryAsync(id));
        Assert.Equal("failed", history["outcome"]!.GetValue<string>());
        Assert.Equal("broken", history["errorCode"]!.GetValue<string>());
        Assert.NotNull(history["finishedAt"]);
    }

    private async Task<JobLease> LeaseOneAsync() => Assert.Single((await _server.LeaseAsync(1)).Jobs);

    private async Task<List<JsonObject>> HistoryAsync(Guid id)
    {
        var job = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/jobs/{id}");
        return job!["history"]!.AsArray().Select(h => h!.AsObject()).ToList();
    }
}
