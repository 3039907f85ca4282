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
            create table insert_plans (job_id uuid primary key, plan_cache_mode text not null);
            create function record_insert_plan() returns trigger language plpgsql as $$
            begin
                insert into insert_plans values (new.id, current_setting('plan_cache_mode'));
                return null;
            end $$;
            create trigger jobs_insert_plan after insert on jobs for each row execute function record_insert_plan();
            """);
        await cmd.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task An_enqueue_inserts_its_jobs_on_the_generic_plan_and_leaves_the_setting_behind()
    {
        var id = await _server.EnqueueAsync();
        var second = await _server.EnqueueAsync();

        Assert.Equal("force_generic_plan", await SeenAsync(id));
        Assert.Equal("force_generic_plan", await SeenAsync(second));
        Assert.Equal("queued", (await _server.JobAsync(second)).State);
        await using var show = _dataSource.CreateCommand("show plan_cache_mode");
        Assert.Equal("auto", await show.ExecuteScalarAsync());
    }

    private async Task<string?> SeenAsync(Guid id)
    {
        await using var cmd = _dataSource.CreateCommand("select plan_cache_mode from insert_plans where job_id = @id");
        cmd.Parameters.AddWithValue("id", id);
        return (string?)await cmd.ExecuteScalarAsync();
    }
}
