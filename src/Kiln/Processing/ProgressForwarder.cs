using Kiln.Queue;

namespace Kiln.Processing;

/// <summary>A handler's <see cref="IProgress{T}"/>: stamps each report with the attempt's lease and posts it to the <see cref="ProgressMailbox"/>.</summary>
internal sealed class ProgressForwarder(ProgressMailbox mailbox, Guid jobId, Guid leaseId) : IProgress<JobProgress>
{
    public void Report(JobProgress value) =>
        mailbox.Post(new ProgressReport(jobId, leaseId, value.Percent, value.Stage, value.Speed, value.EtaSeconds, value.TotalBytes));
}
