using Kiln.Jobs;

namespace Kiln.Tests.Queue;

public sealed class JobSignalsTests
{
    [Fact]
    public void A_stop_for_one_lease_reaches_that_attempt_only_even_when_the_next_attempt_already_runs()
    {
        var signals = new JobSignals();
        var job = Guid.NewGuid();
        var (oldLease, newLease) = (Guid.NewGuid(), Guid.NewGuid());
        var stopped = new List<(Guid Lease, JobStopReason Reason)>();
        using var old = signals.Register(job, oldLease, r => stopped.Add((oldLease, r)));
        using var next = signals.Register(job, newLease, r => stopped.Add((newLease, r)));

        Assert.True(signals.Raise(job, JobStopReason.Stalled, oldLease));
        Assert.Equal([(oldLease, JobStopReason.Stalled)], stopped);

        old.Dispose();
        Assert.False(signals.Raise(job, JobStopReason.Stalled, oldLease));
        Assert.True(signals.Raise(job, JobStopReason.Cancelled));
        Assert.Equal([(oldLease, JobStopReason.Stalled), (newLease, JobStopReason.Cancelled)], stopped);
    }

    [Fact]
    public void Raising_a_job_that_does_not_run_here_says_so()
    {
        var signals = new JobSignals();
        Assert.False(signals.Raise(Guid.NewGuid(), JobStopReason.Cancelled));
        Assert.False(signals.Raise(Guid.NewGuid(), JobStopReason.LeaseLost, Guid.NewGuid()));
    }
}
