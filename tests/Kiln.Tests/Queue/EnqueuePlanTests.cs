using System.Text.Json;
using Kiln.Jobs;
using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// The interactive enqueue (<see cref="JobStore.EnqueueAsync(IReadOnlyList{NewJob}, CancellationToken)"/>) runs its
/// insert on the generic plan: replanning it for every call cost more than running it. Seen from inside, as
/// <see cref="LeaseCommitTests"/> does: a trigger on this test's own database records the <c>plan_cache_mode</c> in
/// force when a job row is inserted.
/// </summary>
public sealed class EnqueuePlanTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;
    private NpgsqlDataSource _dataSource = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "0" });
        _dataSource = _server.Get<NpgsqlDataSource>();
        await using var cmd = _dataSource.CreateCommand("""
            create table insert_plans (job_id uuid primary key, plan_cache_mode text not null, synchronous_commit text not null);
            create function record_insert_plan() returns trigger language plpgsql as $$
            begin
                insert into insert_plans values (new.id, current_setting('plan_cache_mode'), current_setting('synchronous_commit'));
                return null;
            end $$;
            create trigger jobs_insert_plan after insert on jobs for each row execute function record_insert_plan();
            """);
        await cmd.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    /// <summary>
    /// Several jobs are unnested from arrays on the generic plan; one job alone is a plain VALUES insert that needs no
    /// setting. Both commit durably: the call returns only once its jobs survive a crash.
    /// </summary>
    [Fact]
    public async Task A_batch_is_inserted_on_the_generic_plan_one_job_without_settings_and_both_commit_durably()
    {
        var pair = new[] { QueueServer.NewJob(), QueueServer.NewJob() };
        await _server.Get<JobStore>().EnqueueAsync(pair, CancellationToken.None);
        var one = await _server.EnqueueAsync();
        var again = await _server.EnqueueAsync();

        Assert.Equal("force_generic_plan on", await SeenAsync(pair[0].Id));
        Assert.Equal("force_generic_plan on", await SeenAsync(pair[1].Id));
        Assert.Equal("auto on", await SeenAsync(one));
        Assert.Equal("auto on", await SeenAsync(again));
        Assert.Equal("queued", (await _server.JobAsync(again)).State);
        await using var show = _dataSource.CreateCommand("show plan_cache_mode");
        Assert.Equal("auto", await show.ExecuteScalarAsync());
    }

    /// <summary>
    /// The NOTIFY the enqueue ends with runs on the same generic plan, so it must find its jobs by primary key whatever
    /// the statistics say. Here they say no job is queued (taken when all were completed, autovacuum off) while 5,000
    /// are: written as <c>where id = any(@ids) and state = 'queued'</c>, the generic plan read the whole queued index
    /// (47 pages) for one job. Counted in pages read, not time.
    /// </summary>
    [Fact]
    public async Task The_notify_after_an_enqueue_reads_its_own_jobs_not_the_queued_backlog()
    {
        await _server.ExecuteAsync("""
            alter table jobs set (autovacuum_enabled = false);
            insert into jobs (id, kind, queue, state, priority, max_attempts, run_at, created_at, finished_at)
            select gen_random_uuid(), 'run', 'test', 'completed', 10, 3, now(), now(), now() from generate_series(1, 5000);
            """);
        await _server.ExecuteAsync("vacuum analyze jobs");
        var backlog = Enumerable.Range(0, 5000).Select(_ => QueueServer.NewJob()).ToList();
        await _server.Get<JobStore>().EnqueueAsync(backlog, CancellationToken.None);
        await _server.ExecuteAsync("vacuum jobs");

        await using var conn = await _dataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        var sql = JobStore.NotifyQueuedSql.Replace("@ids", "$1", StringComparison.Ordinal).Replace("@sender", "$2", StringComparison.Ordinal);
        await using (var prepare = new NpgsqlCommand($"select {JobStates.GenericPlan}; prepare notify_queued(uuid[], text) as {sql}", conn, tx))
        {
            await prepare.ExecuteNonQueryAsync();
        }

        await using var explain = new NpgsqlCommand(
            $"explain (analyze, buffers, format json) execute notify_queued('{{{backlog[2500].Id}}}', '/test')", conn, tx);
        using var plan = JsonDocument.Parse((string)(await explain.ExecuteScalarAsync())!);
        var top = plan.RootElement[0].GetProperty("Plan");
        var pages = top.GetProperty("Shared Hit Blocks").GetInt32() + top.GetProperty("Shared Read Blocks").GetInt32();

        Assert.Equal(1, top.GetProperty("Actual Rows").GetInt32());
        Assert.InRange(pages, 1, 8);
        await tx.RollbackAsync();
    }

    private async Task<string?> SeenAsync(Guid id)
    {
        await using var cmd = _dataSource.CreateCommand("select plan_cache_mode || ' ' || synchronous_commit from insert_plans where job_id = @id");
        cmd.Parameters.AddWithValue("id", id);
        return (string?)await cmd.ExecuteScalarAsync();
    }
}
