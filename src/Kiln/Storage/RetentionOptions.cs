using System.ComponentModel.DataAnnotations;

namespace Kiln.Storage;

/// <summary>Section <c>Kiln:Retention</c>.</summary>
internal sealed class RetentionOptions
{
    public const string Section = "Kiln:Retention";

    /// <summary>Assets (original and derivatives) expire this many hours after upload; 0 keeps them until deleted. Kiln__Retention__AssetTtlHours.</summary>
    [Range(0, 24 * 365 * 100)]
    public double AssetTtlHours { get; set; }

    /// <summary>
    /// Finished jobs (completed, failed, cancelled) are deleted this many hours after they finished; 0 keeps them,
    /// bounded only by each queue's keep_completed / keep_failed counts. Kiln__Retention__FinishedJobTtlHours.
    /// </summary>
    [Range(0, 24 * 365 * 100)]
    public double FinishedJobTtlHours { get; set; }

    /// <summary>How often expired assets and old jobs are removed. Kiln__Retention__CleanupIntervalSeconds.</summary>
    [Range(1, 86_400)]
    public double CleanupIntervalSeconds { get; set; } = 300;

    /// <summary>
    /// Upload temp files not written for this long are abandoned and deleted by the periodic cleanup (also at start).
    /// Kiln__Retention__OrphanTempMinutes.
    /// </summary>
    [Range(1, 100_000)]
    public double OrphanTempMinutes { get; set; } = 60;
}
