using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Media;
using Kiln.Media.Audio;
using Kiln.Media.FFmpeg;
using Kiln.Media.Video;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Pipelines;

/// <summary><c>video.thumbnail</c>: one frame at t = 2 s (clamped to short clips), rotation applied, JPEG.</summary>
internal sealed class VideoThumbnailHandler(FfmpegRunner runner, IOptions<AvOptions> options) : IJobHandler
{
    public string Kind => AvPipeline.VideoThumbnail;

    public static VideoThumbnailSettings ReadParams(JobParams p) => new()
    {
        At = TimeSpan.FromSeconds(p.Double("at", 0, 86_400, 2)),
        MaxWidth = p.Int("maxWidth", 16, 7680, 1920),
        MaxHeight = p.Int("maxHeight", 16, 4320, 1080),
    };

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var settings = context.ReadParams(ReadParams);
        var output = Path.Combine(context.OutputDirectory, "frame.jpg");
        var result = await new VideoThumbnailer(runner, options.Value.Limits)
            .CreateAsync(context.RequireInput(), output, settings, MediaProgressAdapter.For(context), cancellationToken);
        return new JobOutcome(
            new JsonObject { ["width"] = result.Width, ["height"] = result.Height, ["at"] = result.At.TotalSeconds, ["bytes"] = result.Bytes },
            [new OutputFile("THUMBNAIL", "frame.jpg", "image/jpeg", Width: result.Width, Height: result.Height)]);
    }
}

/// <summary><c>video.preview</c>: the first 10 s (or the whole clip) as H.264/AAC MP4, at most 720p, faststart.</summary>
internal sealed class VideoPreviewHandler(FfmpegRunner runner, IOptions<AvOptions> options) : IJobHandler
{
    public string Kind => AvPipeline.VideoPreview;

    public static VideoPreviewSettings ReadParams(JobParams p)
    {
        var defaults = new VideoPreviewSettings();
        return defaults with
        {
            Length = TimeSpan.FromSeconds(p.Double("seconds", 1, 600, defaults.Length.TotalSeconds)),
            MaxShortSide = p.Int("maxHeight", 64, 2160, defaults.MaxShortSide),
            Crf = p.Int("crf", 0, 51, defaults.Crf),
        };
    }

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var settings = context.ReadParams(ReadParams);
        var result = await new VideoPreview(runner, options.Value.Limits)
            .CreateAsync(context.RequireInput(), Path.Combine(context.OutputDirectory, "preview.mp4"), settings, MediaProgressAdapter.For(context), cancellationToken);
        return new JobOutcome(
            new JsonObject { ["width"] = result.Width, ["height"] = result.Height, ["duration"] = result.Duration.TotalSeconds, ["hasAudio"] = result.HasAudio, ["bytes"] = result.Bytes },
            [new OutputFile("PREVIEW", "preview.mp4", "video/mp4", Width: result.Width, Height: result.Height, Duration: result.Duration.TotalSeconds)]);
    }
}

/// <summary><c>video.hls</c>: a rendition ladder up to the source height with a master playlist.</summary>
internal sealed class VideoHlsHandler(FfmpegRunner runner, IOptions<AvOptions> options) : IJobHandler
{
    public string Kind => AvPipeline.VideoHls;

    public static HlsSettings ReadParams(JobParams p)
    {
        var defaults = new HlsSettings();
        return defaults with { SegmentSeconds = p.Int("segmentSeconds", 1, 30, defaults.SegmentSeconds) };
    }

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var settings = context.ReadParams(ReadParams);
        var directory = Path.Combine(context.OutputDirectory, "hls");
        var result = await new HlsPackager(runner, options.Value.Limits)
            .PackageAsync(context.RequireInput(), directory, settings, MediaProgressAdapter.For(context), cancellationToken);
        var master = Path.GetRelativePath(context.OutputDirectory, result.MasterPlaylistPath).Replace('\\', '/');
        var top = result.Renditions.MaxBy(r => r.Height);
        return new JobOutcome(
            new JsonObject
            {
                ["master"] = master,
                ["duration"] = result.Duration?.TotalSeconds,
                ["hasAudio"] = result.HasAudio,
                ["renditions"] = new JsonArray(result.Renditions.Select(r => (JsonNode)new JsonObject
                {
                    ["name"] = r.Name,
                    ["width"] = r.Width,
                    ["height"] = r.Height,
                    ["bandwidth"] = r.Bandwidth,
                    ["playlist"] = Path.GetRelativePath(directory, r.PlaylistPath).Replace('\\', '/'),
                    ["segments"] = r.SegmentCount,
                }).ToArray()),
            },
            [new OutputFile("HLS", master, "application/vnd.apple.mpegurl", Width: top?.Width, Height: top?.Height, Duration: result.Duration?.TotalSeconds)]);
    }
}

/// <summary><c>video.optimize</c>: H.264 CRF re-encode; keeps the original bytes when the encode is not smaller.</summary>
internal sealed class VideoOptimizeHandler(FfmpegRunner runner, IOptions<AvOptions> options, KilnMetrics metrics) : IJobHandler
{
    public string Kind => AvPipeline.VideoOptimize;

    private static readonly string[] Presets = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];

    public static VideoOptimizeSettings ReadParams(JobParams p)
    {
        var defaults = new VideoOptimizeSettings();
        return defaults with
        {
            Crf = p.Int("crf", 0, 51, defaults.Crf),
            Preset = p.OneOf("preset", Presets, defaults.Preset),
            MaxShortSide = p.Int("maxHeight", 64, 4320, defaults.MaxShortSide ?? 1080),
        };
    }

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var settings = context.ReadParams(ReadParams);
        var output = Path.Combine(context.OutputDirectory, "optimized.mp4");
        var result = await new VideoOptimizer(runner, options.Value.Limits)
            .OptimizeAsync(context.RequireInput(), output, settings, MediaProgressAdapter.For(context), cancellationToken);
        return Optimized.Outcome(context, result, output, "video/mp4", Kind, metrics);
    }
}

/// <summary><c>audio.optimize</c>: Opus or AAC at a chosen bit rate; keeps the original bytes when not smaller.</summary>
internal sealed class AudioOptimizeHandler(FfmpegRunner runner, IOptions<AvOptions> options, KilnMetrics metrics) : IJobHandler
{
    public string Kind => AvPipeline.AudioOptimize;

    private static readonly string[] Formats = ["opus", "webm", "aac"];

    public static AudioOptimizeParams ReadParams(JobParams p)
    {
        var (format, extension, contentType) = p.OneOf("format", Formats, "opus") switch
        {
            "aac" => (AudioOptimizeFormat.AacM4a, "m4a", "audio/mp4"),
            "webm" => (AudioOptimizeFormat.OpusWebm, "webm", "audio/webm"),
            _ => (AudioOptimizeFormat.OpusOgg, "ogg", "audio/ogg"),
        };
        return new AudioOptimizeParams(new AudioOptimizeSettings { Format = format, BitrateKbps = p.Int("bitrateKbps", 6, 512, 96) }, extension, contentType);
    }

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var (settings, extension, contentType) = context.ReadParams(ReadParams);
        var output = Path.Combine(context.OutputDirectory, "optimized." + extension);
        var result = await new AudioOptimizer(runner, options.Value.Limits)
            .OptimizeAsync(context.RequireInput(), output, settings, MediaProgressAdapter.For(context), cancellationToken);
        return Optimized.Outcome(context, result, output, contentType, Kind, metrics);
    }
}

/// <summary>What <c>audio.optimize</c> params choose: the encoder settings and the file they produce.</summary>
internal sealed record AudioOptimizeParams(AudioOptimizeSettings Settings, string Extension, string ContentType);

/// <summary>
/// <c>audio.waveform</c>: peaks in the audiowaveform v2 JSON format plus an SVG. A video without an audio track
/// completes with nothing to draw instead of failing: the default video pipeline asks for a waveform before it
/// knows whether there is sound.
/// </summary>
internal sealed class WaveformHandler(FfmpegRunner runner, IOptions<AvOptions> options) : IJobHandler
{
    public string Kind => AvPipeline.AudioWaveform;

    public static WaveformSettings ReadParams(JobParams p)
    {
        var defaults = new WaveformSettings();
        return defaults with { TargetPoints = p.Int("points", 10, 100_000, defaults.TargetPoints), Bits = p.Int("bits", [8, 16], defaults.Bits) };
    }

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var settings = context.ReadParams(ReadParams);
        try
        {
            var result = await new WaveformGenerator(runner, options.Value.Limits).GenerateAsync(
                context.RequireInput(),
                Path.Combine(context.OutputDirectory, "waveform.json"),
                Path.Combine(context.OutputDirectory, "waveform.svg"),
                settings,
                MediaProgressAdapter.For(context),
                cancellationToken);
            return new JobOutcome(
                new JsonObject
                {
                    ["channels"] = result.Channels,
                    ["sampleRate"] = result.SampleRate,
                    ["samplesPerPixel"] = result.SamplesPerPixel,
                    ["bits"] = result.Bits,
                    ["length"] = result.Length,
                    ["duration"] = result.Duration?.TotalSeconds,
                },
                [
                    new OutputFile("WAVEFORM", "waveform.json", "application/json", Variant: "json", Duration: result.Duration?.TotalSeconds),
                    new OutputFile("WAVEFORM", "waveform.svg", "image/svg+xml", Variant: "svg", Duration: result.Duration?.TotalSeconds),
                ]);
        }
        catch (MediaException e) when (e.Code == "media.no_audio" && context.Asset?.Kind == "video")
        {
            return new JobOutcome(new JsonObject { ["skipped"] = "The video has no audio track." });
        }
    }
}

internal static class Optimized
{
    /// <summary>The OPTIMIZED derivative and the bytes-saved report shared by the audio and video optimizers.</summary>
    public static JobOutcome Outcome(JobContext context, AvOptimizeResult result, string output, string contentType, string kind, KilnMetrics metrics)
    {
        if (result.KeptOriginal)
        {
            OutputFiles.LinkOriginal(context.RequireInput(), output);
            contentType = context.Asset?.ContentType ?? contentType;
        }

        metrics.BytesSaved(kind, result.OriginalBytes, result.OutputBytes);
        var ratio = result.OriginalBytes == 0 ? 1 : (double)result.OutputBytes / result.OriginalBytes;
        return new JobOutcome(
            new JsonObject
            {
                ["originalBytes"] = result.OriginalBytes,
                ["outputBytes"] = result.OutputBytes,
                ["bytesSaved"] = result.BytesSaved,
                ["ratio"] = Math.Round(ratio, 4),
                ["keptOriginal"] = result.KeptOriginal,
                ["note"] = result.Note,
            },
            [new OutputFile("OPTIMIZED", Path.GetFileName(output), contentType, Duration: result.Duration?.TotalSeconds)]);
    }
}
