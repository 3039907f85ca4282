using System.Text.Json.Nodes;

namespace Kiln.Assets;

internal sealed record Asset
{
    public required Guid Id { get; init; }
    public required Guid OwnerId { get; init; }
    public required string Kind { get; init; }
    public required string ContentType { get; init; }
    public required string OriginalName { get; init; }
    public long Size { get; init; }
    public string? Sha256 { get; init; }
    public required string Path { get; init; }
    public JsonObject Metadata { get; init; } = [];
    public string? Category { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public string Source { get; init; } = "upload";
    public string? SourceUrl { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
}

internal sealed record Derivative(
    Guid Id,
    Guid AssetId,
    Guid? JobId,
    string Type,
    string Variant,
    string Path,
    string ContentType,
    long Size,
    int? Width,
    int? Height,
    double? Duration,
    DateTimeOffset CreatedAt);
