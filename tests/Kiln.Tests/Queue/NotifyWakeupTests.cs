using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// Idle workers sleep on LISTEN; with the longest idle poll (600 s) only a NOTIFY can start a job before the
/// (generous) wait ends, so no test measures how fast it starts.
/// </summary>
public sealed class NotifyWakeupTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private TestDatabase _database = null!;
    private KilnServer _worker = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _worker = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Queue:IdlePollSeconds"] = "600",
            ["Kiln:Workers:Slots:test"] = "1",
        }, _database);
    }

    public async ValueTask DisposeAsync()
    {
        await _worker.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task An_enqueue_on_another_node_starts_a_job_on_an_idle_worker_at_once()
    {
        await using var api = await QueueServer.StartAsync(new JobRecorder(), new Dictionary<string, string?> { ["Kiln:Workers:Enabled"] = "false" }, _database);

        for (var i = 0; i < 3; i++)
        {
            var id = await api.EnqueueAsync();
            var run = await _recorder.StartedAsync(id);

            Assert.Equal(id, run.JobId);
            await _worker.WaitForStateAsync(id, "completed");
        }
    }

    [Fact]
    public async Task A_notify_from_any_connection_wakes_idle_workers()
    {
        var id = Guid.CreateVersion7();
        await using var conn = new NpgsqlConnection(_database.ConnectionString);
        await conn.OpenAsync();
        await using (var cmd = new NpgsqlCommand("""
            insert into queues (name) values ('test') on conflict do nothing;
            insert into jobs (id, kind, queue, state) values (@id, 'test.run', 'test', 'queued');
            select pg_notify('kiln_jobs', 'test');
            """, conn))
        {
            cmd.Parameters.AddWithValue("id", id);
            await cmd.ExecuteNonQueryAsync();
        }

        var run = await _recorder.StartedAsync(id);

        Assert.Equal(id, run.JobId);
    }

    [Fact]
    public async Task Without_a_notify_the_idle_poll_still_finds_the_job()
    {
        await using var polling = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?>
        {
            ["Kiln:Queue:IdlePollSeconds"] = "0.5",
            ["Kiln:Workers:Slots:other"] = "1",
        });
        var id = Guid.CreateVersion7();
        await polling.ExecuteAsync("""
            insert into queues (name) values ('other') on conflict do nothing;
            insert into jobs (id, kind, queue, state) values (@id, 'test.other', 'other', 'queued');
            """, ("id", id));

        await _recorder.StartedAsync(id);
        await polling.WaitForStateAsync(id, "completed");
    }
}
