using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Kiln.Workers;

/// <summary>
/// The remote-worker protocol (docs/workers.md): JSON text messages, one per WebSocket message, each an object
/// with a <c>type</c>. Shared by the server endpoint and <c>kiln worker</c>, so both read the same shapes.
/// </summary>
internal static class WorkerProtocol
{
    public const int Version = 1;

    // Worker to server.
    public const string Hello = "hello";
    public const string Heartbeat = "heartbeat";
    public const string Progress = "progress";
    public const string Complete = "complete";
    public const string Fail = "fail";
    public const string Release = "release";
    public const string Drain = "drain";

    // Server to worker.
    public const string Welcome = "welcome";
    public const string Lease = "lease";
    public const string Cancel = "cancel";
    public const string Rejected = "rejected";
    public const string Ack = "ack";
    public const string Shutdown = "shutdown";

    /// <summary>
    /// Web defaults; required constructor parameters and non-nullable annotations are enforced, so a missing or null
    /// field is an error. Optional fields are the parameters with defaults (nulls are not written).
    /// </summary>
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web)
    {
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 64,
    };

    /// <summary>
    /// Parses a message and reads its type; the document is null, with a reason, when it is not a JSON object with a
    /// string <c>type</c>. The caller disposes the document.
    /// </summary>
    public static (JsonDocument? Document, string? Type, string? Error) Read(ReadOnlyMemory<byte> utf8)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            return (null, null, "malformed");
        }

        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
        {
            document.Dispose();
            return (null, null, "malformed");
        }

        return (document, type.GetString(), null);
    }

    /// <summary>Binds a message body; null when a field is missing or has the wrong type.</summary>
    public static T? Bind<T>(JsonElement root)
        where T : class
    {
        try
        {
            return root.Deserialize<T>(Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static byte[] Encode<T>(T message) => JsonSerializer.SerializeToUtf8Bytes(message, Json);

    /// <summary>A path relative to a job's output directory: '/'-separated, no empty, '.' or '..' segments, no control characters.</summary>
    public static bool IsSafeRelativePath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path.Length > 1024 || path[0] == '/' || path.Contains('\\', StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment.Length is 0 or > 255 || segment is "." or ".." || segment.Any(char.IsControl) || segment.Contains(':', StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    public static string? Validate(HelloMessage hello, int maxSlots)
    {
        if (hello.Protocol != Version)
        {
            return $"protocol {hello.Protocol} is not supported; this server speaks {Version}";
        }

        if (hello.Name.Length is 0 or > 64 || !hello.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            return "name must be 1-64 characters of letters, digits, '.', '_' or '-'";
        }

        if (hello.Version.Length > 64)
        {
            return "version is longer than 64 characters";
        }

        if (hello.Kinds.Length is 0 or > 200 || hello.Kinds.Any(k => k.Length is 0 or > 100))
        {
            return "kinds must name 1-200 job kinds";
        }

        return hello.Slots < 1 || hello.Slots > maxSlots ? $"slots must be between 1 and {maxSlots}" : null;
    }

    public static string? Validate(ProgressMessage progress)
    {
        if (!double.IsFinite(progress.Progress) || progress.Progress is < 0 or > 100)
        {
            return "progress_out_of_range";
        }

        if (progress.Stage is { Length: > 200 }
            || progress.Speed is { } speed && (!double.IsFinite(speed) || speed < 0)
            || progress.Eta is { } eta && (!double.IsFinite(eta) || eta < 0)
            || progress.TotalBytes is < 0)
        {
            return "invalid_field";
        }

        return null;
    }

    public static string? Validate(CompleteMessage complete, int maxOutputs)
    {
        var outputs = complete.Outputs ?? [];
        if (outputs.Count > maxOutputs)
        {
            return "too_many_outputs";
        }

        foreach (var o in outputs)
        {
            if (o.Type.Length is 0 or > 50 || o.ContentType.Length is 0 or > 200 || o.Variant is { Length: > 200 }
                || o.Width is < 0 || o.Height is < 0 || o.Duration is { } d && (!double.IsFinite(d) || d < 0))
            {
                return "invalid_field";
            }

            if (!IsSafeRelativePath(o.Path))
            {
                return "invalid_output_path";
            }
        }

        return outputs.Select(o => (o.Type, o.Variant ?? "")).Distinct().Count() == outputs.Count ? null : "duplicate_output";
    }

    public static string? Validate(FailMessage fail) =>
        fail.ErrorCode.Length is 0 or > 100 || fail.Message.Length > 16_000 ? "invalid_field" : null;
}

// Worker to server.

internal sealed record HelloMessage(string Type, string Name, string Version, string[] Kinds, int Slots, int Protocol);

internal sealed record HeartbeatMessage(string Type);

internal sealed record DrainMessage(string Type);

internal sealed record ProgressMessage(
    string Type, Guid JobId, Guid LeaseId, double Progress, string? Stage = null, double? Speed = null, double? Eta = null, long? TotalBytes = null);

internal sealed record CompleteMessage(
    string Type, Guid JobId, Guid LeaseId, JsonNode? Result = null, List<OutputMessage>? Outputs = null, JsonObject? AssetMetadata = null);

/// <summary>An output named in a completion; <see cref="Path"/> is relative to the job's uploaded output directory.</summary>
internal sealed record OutputMessage(
    string Type, string Path, string ContentType, string? Variant = null, int? Width = null, int? Height = null, double? Duration = null);

internal sealed record FailMessage(string Type, Guid JobId, Guid LeaseId, string ErrorCode, string Message, bool Retryable = true);

internal sealed record ReleaseMessage(string Type, Guid JobId, Guid LeaseId);

// Server to worker.

internal sealed record WelcomeMessage(
    string Type, string WorkerId, string[] Kinds, string[] IgnoredKinds, double HeartbeatSeconds, int MaxMessageBytes, int Protocol);

internal sealed record LeaseMessage(
    string Type,
    Guid JobId,
    Guid LeaseId,
    string Kind,
    string Queue,
    int Attempt,
    int MaxAttempts,
    DateTimeOffset LeaseExpiresAt,
    JsonObject Params,
    string Token,
    string OutputUrl,
    LeaseAssetMessage? Asset = null,
    string? InputUrl = null);

internal sealed record LeaseAssetMessage(
    Guid Id, string Kind, string ContentType, string OriginalName, long Size, JsonObject Metadata, string? Category = null);

internal sealed record CancelMessage(string Type, Guid JobId, Guid LeaseId, string Reason);

internal sealed record RejectedMessage(string Type, string Code, string Message, string? Of = null, Guid? JobId = null);

internal sealed record AckMessage(string Type, string Of, Guid JobId);

internal sealed record ShutdownMessage(string Type, string Message, double GraceSeconds);
