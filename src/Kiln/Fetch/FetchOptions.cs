using System.ComponentModel.DataAnnotations;

namespace Kiln.Fetch;

/// <summary>URL import, section <c>Kiln:Fetch</c> (environment prefix <c>Kiln__Fetch__</c>). Deny by default.</summary>
internal sealed class FetchOptions : IValidatableObject
{
    public const string Section = "Kiln:Fetch";

    /// <summary>Allow loopback, private, link-local, CGNAT and unique-local addresses. Off: only for LANs and tests.</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>When not empty, only these hosts (exact, or a suffix written <c>.example.com</c>) may be fetched.</summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>Hosts never fetched (exact, or a suffix written <c>.example.com</c>); checked on every connection.</summary>
    public List<string> DeniedHosts { get; set; } = [];

    /// <summary>Largest download, checked against Content-Length up front and while streaming.</summary>
    [Range(1, long.MaxValue)]
    public long MaxBytes { get; set; } = 10L * 1024 * 1024 * 1024;

    [Range(0.1, 600)]
    public double ConnectTimeoutSeconds { get; set; } = 15;

    /// <summary>No bytes for this long is a stall: the attempt is aborted and retried (resuming).</summary>
    [Range(0.1, 3600)]
    public double IdleTimeoutSeconds { get; set; } = 30;

    [Range(0, 20)]
    public int MaxRedirects { get; set; } = 5;

    /// <summary>Longest a single attempt may run; a longer one is aborted and retried, resuming.</summary>
    [Range(1, 7 * 86_400)]
    public double MaxDurationSeconds { get; set; } = 6 * 3600;

    /// <summary>Default downloader when a request names none: auto, direct or ytdlp.</summary>
    public string Mode { get; set; } = "auto";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Mode is not ("auto" or "direct" or "ytdlp"))
        {
            yield return new ValidationResult($"Kiln:Fetch:Mode must be auto, direct or ytdlp (was '{Mode}').", [nameof(Mode)]);
        }

        foreach (var host in AllowedHosts.Concat(DeniedHosts).Where(h => string.IsNullOrWhiteSpace(h) || h.Contains('/')))
        {
            yield return new ValidationResult($"Kiln:Fetch:AllowedHosts/DeniedHosts must hold host names (was '{host}').", [nameof(AllowedHosts)]);
        }
    }
}
