using System.Text.Json.Nodes;
using Kiln.Storage;

namespace Kiln.Queue;

/// <summary>
/// The one contract between the queue and whoever runs jobs. In-process workers call it directly; the remote-worker
/// endpoint calls it on behalf of a worker connected over a WebSocket. Every call names the lease it acts under,
/// and a call whose lease is no longer held (expired, cancelled, already finished) is refused with <c>false</c>.
/// </summary>
internal interface IJobDispatcher
{
    /// <summary>Leases up to <see cref="LeaseRequest.Max"/> ready jobs of the given kinds from one queue.</summary>
    Task<LeaseResult> LeaseAsync(LeaseRequest request, CancellationToken cancellationToken);

    /// <summary>Renews the lease and records progress (throttled); events go out at once.</summary>
    ValueTask<bool> ReportProgressAsync(ProgressReport report, CancellationToken cancellationToken);

    /// <summary>Renews leases without progress: a worker's heartbeat for the jobs it holds.</summary>
    Task<int> HeartbeatAsync(string workerId, IReadOnlyCollection<Guid> leaseIds, CancellationToken cancellationToken);

    /// <summary>Publishes the outputs staged for the job and marks it completed, atomically.</summary>
    Task<bool> CompleteAsync(CompletionReport report, CancellationToken cancellationToken);

    /// <summary>Records a failure: retried with backoff while attempts remain and the error is retryable.</summary>
    Task<bool> FailAsync(FailureReport report, CancellationToken cancellationToken);

    /// <summary>Gives a lease back without counting the attempt (graceful shutdown).</summary>
    Task<bool> ReleaseAsync(Guid jobId, Guid leaseId, CancellationToken cancellationToken);
}

internal sealed record LeaseRequest(string WorkerId, string Queue, IReadOnlyCollection<string> Kinds, int Max);

/// <param name="Jobs">The leased jobs, possibly none.</param>
/// <param name="RetryAfter">When nothing (more) was ready: how long until something may be, a delayed job or a rate-limit window, if known.</param>
internal sealed record LeaseResult(IReadOnlyList<JobLease> Jobs, TimeSpan? RetryAfter)
{
    public static readonly LeaseResult Empty = new([], null);

    /// <summary>
    /// The lease took every job that was ready, fewer than asked for: another lease now would find nothing, so the
    /// loop waits for a wake-up or <see cref="RetryAfter"/> instead (an empty lease is always drained).
    /// </summary>
    public bool Drained { get; init; }
}

/// <summary>A job handed to a worker, with what it needs to run it.</summary>
internal sealed record JobLease
{
    public required Guid JobId { get; init; }
    public required Guid LeaseId { get; init; }
    public required string Kind { get; init; }
    public required string Queue { get; init; }
    public required int Attempt { get; init; }
    public required int MaxAttempts { get; init; }
    public required DateTimeOffset LeaseExpiresAt { get; init; }
    public JsonObject Params { get; init; } = [];
    public LeasedAsset? Asset { get; init; }
}

/// <summary>The asset a job works on. <see cref="Path"/> is relative to the data directory.</summary>
internal sealed record LeasedAsset(
    Guid Id,
    string Kind,
    string ContentType,
    string OriginalName,
    long Size,
    string Path,
    string? Category,
    JsonObject Metadata);

internal sealed record ProgressReport(
    Guid JobId,
    Guid LeaseId,
    double Progress,
    string? Stage = null,
    double? Speed = null,
    double? EtaSeconds = null,
    long? TotalBytes = null);

/// <summary>
/// A finished job. <see cref="StagingDirectory"/> holds the files named in <see cref="Outputs"/> (paths relative to it);
/// the dispatcher moves it into place with one rename.
/// </summary>
internal sealed record CompletionReport(
    Guid JobId,
    Guid LeaseId,
    JsonNode? Result = null,
    IReadOnlyList<OutputFile>? Outputs = null,
    string? StagingDirectory = null,
    JsonObject? AssetMetadata = null);

internal sealed record FailureReport(Guid JobId, Guid LeaseId, string ErrorCode, string Message, bool Retryable = true);
