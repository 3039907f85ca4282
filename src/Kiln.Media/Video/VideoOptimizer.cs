using Kiln.Media.FFmpeg;

namespace Kiln.Media.Video;

/// <param name="Crf">x264 constant rate factor: 18 looks lossless, 23 is x264's default, +6 roughly halves the size.</param>
/// <param name="MaxShortSide">Cap on the shorter side (1080 = "at most 1080p"); null keeps the source size.</param>
public sealed record VideoOptimizeSettings
{
    public int Crf { get; init; } = 23;

    public string Preset { get; init; } = "medium";

    public int? MaxShortSide { get; init; } = 1080;

    public int AudioBitrateKbps { get; init; } = 128;
}

/// <summary>Re-encodes a video as H.264/AAC MP4 (faststart) at a constant quality, and keeps the original when that is smaller.</summary>
public sealed class VideoOptimizer
{
    private const string Stage = "optimize";
    private readonly FfmpegRunner _runner;
    private readonly MediaProber _prober;
    private readonly AvLimits _limits;

    public VideoOptimizer(FfmpegRunner runner, AvLimits? limits = null)
    {
        _runner = runner;
        _prober = new MediaProber(runner);
        _limits = limits ?? AvLimits.Default;
    }

    /// <exception cref="MediaException"><c>media.no_video</c> and the probe and runner codes.</exception>
    public async Task<AvOptimizeResult> OptimizeAsync(
        string inputPath,
        string outputPath,
        VideoOptimizeSettings? settings,
        IProgress<MediaProgress>? progress,
        CancellationToken cancellationToken)
    {
        settings ??= new VideoOptimizeSettings();
        progress?.Report(new MediaProgress(0, "probe"));
        var probe = await _prober.ProbeAsync(inputPath, _limits, cancellationToken);
        var video = probe.Video ?? throw new MediaException("media.no_video", "The file has no video stream.");
        var (width, height) = VideoEncoding.FitShortSide(video, settings.MaxShortSide ?? int.MaxValue);

        using var output = new StagedFile(outputPath);
        List<string> args = [.. AvInput.ForFfmpeg(inputPath, probe)];
        args.AddRange(VideoEncoding.H264(video, width, height, settings.Preset, settings.Crf));
        args.AddRange(VideoEncoding.Aac(probe.Audio, settings.AudioBitrateKbps));
        args.AddRange(["-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", "-y", AvPaths.Output(output.TempPath)]);
        await _runner.RunAsync(args, probe.Duration, Stage, progress, cancellationToken);

        var result = AvOptimizeResult.Decide(inputPath, output, probe.Duration);
        progress?.Report(new MediaProgress(100, Stage, TotalBytes: result.OutputBytes));
        return result;
    }
}
