using Kiln.Media.FFmpeg;

namespace Kiln.Media.Video;

/// <param name="At">Where to take the frame; clamped to half the duration for shorter clips.</param>
/// <param name="Quality">ffmpeg's JPEG <c>-q:v</c>: 2 (best) to 31; 3 looks like the source at a third of the bytes.</param>
public sealed record VideoThumbnailSettings
{
    public TimeSpan At { get; init; } = TimeSpan.FromSeconds(2);

    public int MaxWidth { get; init; } = 1920;

    public int MaxHeight { get; init; } = 1080;

    public int Quality { get; init; } = 3;
}

public sealed record VideoThumbnailResult(string Path, int Width, int Height, TimeSpan At, long Bytes);

/// <summary>One JPEG frame of a video, upright (ffmpeg applies the display rotation while decoding).</summary>
public sealed class VideoThumbnailer
{
    private const string Stage = "thumbnail";
    private readonly FfmpegRunner _runner;
    private readonly MediaProber _prober;
    private readonly AvLimits _limits;

    public VideoThumbnailer(FfmpegRunner runner, AvLimits? limits = null)
    {
        _runner = runner;
        _prober = new MediaProber(runner);
        _limits = limits ?? AvLimits.Default;
    }

    /// <exception cref="MediaException"><c>media.no_video</c>, <c>media.no_frame</c>, and the probe and runner codes.</exception>
    public async Task<VideoThumbnailResult> CreateAsync(
        string inputPath,
        string outputPath,
        VideoThumbnailSettings? settings,
        IProgress<MediaProgress>? progress,
        CancellationToken cancellationToken)
    {
        settings ??= new VideoThumbnailSettings();
        progress?.Report(new MediaProgress(0, "probe"));
        var probe = await _prober.ProbeAsync(inputPath, _limits, cancellationToken);
        var video = probe.Video ?? throw new MediaException("media.no_video", "The file has no video stream.");
        var at = ChooseTime(settings.At, probe.Duration);
        var (width, height) = ScaleMath.FitInside(
            video.DisplayWidth ?? settings.MaxWidth, video.DisplayHeight ?? settings.MaxHeight, settings.MaxWidth, settings.MaxHeight);

        using var output = new StagedFile(outputPath);
        List<string> args =
        [
            // -ss before -i seeks in the demuxer (jumps to the keyframe before, then decodes forward): fast on long files.
            "-ss", AvPaths.Num(at.TotalSeconds),
            .. AvInput.ForFfmpeg(inputPath, probe),
            "-map", "0:" + AvPaths.Num(video.Index),
            "-vf", $"scale={width}:{height}",
            "-frames:v", "1",
            "-q:v", AvPaths.Num(settings.Quality),
            "-f", "image2", "-update", "1",
            "-y", AvPaths.Output(output.TempPath),
        ];
        await _runner.RunAsync(args, null, Stage, progress, cancellationToken);
        if (!File.Exists(output.TempPath) || AvPaths.SizeOf(output.TempPath) == 0)
        {
            throw new MediaException("media.no_frame", $"ffmpeg decoded no frame at {at.TotalSeconds:0.###} s.");
        }

        var bytes = AvPaths.SizeOf(output.TempPath);
        output.Commit();
        progress?.Report(new MediaProgress(100, Stage, TotalBytes: bytes));
        return new VideoThumbnailResult(output.FinalPath, width, height, at, bytes);
    }

    /// <summary>The requested time, or the middle of a clip too short for it (a 1.5 s clip has no frame at 2 s).</summary>
    internal static TimeSpan ChooseTime(TimeSpan requested, TimeSpan? duration) =>
        duration is { } d && requested > d / 2 ? d / 2 : requested;
}
