using Kiln.Jobs;
using Kiln.Queue;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// <see cref="QueueOptions.DurableLeases"/>: a lease of an unlimited queue commits without waiting for its WAL flush
/// unless asked to, a limited queue's lease always waits, and the setting ends with the lease's transaction. What each
/// lease committed with is seen from inside: a trigger on this test's own database records the
/// <c>synchronous_commit</c> in force when a job turns running, and <c>enable_seqscan</c>, off on every lease path
/// (<c>JobStates.KeyedLookups</c>).
/// </summary>
public sealed class LeaseCommitTests : HandLeasedQueueTests
{
    private NpgsqlDataSource _dataSource = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _dataSource = Server.Get<NpgsqlDataSource>();
        await using var cmd = _dataSource.CreateCommand("""
            create table lease_commits (job_id uuid primary key, synchronous_commit text not null, enable_seqscan text not null);
            create function record_lease_commit() returns trigger language plpgsql as $$
            begin
                insert into lease_commits values (new.id, current_setting('synchronous_commit'), current_setting('enable_seqscan'));
                return null;
            end $$;
            create trigger jobs_lease_commit after update of state on jobs
                for each row when (new.state = 'running') execute function record_lease_commit();
            """);
        await cmd.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task A_lease_of_an_unlimited_queue_does_not_wait_for_its_flush_by_default()
    {
        var id = await Server.EnqueueAsync();
        Assert.Equal(id, Assert.Single((await LeaseAsync(new QueueOptions())).Jobs).JobId);

        Assert.Equal("off", await SeenAsync(id));
        Assert.Equal("off", await SeenAsync(id, "enable_seqscan"));
        // Local to the lease's transaction: the pooled connection it ran on is back to the server's setting.
        await using var show = _dataSource.CreateCommand("show synchronous_commit");
        Assert.Equal("on", await show.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Durable_leases_wait_for_their_flush_when_configured()
    {
        var id = await Server.EnqueueAsync();
        Assert.Single((await LeaseAsync(new QueueOptions { DurableLeases = true })).Jobs);

        Assert.Equal("on", await SeenAsync(id));
        Assert.Equal("off", await SeenAsync(id, "enable_seqscan"));
    }

    [Fact]
    public async Task A_lease_of_a_rate_limited_queue_waits_for_its_flush_so_its_window_survives_a_crash()
    {
        var id = await Server.EnqueueAsync();
        Assert.True(await Server.Get<QueueStore>().UpdateAsync(TestKinds.Queue, new QueueSettings(null, 10, 60_000, null, null), CancellationToken.None));
        Assert.Single((await LeaseAsync(new QueueOptions())).Jobs);

        Assert.Equal("on", await SeenAsync(id));
        Assert.Equal("off", await SeenAsync(id, "enable_seqscan"));
    }

    private Task<LeaseResult> LeaseAsync(QueueOptions options) =>
        Server.NewLeaser(options).LeaseAsync(new LeaseRequest("fake-worker", TestKinds.Queue, [TestKinds.Run], 1), CancellationToken.None);

    private async Task<string?> SeenAsync(Guid id, string setting = "synchronous_commit")
    {
        await using var cmd = _dataSource.CreateCommand($"select {setting} from lease_commits where job_id = @id");
        cmd.Parameters.AddWithValue("id", id);
        return (string?)await cmd.ExecuteScalarAsync();
    }
}
