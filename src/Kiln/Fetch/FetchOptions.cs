using System.ComponentModel.DataAnnotations;
using System.Net;

namespace Kiln.Fetch;

/// <summary>URL import, section <c>Kiln:Fetch</c> (environment prefix <c>Kiln__Fetch__</c>). Deny by default.</summary>
internal sealed class FetchOptions : IValidatableObject
{
    public const string Section = "Kiln:Fetch";

    /// <summary>Allow loopback, private, link-local, CGNAT and unique-local addresses. Off: only for LANs and tests.</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>
    /// Networks (CIDR, e.g. <c>192.168.1.20/32</c>) allowed although their range is refused: one LAN server without
    /// opening every private network. Cloud metadata addresses stay refused.
    /// </summary>
    public List<string> AllowedNetworks { get; set; } = [];

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

    /// <summary>yt-dlp's path (Debian's package by default).</summary>
    public string YtDlpPath { get; set; } = "/usr/bin/yt-dlp";

    /// <summary>ffmpeg for yt-dlp's merging and fix-ups; empty = found on PATH.</summary>
    public string FfmpegLocation { get; set; } = "";

    /// <summary>The tallest video yt-dlp may choose (formats that state no height are allowed).</summary>
    [Range(144, 8640)]
    public int MaxHeight { get; set; } = 2160;

    /// <summary>Connections per direct download through aria2c; 0 = Kiln's own single-connection downloader.</summary>
    [Range(0, 16)]
    public int Aria2Connections { get; set; }

    /// <summary>aria2c's path (Debian's <c>aria2</c>).</summary>
    public string Aria2Path { get; set; } = "/usr/bin/aria2c";

    /// <summary>Default downloader when a request names none: auto, direct or ytdlp.</summary>
    public string Mode { get; set; } = "auto";

    /// <summary>The parsed <see cref="AllowedNetworks"/> (validated at start).</summary>
    public IEnumerable<IPNetwork> ParsedAllowedNetworks() => AllowedNetworks.Select(n => IPNetwork.Parse(n));

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Mode is not ("auto" or "direct" or "ytdlp"))
        {
            yield return new ValidationResult($"Kiln:Fetch:Mode must be auto, direct or ytdlp (was '{Mode}').", [nameof(Mode)]);
        }

        foreach (var network in AllowedNetworks.Where(n => !IPNetwork.TryParse(n, out _)))
        {
            yield return new ValidationResult($"Kiln:Fetch:AllowedNetworks must hold CIDR networks such as 192.168.1.0/24 (was '{network}').", [nameof(AllowedNetworks)]);
        }

        foreach (var host in AllowedHosts.Concat(DeniedHosts).Where(h => string.IsNullOrWhiteSpace(h) || h.Contains('/')))
        {
            yield return new ValidationResult($"Kiln:Fetch:AllowedHosts/DeniedHosts must hold host names (was '{host}').", [nameof(AllowedHosts)]);
        }
    }
}
