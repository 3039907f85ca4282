using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Storage;

namespace Kiln.Processing;

/// <summary>Runs one kind of job. Handlers are stateless singletons; everything about the job is in the context.</summary>
internal interface IJobHandler
{
    string Kind { get; }

    Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken);
}

/// <summary>
/// What a handler gets: the leased job, the asset's file, a private work directory and an output directory
/// (everything written to <see cref="OutputDirectory"/> and named in the outcome is published atomically on
/// completion), and a progress reporter.
/// </summary>
internal sealed class JobContext
{
    public required JobLease Lease { get; init; }

    /// <summary>Absolute path of the asset's original file, or null for jobs without an asset.</summary>
    public string? InputPath { get; init; }

    public required JobDirectories Directories { get; init; }

    /// <summary>A private scratch directory for this job, kept across a pause; created on first use.</summary>
    public string WorkDirectory => Directories.Work;

    /// <summary>Where outputs go; published with one rename on completion. Created on first use.</summary>
    public string OutputDirectory => Directories.Output;

    public required IProgress<JobProgress> Progress { get; init; }

    /// <summary>
    /// Size of the input file: what every progress report gives as <c>totalBytes</c> (the total, not the bytes done
    /// so far; docs/realtime.md). Null for jobs without an input.
    /// </summary>
    public long? InputBytes => _inputBytes ??= InputPath is { } input && File.Exists(input) ? new FileInfo(input).Length : null;

    private long? _inputBytes;

    public Guid JobId => Lease.JobId;

    public JsonObject Params => Lease.Params;

    public LeasedAsset? Asset => Lease.Asset;

    public string RequireInput() => InputPath ?? throw new InvalidOperationException($"Job kind {Lease.Kind} needs an asset.");
}

/// <summary>Progress as a handler reports it: percent 0–100 and optional details.</summary>
internal readonly record struct JobProgress(double Percent, string? Stage = null, double? Speed = null, double? EtaSeconds = null, long? TotalBytes = null);

/// <summary>What a handler returns: a JSON result, the files it wrote, and metadata to merge into the asset.</summary>
internal sealed record JobOutcome(JsonNode? Result = null, IReadOnlyList<OutputFile>? Outputs = null, JsonObject? AssetMetadata = null)
{
    public static readonly JobOutcome Empty = new();
}

/// <summary>A failure the handler knows not to retry (bad input, unsupported format).</summary>
internal sealed class JobFailedException(string errorCode, string message, bool retryable = false, Exception? inner = null)
    : Exception(message, inner)
{
    public string ErrorCode { get; } = errorCode;

    public bool Retryable { get; } = retryable;
}

/// <summary>
/// A job's directories, created only when a handler asks for them: most jobs write files, but the queue's own
/// throughput should not pay two mkdirs and a recursive delete for jobs that write none.
/// </summary>
internal sealed class JobDirectories(string jobsTemp, Guid jobId, Guid leaseId)
{
    private readonly Guid _jobId = jobId;
    private readonly string _work = Path.Combine(jobsTemp, jobId.ToString("N"));
    private bool _created;

    public string Work
    {
        get
        {
            EnsureCreated();
            return _work;
        }
    }

    public string Output
    {
        get
        {
            EnsureCreated();
            return OutputPath;
        }
    }

    /// <summary>The output directory's path, whether or not it exists.</summary>
    public string OutputPath => Path.Combine(_work, "out-" + leaseId.ToString("N")[..8]);

    public bool Created => _created || Directory.Exists(_work);

    /// <summary>Removes the work directory; on a pause only the attempt's outputs go and partial work stays.</summary>
    public void Cleanup(bool keepWork)
    {
        if (!Created)
        {
            return;
        }

        var target = keepWork ? OutputPath : _work;
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }
    }

    /// <summary>
    /// The one clean-up policy at the end of an attempt, in-process and on remote workers: run before the queue hears
    /// of a failure or release (the next attempt may then start here and must find a clean slate). A paused job keeps
    /// its work directory (partial work to resume from); so does a job that lost its lease or stalled while its next
    /// attempt already runs here (the work directory is the job's, the output directory the attempt's).
    /// </summary>
    /// <param name="newerAttemptRunsHere">Asked only after a lost lease or stall, the one case where it can be true.</param>
    public void EndAttempt(JobStopReason? reason, Func<bool> newerAttemptRunsHere, ILogger logger)
    {
        var keepWork = reason switch
        {
            JobStopReason.Paused => true,
            JobStopReason.LeaseLost or JobStopReason.Stalled => newerAttemptRunsHere(),
            _ => false,
        };
        try
        {
            Cleanup(keepWork);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Could not clean the work directory of {JobId}", _jobId);
        }
    }

    private void EnsureCreated()
    {
        if (!_created)
        {
            Directory.CreateDirectory(OutputPath);
            _created = true;
        }
    }
}
