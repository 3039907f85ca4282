using System.Globalization;

namespace Kiln.Fetch;

/// <summary>What one line of yt-dlp's output says: a stage change, a progress figure, or both.</summary>
internal readonly record struct YtDlpLine(string Stage, long? Downloaded = null, long? Total = null, double? Speed = null, double? EtaSeconds = null)
{
    /// <summary>Percent done when the total is known (yt-dlp's estimate for fragmented streams), else null.</summary>
    public double? Percent => Downloaded is { } d && Total is { } t && t > 0 ? Math.Min(100, 100.0 * d / t) : null;
}

/// <summary>
/// Parses yt-dlp's <c>--newline</c> output. Progress comes from Kiln's own <see cref="ProgressTemplate"/> (space
/// separated, <c>NA</c> for unknown), not from the human progress bar, whose layout changes between releases; stages
/// come from the bracketed component names yt-dlp prints as it works.
/// </summary>
internal static class YtDlpOutput
{
    public const string Marker = "[kiln]";

    /// <summary>The <c>--progress-template</c>: status, downloaded, total, total estimate, speed (B/s), ETA (s).</summary>
    public const string ProgressTemplate =
        "download:" + Marker + " %(progress.status)s %(progress.downloaded_bytes)s %(progress.total_bytes)s %(progress.total_bytes_estimate)s %(progress.speed)s %(progress.eta)s";

    /// <summary>The stage or progress one line reports, or null for a line that says neither.</summary>
    public static YtDlpLine? Parse(string line)
    {
        if (line.StartsWith(Marker + " ", StringComparison.Ordinal))
        {
            var f = line[(Marker.Length + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 6)
            {
                return null;
            }

            return new YtDlpLine(
                "downloading",
                Downloaded: (long?)Number(f[1]),
                Total: (long?)(Number(f[2]) ?? Number(f[3])),
                Speed: Number(f[4]),
                EtaSeconds: Number(f[5]));
        }

        var close = line.IndexOf(']', StringComparison.Ordinal);
        if (!line.StartsWith('[') || close < 2)
        {
            return null;
        }

        return line[1..close] switch
        {
            "download" or "hlsnative" or "dashsegments" => new YtDlpLine("downloading"),
            "Merger" => new YtDlpLine("merging"),
            "kiln" => null,
            var component when component.StartsWith("Fixup", StringComparison.Ordinal) || component is "ffmpeg" or "MoveFiles" or "VideoConvertor" or "VideoRemuxer"
                => new YtDlpLine("finalizing"),
            _ => new YtDlpLine("resolving"),
        };
    }

    /// <summary>A failure yt-dlp reported (stderr and the non-progress lines of stdout), classified like the direct downloader's; null when it is unknown.</summary>
    public static (string Code, bool Retryable)? Classify(string output)
    {
        if (output.Contains("HTTP Error 404", StringComparison.Ordinal) || output.Contains("HTTP Error 410", StringComparison.Ordinal))
        {
            return ("fetch.not_found", false);
        }

        if (output.Contains("HTTP Error 401", StringComparison.Ordinal) || output.Contains("HTTP Error 403", StringComparison.Ordinal))
        {
            return ("fetch.forbidden", false);
        }

        if (output.Contains("larger than max-filesize", StringComparison.Ordinal))
        {
            return ("fetch.too_large", false);
        }

        if (output.Contains("Unsupported URL", StringComparison.Ordinal))
        {
            return ("fetch.not_media", false);
        }

        if (output.Contains("Requested format is not available", StringComparison.Ordinal))
        {
            return ("fetch.no_format", false);
        }

        return null;
    }

    private static double? Number(string field) =>
        double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value : null;
}
