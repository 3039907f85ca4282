using Kiln.Media.FFmpeg;

namespace Kiln.Media.Video;

/// <param name="MaxShortSide">720 means "at most 720p": the shorter side of the frame, so portrait clips get the same budget.</param>
public sealed record VideoPreviewSettings
{
    public TimeSpan Length { get; init; } = TimeSpan.FromSeconds(10);

    public int MaxShortSide { get; init; } = 720;

    public int Crf { get; init; } = 26;

    public string Preset { get; init; } = "veryfast";

    public int AudioBitrateKbps { get; init; } = 96;
}

public sealed record VideoPreviewResult(string Path, int Width, int Height, TimeSpan Duration, bool HasAudio, long Bytes);

/// <summary>
/// A short H.264/AAC MP4 from the start of the clip (the whole clip when shorter), with the moov atom first so
/// a browser starts playing before the download ends.
/// </summary>
public sealed class VideoPreview
{
    private const string Stage = "preview";
    private readonly FfmpegRunner _runner;
    private readonly MediaProber _prober;
    private readonly AvLimits _limits;

    public VideoPreview(FfmpegRunner runner, AvLimits? limits = null)
    {
        _runner = runner;
        _prober = new MediaProber(runner);
        _limits = limits ?? AvLimits.Default;
    }

    /// <exception cref="MediaException"><c>media.no_video</c> and the probe and runner codes.</exception>
    public async Task<VideoPreviewResult> CreateAsync(
        string inputPath,
        string outputPath,
        VideoPreviewSettings? settings,
        IProgress<MediaProgress>? progress,
        CancellationToken cancellationToken)
    {
        settings ??= new VideoPreviewSettings();
        progress?.Report(new MediaProgress(0, "probe"));
        var probe = await _prober.ProbeAsync(inputPath, _limits, cancellationToken);
        var video = probe.Video ?? throw new MediaException("media.no_video", "The file has no video stream.");
        var (width, height) = VideoEncoding.FitShortSide(video, settings.MaxShortSide);
        var length = probe.Duration is { } d && d < settings.Length ? d : settings.Length;

        using var output = new StagedFile(outputPath);
        List<string> args = [.. AvInput.ForFfmpeg(inputPath, probe), "-t", AvPaths.Num(settings.Length.TotalSeconds)];
        args.AddRange(VideoEncoding.H264(video, width, height, settings.Preset, settings.Crf));
        args.AddRange(VideoEncoding.Aac(probe.Audio, settings.AudioBitrateKbps));
        args.AddRange(["-movflags", "+faststart", "-f", "mp4", "-y", AvPaths.Output(output.TempPath)]);
        await _runner.RunAsync(args, length, Stage, progress, cancellationToken);

        var bytes = AvPaths.SizeOf(output.TempPath);
        output.Commit();
        progress?.Report(new MediaProgress(100, Stage, TotalBytes: bytes));
        return new VideoPreviewResult(output.FinalPath, width, height, length, probe.HasAudio, bytes);
    }
}
