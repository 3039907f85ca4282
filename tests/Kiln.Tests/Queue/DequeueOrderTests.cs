using System.Collections.Concurrent;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

/// <summary>Leasing by hand (no in-process slots for queue "test"): order, SKIP LOCKED, kinds.</summary>
public sealed class DequeueOrderTests : HandLeasedQueueTests
{
    [Fact]
    public async Task Jobs_are_leased_by_priority_then_run_at_then_id()
    {
        var now = DateTimeOffset.UtcNow;
        var lowId = Guid.Parse("00000000-0000-7000-8000-000000000001");
        var highId = Guid.Parse("00000000-0000-7000-8000-000000000002");
        var late = QueueServer.NewJob(priority: 10, runAt: now.AddSeconds(-10)) with { Id = highId };
        var urgent = QueueServer.NewJob(priority: 5, runAt: now.AddSeconds(-1));
        var early = QueueServer.NewJob(priority: 10, runAt: now.AddSeconds(-20));
        var first = QueueServer.NewJob(priority: 1, runAt: now.AddSeconds(-5));
        var sameTimeLowerId = QueueServer.NewJob(priority: 10, runAt: now.AddSeconds(-10)) with { Id = lowId };
        await Server.Get<Kiln.Jobs.JobStore>().EnqueueAsync([late, urgent, early, first, sameTimeLowerId], CancellationToken.None);

        var order = new List<Guid>();
        for (var i = 0; i < 5; i++)
        {
            var leased = await Server.LeaseAsync(1);
            order.Add(Assert.Single(leased.Jobs).JobId);
        }

        Assert.Equal([first.Id, urgent.Id, early.Id, lowId, highId], order);
    }

    [Fact]
    public async Task A_batch_lease_returns_jobs_in_queue_order()
    {
        var ids = new List<Guid>();
        foreach (var priority in new[] { 30, 20, 10 })
        {
            ids.Add(await Server.EnqueueAsync(priority: priority));
        }

        var leased = await Server.LeaseAsync(10);
        Assert.Equal([ids[2], ids[1], ids[0]], leased.Jobs.Select(j => j.JobId));
    }

    [Fact]
    public async Task Concurrent_leases_never_hand_out_the_same_job_twice()
    {
        var jobs = Enumerable.Range(0, 300).Select(_ => QueueServer.NewJob()).ToList();
        await Server.Get<Kiln.Jobs.JobStore>().EnqueueAsync(jobs, CancellationToken.None);

        var leasedBy = new ConcurrentBag<(Guid JobId, string Worker)>();
        await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            while (true)
            {
                var leased = await Server.LeaseAsync(7, worker: $"worker-{w}");
                if (leased.Jobs.Count == 0)
                {
                    return;
                }

                foreach (var job in leased.Jobs)
                {
                    leasedBy.Add((job.JobId, $"worker-{w}"));
                }
            }
        })));

        Assert.Equal(300, leasedBy.Count);
        Assert.Equal(300, leasedBy.Select(l => l.JobId).Distinct().Count());
        Assert.Equal(300L, await Server.ScalarAsync("select count(*) from jobs where state = 'running' and attempts = 1 and kind = 'test.run'"));
        var sample = leasedBy.First();
        Assert.Equal(sample.Worker, (await Server.JobAsync(sample.JobId)).LeaseOwner);
    }

    [Fact]
    public async Task A_bulk_enqueue_keeps_every_jobs_params_and_priority()
    {
        var jobs = Enumerable.Range(0, 400)
            .Select(i => QueueServer.NewJob(parameters: new() { ["n"] = i }, priority: i % 2 == 0 ? 1 : 5, maxAttempts: 2))
            .ToList();
        var enqueued = await Server.Get<Kiln.Jobs.JobStore>().EnqueueAsync(jobs, CancellationToken.None);
        Assert.All(enqueued.Jobs, j => Assert.Equal("queued", j.State));
        Assert.Equal(jobs.Select(j => j.Id), enqueued.Jobs.Select(j => j.Id));

        var leased = (await Server.LeaseAsync(500)).Jobs;

        Assert.Equal(400, leased.Count);
        Assert.All(leased.Take(200), l => Assert.Equal(0, l.Params["n"]!.GetValue<int>() % 2));
        Assert.All(leased.Skip(200), l => Assert.Equal(1, l.Params["n"]!.GetValue<int>() % 2));
        Assert.Equal(Enumerable.Range(0, 400).Sum(), leased.Sum(l => l.Params["n"]!.GetValue<int>()));
        Assert.All(leased, l => Assert.Equal(2, l.MaxAttempts));
    }

    [Fact]
    public async Task Only_the_kinds_asked_for_are_leased()
    {
        var fixedJob = await Server.EnqueueAsync(TestKinds.Fixed, priority: 1);
        var runJob = await Server.EnqueueAsync(TestKinds.Run, priority: 50);

        var leased = await Server.LeaseAsync(10, kind: TestKinds.Run);

        Assert.Equal(runJob, Assert.Single(leased.Jobs).JobId);
        Assert.Equal("queued", (await Server.JobAsync(fixedJob)).State);
    }

    [Fact]
    public async Task A_lease_carries_the_job_params_attempt_and_expiry()
    {
        var id = await Server.EnqueueAsync(parameters: new() { ["answer"] = 42 }, maxAttempts: 4);

        var lease = Assert.Single((await Server.LeaseAsync(1)).Jobs);

        Assert.Equal(id, lease.JobId);
        Assert.Equal(42, lease.Params["answer"]!.GetValue<int>());
        Assert.Equal(1, lease.Attempt);
        Assert.Equal(4, lease.MaxAttempts);
        Assert.InRange(lease.LeaseExpiresAt - DateTimeOffset.UtcNow, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(31));
        var row = await Server.JobAsync(id);
        Assert.Equal("running", row.State);
        Assert.Equal("fake-worker", row.LeaseOwner);
        Assert.NotNull(row.StartedAt);
    }
}
