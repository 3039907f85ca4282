using System.ComponentModel.DataAnnotations;

namespace Kiln.Tus;

/// <summary>Section <c>Kiln:Tus</c>: resumable uploads. Their size limit is <c>Kiln:Uploads:MaxFileBytes</c>, as for multipart uploads.</summary>
internal sealed class TusOptions
{
    public const string Section = "Kiln:Tus";

    /// <summary>
    /// An unfinished upload is deleted this many hours after its last PATCH (each PATCH extends it); a finished one's
    /// record (which answers HEAD with the asset id) as long after it finished. Kiln__Tus__ExpirationHours.
    /// </summary>
    [Range(0.001, 24 * 365)]
    public double ExpirationHours { get; set; } = 24;

    /// <summary>How often expired uploads are swept. Kiln__Tus__SweepIntervalSeconds.</summary>
    [Range(1, 86_400)]
    public double SweepIntervalSeconds { get; set; } = 600;

    /// <summary>Unfinished uploads one key may have at once; creating another answers 429. Kiln__Tus__MaxPartialUploadsPerKey.</summary>
    [Range(1, 100_000)]
    public int MaxPartialUploadsPerKey { get; set; } = 20;

    /// <summary>Largest Upload-Metadata header in bytes (it carries the settings JSON). Kiln__Tus__MaxMetadataBytes.</summary>
    [Range(64, 1024 * 1024)]
    public int MaxMetadataBytes { get; set; } = 32 * 1024;
}
