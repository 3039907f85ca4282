using System.ComponentModel.DataAnnotations;

namespace Kiln.Processing;

/// <summary>In-process workers, section <c>Kiln:Workers</c> (environment prefix <c>Kiln__Workers__</c>).</summary>
internal sealed class WorkerOptions : IValidatableObject
{
    public const string Section = "Kiln:Workers";

    /// <summary>Run jobs in the server process. Turn off on a node that only serves the API and remote workers.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Concurrent jobs per queue in this process, e.g. <c>Kiln__Workers__Slots__video=1</c>. A queue with 0 slots is not served here.</summary>
    public Dictionary<string, int> Slots { get; set; } = new(StringComparer.Ordinal)
    {
        ["default"] = 4,
        ["image"] = 2,
        ["video"] = 1,
        ["audio"] = 2,
        ["transcribe"] = 1,
    };

    /// <summary>On shutdown, how long running jobs may take to finish before they are stopped and released.</summary>
    [Range(0, 86_400)]
    public double ShutdownTimeoutSeconds { get; set; } = 30;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var (queue, slots) in Slots)
        {
            if (slots is < 0 or > 1024)
            {
                yield return new ValidationResult($"Kiln:Workers:Slots:{queue} must be between 0 and 1024 (was {slots}).", [nameof(Slots)]);
            }
        }
    }
}
