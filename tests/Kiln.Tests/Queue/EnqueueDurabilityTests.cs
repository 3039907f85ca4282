using Kiln.Jobs;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// An enqueue commits without waiting for its WAL flush, so its job can start at once, and returns only after the
/// batch's last statement made that commit durable (<see cref="WalFlush"/>).
/// </summary>
public sealed class EnqueueDurabilityTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private readonly HeldFlush _flush = new();
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await QueueServer.StartAsync(
            _recorder,
            // No idle poll within the test: only the enqueue's own wake-up can start the job before the flush ends.
            new Dictionary<string, string?> { ["Kiln:Queue:IdlePollSeconds"] = "600" },
            services: s => s.AddSingleton<WalFlush>(_flush));

    public async ValueTask DisposeAsync()
    {
        _flush.Release();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_job_starts_while_its_enqueue_still_waits_for_the_flush()
    {
        var job = QueueServer.NewJob();

        var enqueue = _server.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);
        var run = await _recorder.StartedAsync(job.Id);

        Assert.Equal(job.Id, run.JobId);
        // The job may start just before the enqueue reaches its flush (both follow the jobs' results): wait for it.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (_flush.Waits == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(1, _flush.Waits);
        Assert.False(enqueue.IsCompleted);
        _flush.Release();
        var enqueued = await enqueue;
        Assert.Equal(job.Id, Assert.Single(enqueued.Jobs).Id);
    }

    [Fact]
    public async Task The_flush_after_the_barrier_covers_the_commit_before_it_that_did_not_wait_for_its_own()
    {
        await using var conn = await _server.Get<NpgsqlDataSource>().OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(conn);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("select set_config('synchronous_commit', 'off', true)"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("insert into queues (name, keep_completed, keep_failed) values ('durability', 1, 1)"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("select pg_current_wal_insert_lsn()::text"));
        new WalFlush().AddTo(batch);

        string written;
        await using (var r = await batch.ExecuteReaderAsync())
        {
            await r.NextResultAsync();
            Assert.True(await r.ReadAsync());
            written = r.GetString(0);
            await new WalFlush().WaitAsync(r, CancellationToken.None);
        }

        await using var flushed = new NpgsqlCommand("select pg_current_wal_flush_lsn() >= @lsn::pg_lsn, (select count(*) from queues where name = 'durability')", conn);
        flushed.Parameters.AddWithValue("lsn", written);
        await using var check = await flushed.ExecuteReaderAsync();
        Assert.True(await check.ReadAsync());
        Assert.True(check.GetBoolean(0));
        Assert.Equal(1, check.GetInt64(1));
    }

    /// <summary>Holds every enqueue's flush until released, then flushes for real.</summary>
    private sealed class HeldFlush : WalFlush
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _waits;

        public int Waits => Volatile.Read(ref _waits);

        public void Release() => _released.TrySetResult();

        public override async Task WaitAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _waits);
            await _released.Task.WaitAsync(cancellationToken);
            await base.WaitAsync(reader, cancellationToken);
        }
    }
}
