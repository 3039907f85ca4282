namespace Kiln.Media.FFmpeg;

/// <summary>Runs ffprobe on a file and returns what it found, optionally checked against <see cref="AvLimits"/>.</summary>
public sealed class MediaProber
{
    private readonly FfmpegRunner _runner;

    public MediaProber(FfmpegRunner runner)
    {
        _runner = runner;
    }

    /// <exception cref="MediaException">
    /// <c>media.not_found</c>, <c>media.unreadable</c> (ffprobe cannot parse it: random bytes, a truncated MP4
    /// without its moov atom), <c>media.too_long</c>, <c>media.too_large</c>.
    /// </exception>
    public async Task<MediaProbe> ProbeAsync(string path, AvLimits? limits, CancellationToken cancellationToken)
    {
        var probe = await ProbeAsync(path, cancellationToken);
        (limits ?? AvLimits.Default).Check(probe);
        return probe;
    }

    /// <summary>Probes without applying limits.</summary>
    public async Task<MediaProbe> ProbeAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            throw new MediaException("media.not_found", $"No such file: {path}");
        }

        var output = await _runner.RunFfprobeAsync(
            [
                "-hide_banner", "-loglevel", "error",
                "-print_format", "json", "-show_format", "-show_streams",
                .. AvInput.ForProbe(path),
            ],
            cancellationToken);
        if (output.ExitCode != 0)
        {
            throw new MediaException(
                "media.unreadable",
                $"ffprobe cannot read the file (exit code {output.ExitCode}): {output.StderrTail}");
        }

        return FfprobeParser.Parse(output.Stdout);
    }
}
