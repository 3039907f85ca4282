using System.Text.Json.Nodes;

namespace Kiln.Jobs;

/// <summary>A job row as the API shows it.</summary>
internal sealed record Job
{
    public required Guid Id { get; init; }
    public Guid? AssetId { get; init; }
    public Guid? BatchId { get; init; }
    public Guid? ParentId { get; init; }
    public Guid? OwnerId { get; init; }
    public required string Kind { get; init; }
    public required string Queue { get; init; }
    public required string State { get; init; }
    public int Priority { get; init; }
    public DateTimeOffset RunAt { get; init; }
    public int Attempts { get; init; }
    public int MaxAttempts { get; init; }
    public string? Stage { get; init; }
    public double Progress { get; init; }
    public double? Speed { get; init; }
    public double? EtaSeconds { get; init; }
    public long? TotalBytes { get; init; }
    public JsonObject? Params { get; init; }
    public JsonNode? Result { get; init; }
    public string? ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }
    public string? LeaseOwner { get; init; }
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    public DateTimeOffset? LastProgressAt { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>Every attempt, oldest first. Only a single job carries it (GET /api/jobs/{id}); lists leave it out.</summary>
    public IReadOnlyList<JobAttempt>? History { get; init; }
}

/// <summary>
/// One lease a job was given and how it ended. <see cref="Outcome"/> is null while the attempt runs; the error is this
/// attempt's own, kept when a later attempt fails differently.
/// </summary>
internal sealed record JobAttempt(
    int Attempt,
    Guid LeaseId,
    string? Worker,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt,
    string? Outcome,
    string? ErrorCode,
    string? ErrorMessage);

/// <summary>What a caller asks to enqueue.</summary>
internal sealed record NewJob
{
    public Guid Id { get; init; } = Guid.CreateVersion7();
    public required string Kind { get; init; }
    public required string Queue { get; init; }
    public Guid? AssetId { get; init; }
    public Guid? BatchId { get; init; }
    public Guid? ParentId { get; init; }
    public Guid? OwnerId { get; init; }
    public int Priority { get; init; } = 10;
    public DateTimeOffset? RunAt { get; init; }
    public int MaxAttempts { get; init; } = 3;
    public JsonObject? Params { get; init; }
}
