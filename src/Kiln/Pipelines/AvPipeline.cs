using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using Kiln.Assets;
using Kiln.Jobs;
using Kiln.Media.Audio;
using Kiln.Media.FFmpeg;
using Kiln.Media.Video;
using Kiln.Processing;
using Microsoft.Extensions.Options;

namespace Kiln.Pipelines;

/// <summary>Section <c>Kiln:Av</c>: ffmpeg tools and the limits on what they accept.</summary>
internal sealed class AvOptions
{
    public const string Section = "Kiln:Av";

    [Required(AllowEmptyStrings = false)]
    public string FfmpegPath { get; set; } = "ffmpeg";

    [Required(AllowEmptyStrings = false)]
    public string FfprobePath { get; set; } = "ffprobe";

    /// <summary>Longest audio or video accepted, in seconds. Kiln__Av__MaxDurationSeconds.</summary>
    [Range(1, 7 * 24 * 3600)]
    public double MaxDurationSeconds { get; set; } = 4 * 3600;

    [Range(16, 32768)]
    public int MaxWidth { get; set; } = 7680;

    [Range(16, 32768)]
    public int MaxHeight { get; set; } = 4320;

    public AvLimits Limits => new() { MaxDuration = TimeSpan.FromSeconds(MaxDurationSeconds), MaxWidth = MaxWidth, MaxHeight = MaxHeight };
}

/// <summary>The audio and video job kinds (DESIGN.md §3) and their default pipeline.</summary>
internal static class AvPipeline
{
    public const string VideoThumbnail = "video.thumbnail";
    public const string VideoPreview = "video.preview";
    public const string VideoHls = "video.hls";
    public const string VideoOptimize = "video.optimize";
    public const string AudioWaveform = "audio.waveform";
    public const string AudioOptimize = "audio.optimize";

    public static WebApplicationBuilder AddKilnAvPipeline(this WebApplicationBuilder builder)
    {
        builder.Services.AddKilnAvHandlers();
        builder.Services.AddOptions<AvOptions>().BindConfiguration(AvOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        return builder;
    }

    /// <summary>Handlers, kinds and steps; shared with the remote worker, which runs the same handlers.</summary>
    public static IServiceCollection AddKilnAvHandlers(this IServiceCollection services)
    {
        services.AddOptions<AvOptions>().BindConfiguration(AvOptions.Section);
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AvOptions>>().Value;
            return new FfmpegRunner(new FfmpegOptions { FfmpegPath = o.FfmpegPath, FfprobePath = o.FfprobePath });
        });
        services.AddSingleton<MediaProber>();
        services.AddSingleton<IAssetProber, AvAssetProber>(sp => new AvAssetProber("video", sp.GetRequiredService<MediaProber>(), sp.GetRequiredService<IOptions<AvOptions>>()));
        services.AddSingleton<IAssetProber, AvAssetProber>(sp => new AvAssetProber("audio", sp.GetRequiredService<MediaProber>(), sp.GetRequiredService<IOptions<AvOptions>>()));

        services.AddJobKind<VideoThumbnailHandler>(new JobKindInfo(VideoThumbnail, Kinds.VideoQueue, Priority: 10, MediaKinds: Kinds.Video, Params: VideoThumbnailHandler.ReadParams));
        services.AddJobKind<VideoPreviewHandler>(new JobKindInfo(VideoPreview, Kinds.VideoQueue, Priority: 10, MediaKinds: Kinds.Video, Params: VideoPreviewHandler.ReadParams));
        services.AddJobKind<VideoHlsHandler>(new JobKindInfo(VideoHls, Kinds.VideoQueue, Priority: 20, MediaKinds: Kinds.Video, Params: VideoHlsHandler.ReadParams));
        services.AddJobKind<VideoOptimizeHandler>(new JobKindInfo(VideoOptimize, Kinds.VideoQueue, Priority: 20, MediaKinds: Kinds.Video, Params: VideoOptimizeHandler.ReadParams));
        services.AddJobKind<WaveformHandler>(new JobKindInfo(AudioWaveform, Kinds.AudioQueue, Priority: 15, MediaKinds: Kinds.AudioOrVideo, Params: WaveformHandler.ReadParams));
        services.AddJobKind<AudioOptimizeHandler>(new JobKindInfo(AudioOptimize, Kinds.AudioQueue, Priority: 15, MediaKinds: Kinds.Audio, Params: AudioOptimizeHandler.ReadParams));

        services.AddPipelineStep(new PipelineStep("video", VideoThumbnail));
        services.AddPipelineStep(new PipelineStep("video", VideoPreview));
        services.AddPipelineStep(new PipelineStep("video", VideoHls));
        services.AddPipelineStep(new PipelineStep("video", AudioWaveform));
        services.AddPipelineStep(new PipelineStep("audio", AudioWaveform));
        services.AddPipelineStep(new PipelineStep("audio", AudioOptimize));
        return services;
    }
}

/// <summary>Probe metadata of audio and video: duration, dimensions after rotation, codecs, streams.</summary>
internal sealed class AvAssetProber(string mediaKind, MediaProber prober, IOptions<AvOptions> options) : IAssetProber
{
    public string MediaKind { get; } = mediaKind;

    public async Task<JsonObject> ProbeAsync(string path, CancellationToken cancellationToken)
    {
        var probe = await prober.ProbeAsync(path, options.Value.Limits, cancellationToken);
        var result = new JsonObject
        {
            ["format"] = probe.FormatName,
            ["duration"] = probe.Duration?.TotalSeconds,
            ["bitRate"] = probe.BitRate,
            ["hasVideo"] = probe.HasVideo,
            ["hasAudio"] = probe.HasAudio,
        };
        if (probe.Video is { } v)
        {
            result["width"] = probe.DisplayWidth;
            result["height"] = probe.DisplayHeight;
            result["rotation"] = v.Rotation;
            result["videoCodec"] = v.Codec;
            result["frameRate"] = v.FrameRate;
        }

        if (probe.Audio is { } a)
        {
            result["audioCodec"] = a.Codec;
            result["sampleRate"] = a.SampleRate;
            result["channels"] = a.Channels;
        }

        result["streams"] = new JsonArray(probe.Streams.Select(s => (JsonNode)new JsonObject
        {
            ["index"] = s.Index,
            ["type"] = s.Type.ToString().ToLowerInvariant(),
            ["codec"] = s.Codec,
            ["bitRate"] = s.BitRate,
        }).ToArray());
        return result;
    }
}
