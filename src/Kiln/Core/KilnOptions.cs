using System.ComponentModel.DataAnnotations;

namespace Kiln.Core;

/// <summary>Top-level settings, section <c>Kiln</c> (environment prefix <c>Kiln__</c>).</summary>
internal sealed class KilnOptions : IValidatableObject
{
    public const string Section = "Kiln";

    /// <summary>Where originals, derivatives and temporary files live. Kiln__DataDirectory.</summary>
    [Required(AllowEmptyStrings = false)]
    public string DataDirectory { get; set; } = "data";

    /// <summary>A node name used as lease owner prefix and in logs; defaults to the machine name and process id.</summary>
    public string? NodeName { get; set; }

    /// <summary>/health/ready reports unhealthy while the data directory's disk has less free space than this. Kiln__MinFreeDiskBytes.</summary>
    [Range(0, long.MaxValue)]
    public long MinFreeDiskBytes { get; set; } = 512L * 1024 * 1024;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            yield break;
        }

        // Fail at start, naming the setting, rather than on the first upload with a bare IOException.
        string? problem = null;
        try
        {
            var full = Path.GetFullPath(DataDirectory);
            Directory.CreateDirectory(full);
            var probe = Path.Combine(full, ".write-test-" + Guid.NewGuid().ToString("N"));
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            problem = e.Message;
        }

        if (problem is not null)
        {
            yield return new ValidationResult(
                $"{Section}:DataDirectory (env Kiln__DataDirectory) = {DataDirectory}: the directory cannot be created or written: {problem}", [nameof(DataDirectory)]);
        }
    }
}

internal sealed class UploadOptions
{
    public const string Section = "Kiln:Uploads";

    /// <summary>Largest single file accepted; larger uploads answer 413. Kiln__Uploads__MaxFileBytes.</summary>
    [Range(1, long.MaxValue)]
    public long MaxFileBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>Largest request body for an upload (all files together). Kiln__Uploads__MaxRequestBytes.</summary>
    [Range(1, long.MaxValue)]
    public long MaxRequestBytes { get; set; } = 4L * 1024 * 1024 * 1024;

    /// <summary>Most files in one upload request. Kiln__Uploads__MaxFiles.</summary>
    [Range(1, 10_000)]
    public int MaxFiles { get; set; } = 50;

    /// <summary>Largest <c>settings</c> form field in bytes. Kiln__Uploads__MaxSettingsBytes.</summary>
    [Range(1, 1024 * 1024)]
    public int MaxSettingsBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// An upload whose body arrives slower than this (after <see cref="MinRateGraceSeconds"/>) is answered 408 and
    /// its partial file removed, so a stalled client cannot hold a connection and a .part file forever; 0 turns the
    /// check off. Kiln__Uploads__MinBytesPerSecond.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int MinBytesPerSecond { get; set; } = 240;

    /// <summary>
    /// How long an upload may stay under <see cref="MinBytesPerSecond"/> before it is cut; more than Kestrel's 1 s
    /// heartbeat. Kiln__Uploads__MinRateGraceSeconds.
    /// </summary>
    [Range(2, 3600)]
    public int MinRateGraceSeconds { get; set; } = 10;
}
