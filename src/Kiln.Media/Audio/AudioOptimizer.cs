using Kiln.Media.FFmpeg;

namespace Kiln.Media.Audio;

public enum AudioOptimizeFormat
{
    /// <summary>Opus in Ogg (<c>.ogg</c>/<c>.opus</c>): the best quality per bit; every current browser plays it.</summary>
    OpusOgg = 0,

    /// <summary>Opus in WebM (<c>.webm</c>).</summary>
    OpusWebm,

    /// <summary>AAC-LC in MP4 (<c>.m4a</c>): for Apple devices and older players.</summary>
    AacM4a,
}

public sealed record AudioOptimizeSettings
{
    public AudioOptimizeFormat Format { get; init; } = AudioOptimizeFormat.OpusOgg;

    /// <summary>Target bit rate; 96 kb/s Opus is transparent for most music, speech needs far less.</summary>
    public int BitrateKbps { get; init; } = 96;
}

/// <summary>Re-encodes the first audio track (cover art and video dropped) and keeps the original when that is smaller.</summary>
public sealed class AudioOptimizer
{
    private const string Stage = "optimize";
    private readonly FfmpegRunner _runner;
    private readonly MediaProber _prober;
    private readonly AvLimits _limits;

    public AudioOptimizer(FfmpegRunner runner, AvLimits? limits = null)
    {
        _runner = runner;
        _prober = new MediaProber(runner);
        _limits = limits ?? AvLimits.Default;
    }

    /// <exception cref="MediaException"><c>media.no_audio</c> and the probe and runner codes.</exception>
    public async Task<AvOptimizeResult> OptimizeAsync(
        string inputPath,
        string outputPath,
        AudioOptimizeSettings? settings,
        IProgress<MediaProgress>? progress,
        CancellationToken cancellationToken)
    {
        settings ??= new AudioOptimizeSettings();
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.BitrateKbps, 6);
        progress?.Report(new MediaProgress(0, "probe"));
        var probe = await _prober.ProbeAsync(inputPath, _limits, cancellationToken);
        var audio = probe.Audio ?? throw new MediaException("media.no_audio", "The file has no audio stream.");

        if (settings.Format is AudioOptimizeFormat.OpusOgg or AudioOptimizeFormat.OpusWebm && settings.BitrateKbps > 256 * (audio.Channels ?? 1))
        {
            // libopus refuses more than 256 kb/s per channel; say so in terms of the setting rather than ffmpeg's.
            throw new ArgumentOutOfRangeException(nameof(settings), settings.BitrateKbps, "Opus supports at most 256 kb/s per channel.");
        }

        var (codec, muxer) = settings.Format switch
        {
            AudioOptimizeFormat.OpusOgg => ("libopus", "ogg"),
            AudioOptimizeFormat.OpusWebm => ("libopus", "webm"),
            AudioOptimizeFormat.AacM4a => ("aac", "ipod"), // ffmpeg's name for the .m4a flavour of MP4
            _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.Format, "Unknown audio format."),
        };

        using var output = new StagedFile(outputPath);
        List<string> args =
        [
            .. AvInput.ForFfmpeg(inputPath, probe),
            "-map", "0:" + AvPaths.Num(audio.Index), "-vn", "-sn", "-dn",
            "-c:a", codec, "-b:a", AvPaths.Num(settings.BitrateKbps) + "k",
        ];
        if (muxer == "ipod")
        {
            args.AddRange(["-movflags", "+faststart"]);
        }

        args.AddRange(["-f", muxer, "-y", AvPaths.Output(output.TempPath)]);
        await _runner.RunAsync(args, probe.Duration, Stage, progress, cancellationToken);

        var result = AvOptimizeResult.Decide(inputPath, output, probe.Duration);
        progress?.Report(new MediaProgress(100, Stage, TotalBytes: result.OutputBytes));
        return result;
    }
}
