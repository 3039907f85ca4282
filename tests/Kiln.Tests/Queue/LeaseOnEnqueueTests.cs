using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// An interactive enqueue leases its jobs for an idle in-process loop in the insert's own round trip (Queue/LeaseAtEnqueue):
/// the loop does not lease them itself, the loop's free slots bound how many it takes, and limited queues are left to
/// the loop's locked path.
/// </summary>
public sealed class LeaseOnEnqueueTests
{
    [Fact]
    public async Task A_job_enqueued_while_its_loop_is_idle_is_leased_by_the_enqueue_not_by_the_loop()
    {
        var recorder = new JobRecorder();
        var watch = new LeaseWatch();
        await using var server = await StartAsync(recorder, watch);
        await WaitIdleAsync(server, TestKinds.Queue);

        var id = await server.EnqueueAsync();

        var run = await recorder.StartedAsync(id);
        await server.WaitForStateAsync(id, "completed");
        Assert.Equal(1, run.Attempt);
        Assert.DoesNotContain(id, watch.Leased.Keys);
        Assert.Equal(1, await server.ScalarAsync("select count(*)::int from job_history where job_id = @id", ("id", id)));
    }

    [Fact]
    public async Task The_enqueue_takes_no_more_jobs_than_the_loop_has_free_slots_and_the_loop_leases_the_rest()
    {
        var recorder = new JobRecorder();
        var watch = new LeaseWatch();
        // Queue "other" has one slot.
        await using var server = await StartAsync(recorder, watch);
        await WaitIdleAsync(server, TestKinds.OtherQueue);
        var jobs = Enumerable.Range(0, 3).Select(_ => QueueServer.NewJob(TestKinds.Other, new JsonObject { ["block"] = true })).ToList();

        await server.Get<JobStore>().EnqueueAsync(jobs, CancellationToken.None);

        // The three have one priority and run_at, so which one goes first is the id order.
        await Poll.UntilAsync(() => !recorder.Runs.IsEmpty, "a job to start");
        var first = recorder.Runs.Single();
        var rest = jobs.Select(j => j.Id).Where(id => id != first.JobId).ToList();
        Assert.DoesNotContain(first.JobId, watch.Leased.Keys);
        Assert.Equal(["queued", "queued"], [(await server.JobAsync(rest[0])).State, (await server.JobAsync(rest[1])).State]);
        // One slot: each next job starts only once the one before it is released.
        for (var k = 0; k < jobs.Count; k++)
        {
            await Poll.UntilAsync(() => recorder.Runs.Count > k, $"job {k + 1} of 3 to start");
            var run = recorder.Runs.ElementAt(k);
            recorder.Release(run.JobId);
            await server.WaitForStateAsync(run.JobId, "completed");
        }

        Assert.Equal(1, recorder.MaxRunning);
        Assert.Equal(3, recorder.Runs.Count);
        Assert.All(rest, id => Assert.Contains(id, watch.Leased.Keys));
    }

    [Fact]
    public async Task A_limited_queue_is_left_to_the_loop()
    {
        var recorder = new JobRecorder();
        var watch = new LeaseWatch();
        await using var server = await StartAsync(recorder, watch);
        var queues = server.Get<QueueStore>();
        await queues.EnsureAsync(TestKinds.Queue, 1000, 200, CancellationToken.None);
        Assert.True(await queues.UpdateAsync(TestKinds.Queue, new QueueSettings(Concurrency: 1, null, null, null, null), CancellationToken.None));
        await WaitIdleAsync(server, TestKinds.Queue);

        var id = await server.EnqueueAsync();

        await recorder.StartedAsync(id);
        await server.WaitForStateAsync(id, "completed");
        Assert.Contains(id, watch.Leased.Keys);
    }

    [Fact]
    public async Task Turned_off_the_loop_leases_every_job()
    {
        var recorder = new JobRecorder();
        var watch = new LeaseWatch();
        await using var server = await StartAsync(recorder, watch, new Dictionary<string, string?> { ["Kiln:Queue:LeaseOnEnqueue"] = "false" });
        await WaitIdleAsync(server, TestKinds.Queue);

        var id = await server.EnqueueAsync();

        await recorder.StartedAsync(id);
        await server.WaitForStateAsync(id, "completed");
        Assert.Contains(id, watch.Leased.Keys);
    }

    /// <summary>
    /// The lease rides in a transaction of its own after the jobs', behind an error barrier, so it runs even when the
    /// insert failed, and the enqueue's error ends it before that lease's results are read. It must then lease nothing:
    /// here a job written behind the loop's back waits ready, and the enqueue's own job breaks a foreign key.
    /// </summary>
    [Fact]
    public async Task An_enqueue_whose_insert_fails_leases_nothing_for_the_loop()
    {
        var recorder = new JobRecorder();
        var watch = new LeaseWatch();
        await using var server = await StartAsync(recorder, watch);
        await WaitIdleAsync(server, TestKinds.Queue);
        var waiting = Guid.NewGuid();
        await server.ExecuteAsync(
            "insert into jobs (id, kind, queue, state, priority, max_attempts) values (@id, @kind, @queue, 'queued', 10, 3)",
            ("id", waiting), ("kind", TestKinds.Run), ("queue", TestKinds.Queue));

        var broken = QueueServer.NewJob() with { OwnerId = Guid.NewGuid() };
        var error = await Assert.ThrowsAsync<PostgresException>(() => server.Get<JobStore>().EnqueueAsync([broken], CancellationToken.None));

        Assert.Equal(PostgresErrorCodes.ForeignKeyViolation, error.SqlState);
        Assert.Equal("queued", (await server.JobAsync(waiting)).State);
        Assert.Equal(0, await server.ScalarAsync("select count(*)::int from jobs where id = @id", ("id", broken.Id)));
    }

    /// <summary>
    /// One job's enqueue returns once the job is durable, before the lease that rode along is read: here that read is
    /// held, the call has returned, and the job is leased and starts only once the read goes on.
    /// </summary>
    [Fact]
    public async Task One_job_enqueue_returns_before_the_lease_that_rode_along_is_read()
    {
        var recorder = new JobRecorder();
        var watch = new LeaseWatch();
        var held = new HeldReads();
        await using var server = await StartAsync(recorder, watch, services: s =>
        {
            s.AddSingleton<LeaseAtEnqueue>();
            s.AddSingleton<ILeaseAtEnqueue>(sp => held.Wrap(sp.GetRequiredService<LeaseAtEnqueue>()));
        });
        await WaitIdleAsync(server, TestKinds.Queue);

        var id = await server.EnqueueAsync().WaitAsync(TimeSpan.FromSeconds(60));

        await Poll.UntilAsync(() => held.Waiting, "the lease's read to wait");
        await Poll.UntilAsync(async () => (await server.JobAsync(id)).State == "running", "the lease to commit");
        Assert.Empty(recorder.Runs);
        held.Release();
        var run = await recorder.StartedAsync(id);
        await server.WaitForStateAsync(id, "completed");
        Assert.Equal(1, run.Attempt);
        Assert.DoesNotContain(id, watch.Leased.Keys);
    }

    private static Task<KilnServer> StartAsync(
        JobRecorder recorder, LeaseWatch watch, Dictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        // A long idle poll: a loop leases only when woken, so what the watch sees comes from the enqueue's wake-up.
        var all = new Dictionary<string, string?> { ["Kiln:Queue:IdlePollSeconds"] = "600", ["Kiln:Queue:LeaseOnEnqueue"] = "true" };
        foreach (var (key, value) in settings ?? [])
        {
            all[key] = value;
        }

        return QueueServer.StartAsync(recorder, all, services: s =>
        {
            s.AddSingleton<JobDispatcher>();
            s.AddSingleton<IJobDispatcher>(sp => watch.Wrap(sp.GetRequiredService<JobDispatcher>()));
            services?.Invoke(s);
        });
    }

    private static Task WaitIdleAsync(KilnServer server, string queue) =>
        Poll.UntilAsync(() => server.Get<IdleLoops>().AnyIdle(queue), $"the {queue} loop to wait idle");

    /// <summary>Records every job a dispatch loop leased through <see cref="IJobDispatcher.LeaseAsync"/>.</summary>
    private sealed class LeaseWatch
    {
        public ConcurrentDictionary<Guid, string> Leased { get; } = new();

        public IJobDispatcher Wrap(IJobDispatcher inner) => new Watched(inner, this);

        private sealed class Watched(IJobDispatcher inner, LeaseWatch watch) : IJobDispatcher
        {
            public async Task<LeaseResult> LeaseAsync(LeaseRequest request, CancellationToken cancellationToken)
            {
                var result = await inner.LeaseAsync(request, cancellationToken);
                foreach (var job in result.Jobs)
                {
                    watch.Leased[job.JobId] = request.WorkerId;
                }

                return result;
            }

            public ValueTask<bool> ReportProgressAsync(ProgressReport report, CancellationToken cancellationToken) => inner.ReportProgressAsync(report, cancellationToken);

            public Task<int> HeartbeatAsync(string workerId, IReadOnlyCollection<Guid> leaseIds, CancellationToken cancellationToken) =>
                inner.HeartbeatAsync(workerId, leaseIds, cancellationToken);

            public Task<bool> CompleteAsync(CompletionReport report, CancellationToken cancellationToken) => inner.CompleteAsync(report, cancellationToken);

            public Task<bool> FailAsync(FailureReport report, CancellationToken cancellationToken) => inner.FailAsync(report, cancellationToken);

            public Task<bool> ReleaseAsync(Guid jobId, Guid leaseId, CancellationToken cancellationToken) => inner.ReleaseAsync(jobId, leaseId, cancellationToken);
        }
    }

    /// <summary>Holds the read of every lease that rides along with an enqueue until released.</summary>
    private sealed class HeldReads
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _waiting;

        public bool Waiting => _waiting;

        public void Release() => _released.TrySetResult();

        public ILeaseAtEnqueue Wrap(ILeaseAtEnqueue inner) => new Leases(inner, this);

        private sealed class Leases(ILeaseAtEnqueue inner, HeldReads held) : ILeaseAtEnqueue
        {
            public IEnqueueLease? TryAdd(NpgsqlBatch batch, string queue, Guid guard) =>
                inner.TryAdd(batch, queue, guard) is { } lease ? new Held(lease, held) : null;
        }

        private sealed class Held(IEnqueueLease inner, HeldReads held) : IEnqueueLease
        {
            public string Queue => inner.Queue;

            public bool Drained => inner.Drained;

            public async Task ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
            {
                held._waiting = true;
                await held._released.Task;
                await inner.ReadAsync(reader, cancellationToken);
            }

            public Task StartAsync() => inner.StartAsync();

            public void Dispose() => inner.Dispose();
        }
    }
}
