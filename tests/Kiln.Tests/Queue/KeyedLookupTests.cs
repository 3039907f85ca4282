using Kiln.Jobs;
using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// The queue's own transactions find their rows by key (<c>JobStates.KeyedLookups</c>): the enqueue, the lease and the
/// completion run with sequential scans off, and the setting ends with each transaction. Seen from inside, as
/// <see cref="LeaseCommitTests"/> does: a trigger on this test's own database records <c>enable_seqscan</c> whenever
/// a job row is inserted or changes state. The lease paths the API does not take here are in LeaseCommitTests.
/// </summary>
public sealed class KeyedLookupTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;
    private NpgsqlDataSource _dataSource = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await QueueServer.StartAsync(_recorder);
        _dataSource = _server.Get<NpgsqlDataSource>();
        await _server.ExecuteAsync("""
            create table seqscan_seen (n bigserial primary key, job_id uuid not null, state text not null, enable_seqscan text not null);
            create function record_seqscan() returns trigger language plpgsql as $$
            begin
                insert into seqscan_seen (job_id, state, enable_seqscan) values (new.id, new.state, current_setting('enable_seqscan'));
                return null;
            end $$;
            create trigger jobs_seqscan_insert after insert on jobs for each row execute function record_seqscan();
            create trigger jobs_seqscan_update after update of state on jobs for each row execute function record_seqscan();
            """);
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_job_is_inserted_leased_and_completed_with_sequential_scans_off_and_the_pool_keeps_the_default()
    {
        // Two jobs: one job alone is inserted with plain values, which look nothing up (EnqueuePlanTests).
        var pair = new[] { QueueServer.NewJob(), QueueServer.NewJob() };
        await _server.Get<JobStore>().EnqueueAsync(pair, CancellationToken.None);
        var id = pair[0].Id;
        await _server.WaitForStateAsync(id, "completed");

        Assert.Equal(["queued off", "running off", "completed off"], await SeenAsync(id));
        await using var show = _dataSource.CreateCommand("show enable_seqscan");
        Assert.Equal("on", await show.ExecuteScalarAsync());
    }

    private async Task<List<string>> SeenAsync(Guid id)
    {
        await using var cmd = _dataSource.CreateCommand("select state || ' ' || enable_seqscan from seqscan_seen where job_id = @id order by n");
        cmd.Parameters.AddWithValue("id", id);
        await using var r = await cmd.ExecuteReaderAsync();
        var seen = new List<string>();
        while (await r.ReadAsync())
        {
            seen.Add(r.GetString(0));
        }

        return seen;
    }
}
