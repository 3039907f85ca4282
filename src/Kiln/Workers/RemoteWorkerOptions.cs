using System.ComponentModel.DataAnnotations;

namespace Kiln.Workers;

/// <summary>The remote-worker endpoint, section <c>Kiln:RemoteWorkers</c> (environment prefix <c>Kiln__RemoteWorkers__</c>).</summary>
internal sealed class RemoteWorkerOptions : IValidatableObject
{
    public const string Section = "Kiln:RemoteWorkers";

    /// <summary>Largest protocol message a worker may send; a larger one is refused and counted.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 256 * 1024;

    /// <summary>How often a worker sends a heartbeat (told to it on connect).</summary>
    [Range(0.1, 300)]
    public double HeartbeatIntervalSeconds { get; set; } = 5;

    /// <summary>A worker silent for this long is disconnected and loses its leases. Must exceed two heartbeat intervals.</summary>
    [Range(0.5, 3600)]
    public double HeartbeatTimeoutSeconds { get; set; } = 20;

    /// <summary>Most concurrent jobs one worker may ask for.</summary>
    [Range(1, 10_000)]
    public int MaxSlotsPerWorker { get; set; } = 256;

    /// <summary>How often connected workers' tokens are checked for revocation (revocations through this node's API act at once).</summary>
    [Range(0.1, 300)]
    public double TokenCheckIntervalSeconds { get; set; } = 2;

    /// <summary>Largest output file a worker may upload.</summary>
    [Range(1, long.MaxValue)]
    public long MaxOutputBytes { get; set; } = 8L * 1024 * 1024 * 1024;

    /// <summary>Most outputs one completion may name.</summary>
    [Range(1, 100_000)]
    public int MaxOutputs { get; set; } = 1000;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (HeartbeatTimeoutSeconds < 2 * HeartbeatIntervalSeconds)
        {
            yield return new ValidationResult(
                $"Kiln:RemoteWorkers:HeartbeatTimeoutSeconds ({HeartbeatTimeoutSeconds}) must be at least twice Kiln:RemoteWorkers:HeartbeatIntervalSeconds ({HeartbeatIntervalSeconds}).",
                [nameof(HeartbeatTimeoutSeconds)]);
        }
    }
}
