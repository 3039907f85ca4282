using Kiln.Jobs;

namespace Kiln.Processing;

/// <summary>
/// Refuses to run a job on an asset of a media kind its kind is not for. Uploads and batches already answer 400
/// for such a request; this is the last line for a job that got into the queue another way, because a handler
/// that shells out to ffmpeg must never be handed a file that is not the media it expects (a text playlist names
/// other files). Wraps every handler that declares <see cref="JobKindInfo.MediaKinds"/>, in-process and remote alike.
/// </summary>
internal sealed class MediaKindGuard(IJobHandler inner, JobKindInfo kind) : IJobHandler
{
    public string Kind => inner.Kind;

    public Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken) =>
        kind.RunsOn(context.Asset?.Kind)
            ? inner.ExecuteAsync(context, cancellationToken)
            : throw new JobFailedException("job.media_kind_mismatch", kind.WrongMediaKind(context.Asset?.Kind));
}
