using Kiln.Jobs;
using Kiln.Queue;

namespace Kiln.Tests.Queue;

/// <summary>
/// A lease that comes back short (fewer jobs than asked for) is <see cref="LeaseResult.Drained"/> and says, from the
/// same round trip, when the queue's next delayed job is due, so the dispatch loop does not lease again at once only
/// to find nothing. A full lease says neither: there may be more.
/// </summary>
public sealed class ShortLeaseTests : HandLeasedQueueTests
{
    [Fact]
    public async Task A_short_lease_is_drained_and_says_when_the_next_delayed_job_is_due()
    {
        var ready = await Server.EnqueueAsync();
        await Server.EnqueueAsync(runAt: DateTimeOffset.UtcNow.AddMinutes(10));

        var result = await LeaseAsync(max: 5);

        Assert.Equal(ready, Assert.Single(result.Jobs).JobId);
        Assert.True(result.Drained);
        Assert.NotNull(result.RetryAfter);
        Assert.InRange(result.RetryAfter.Value.TotalMinutes, 9, 10);
    }

    [Fact]
    public async Task A_short_lease_of_the_last_ready_job_has_nothing_to_wait_for()
    {
        var ready = await Server.EnqueueAsync();

        var result = await LeaseAsync(max: 5);

        Assert.Equal(ready, Assert.Single(result.Jobs).JobId);
        Assert.True(result.Drained);
        Assert.Null(result.RetryAfter);
    }

    [Fact]
    public async Task A_full_lease_is_not_drained()
    {
        await Server.EnqueueAsync();
        await Server.EnqueueAsync();
        await Server.EnqueueAsync();

        var result = await LeaseAsync(max: 2);

        Assert.Equal(2, result.Jobs.Count);
        Assert.False(result.Drained);
        Assert.Null(result.RetryAfter);
    }

    private Task<LeaseResult> LeaseAsync(int max) =>
        Server.NewLeaser(new QueueOptions()).LeaseAsync(new LeaseRequest("fake-worker", TestKinds.Queue, [TestKinds.Run], max), CancellationToken.None);
}
