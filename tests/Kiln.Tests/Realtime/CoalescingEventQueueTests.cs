using Kiln.Jobs;
using Kiln.Realtime;

namespace Kiln.Tests.Realtime;

public sealed class CoalescingEventQueueTests
{
    private static readonly Guid A = Guid.CreateVersion7();
    private static readonly Guid B = Guid.CreateVersion7();

    [Fact]
    public void A_newer_progress_replaces_one_still_waiting_and_keeps_its_place()
    {
        using var queue = new CoalescingEventQueue(100);
        queue.Enqueue(Progress(A, 10));
        queue.Enqueue(Progress(B, 5));
        queue.Enqueue(Progress(A, 20));
        queue.Enqueue(Progress(A, 30));

        var drained = Drain(queue);

        Assert.Equal([(A, 30.0), (B, 5.0)], drained.Select(e => (e.JobId, e.Data["progress"]!.GetValue<double>())));
        Assert.Equal(2, queue.Coalesced);
    }

    [Fact]
    public void Progress_after_a_state_change_is_not_folded_into_progress_before_it()
    {
        using var queue = new CoalescingEventQueue(100);
        queue.Enqueue(Progress(A, 90));
        queue.Enqueue(JobEvents.Update(A, null, JobState.Paused));
        queue.Enqueue(Progress(A, 10));
        queue.Enqueue(JobEvents.Completed(A, null, null));

        Assert.Equal(["job-progress", "job-update", "job-progress", "job-completed"], Drain(queue).Select(e => e.Type));
        Assert.Equal(0, queue.Coalesced);
    }

    [Fact]
    public void When_full_the_oldest_event_is_dropped_and_counted()
    {
        using var queue = new CoalescingEventQueue(3);
        for (var i = 0; i < 5; i++)
        {
            queue.Enqueue(JobEvents.Queued(Guid.CreateVersion7(), null, i));
        }

        var drained = Drain(queue);

        Assert.Equal([2L, 3L, 4L], drained.Select(e => e.Data["position"]!.GetValue<long>()));
        Assert.Equal(2, queue.Dropped);
    }

    [Fact]
    public void A_dropped_progress_slot_no_longer_absorbs_later_progress()
    {
        using var queue = new CoalescingEventQueue(2);
        queue.Enqueue(Progress(A, 10));
        queue.Enqueue(JobEvents.Queued(B, null));
        queue.Enqueue(JobEvents.Queued(B, null));
        queue.Enqueue(Progress(A, 50));

        var drained = Drain(queue);

        Assert.Equal(["job-queued", "job-progress"], drained.Select(e => e.Type));
        Assert.Equal(50, drained[1].Data["progress"]!.GetValue<double>());
    }

    [Fact]
    public async Task A_waiting_reader_wakes_when_an_event_arrives()
    {
        using var queue = new CoalescingEventQueue(10);
        var waiting = queue.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);

        queue.Enqueue(Progress(A, 1));

        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        Assert.Single(Drain(queue));
    }

    private static JobEvent Progress(Guid job, double progress) => JobEvents.Progress(job, null, "s", progress, null, null, null);

    private static List<JobEvent> Drain(CoalescingEventQueue queue)
    {
        var list = new List<JobEvent>();
        queue.Drain(list, 1000);
        return list;
    }
}
