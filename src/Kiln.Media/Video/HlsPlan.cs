using Kiln.Media.FFmpeg;

namespace Kiln.Media.Video;

/// <summary>A rendition to encode: its name (also its directory), frame size and bit rates.</summary>
internal sealed record PlannedRendition(string Name, int Width, int Height, int VideoBitrateKbps, int AudioBitrateKbps);

/// <summary>
/// Pure planning of an HLS job: which renditions, and the single ffmpeg command that encodes them all.
/// One process decodes the source once and splits the frames to one scaler and encoder per rung, which costs
/// less than one decode per rendition (measured in docs/benchmarks.md).
/// </summary>
internal static class HlsPlan
{
    public const string MasterName = "master.m3u8";
    public const string PlaylistName = "index.m3u8";

    /// <summary>
    /// Rungs up to the source's shorter side, never upscaled. A source smaller than the lowest rung gets one
    /// rendition at its own size, with the lowest rung's bit rate scaled down by pixel count.
    /// </summary>
    public static IReadOnlyList<PlannedRendition> Renditions(int displayWidth, int displayHeight, HlsSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Ladder.Count == 0)
        {
            throw new ArgumentException("The HLS ladder is empty.", nameof(settings));
        }

        var shortSide = Math.Min(displayWidth, displayHeight);
        var rungs = settings.Ladder.Where(r => r.Height <= shortSide).OrderBy(r => r.Height).ToList();
        if (rungs.Count > 0)
        {
            return rungs.Select(r =>
            {
                var (w, h) = ScaleMath.ForShortSide(displayWidth, displayHeight, r.Height);
                return new PlannedRendition(r.Name, w, h, r.VideoBitrateKbps, r.AudioBitrateKbps);
            }).ToList();
        }

        var lowest = settings.Ladder.MinBy(r => r.Height)!;
        var (width, height) = ScaleMath.FitInside(displayWidth, displayHeight, displayWidth, displayHeight);
        var share = (double)width * height / ((double)lowest.Height * lowest.Height * 16 / 9);
        var bitrate = Math.Max(150, (int)Math.Round(lowest.VideoBitrateKbps * share));
        return [new PlannedRendition($"{Math.Min(width, height)}p", width, height, bitrate, lowest.AudioBitrateKbps)];
    }

    /// <summary>
    /// The ffmpeg arguments (without the runner's common flags) writing into <paramref name="outputDirectory"/>:
    /// <c>master.m3u8</c> and <c>{name}/index.m3u8</c> with segments beside it.
    /// </summary>
    public static List<string> Arguments(
        string inputPath, string outputDirectory, MediaProbe probe, IReadOnlyList<PlannedRendition> renditions, HlsSettings settings)
    {
        var video = probe.Video ?? throw new MediaException("media.no_video", "The file has no video stream.");
        var audio = probe.Audio;
        var n = renditions.Count;

        // split=1 is legal, so one and many renditions share the same graph shape.
        var graph = $"[0:{video.Index}]split={n}" + string.Concat(Enumerable.Range(0, n).Select(i => $"[s{i}]"));
        for (var i = 0; i < n; i++)
        {
            graph += $";[s{i}]scale={renditions[i].Width}:{renditions[i].Height},format=yuv420p[v{i}]";
        }

        List<string> args = [.. AvInput.ForFfmpeg(inputPath, probe), "-filter_complex", graph];
        for (var i = 0; i < n; i++)
        {
            args.AddRange(["-map", $"[v{i}]"]);
            if (audio is not null)
            {
                // One audio encode per variant: ffmpeg's HLS muxer pairs streams by index; AAC is cheap next to x264.
                args.AddRange(["-map", "0:" + AvPaths.Num(audio.Index)]);
            }
        }

        // A keyframe exactly every segment, and none elsewhere (no scene-cut keyframes), so every rendition's
        // segments cover the same media time and a player can switch between them at any boundary.
        var fps = video.FrameRate is { } f and > 0 and < 240 ? f : 25;
        var gop = Math.Max(1, (int)Math.Round(fps * settings.SegmentSeconds));
        args.AddRange([
            "-c:v", "libx264", "-preset", settings.Preset, "-profile:v", "high",
            "-g", AvPaths.Num(gop), "-keyint_min", AvPaths.Num(gop), "-sc_threshold", "0",
            "-force_key_frames", $"expr:gte(t,n_forced*{AvPaths.Num(settings.SegmentSeconds)})",
        ]);
        for (var i = 0; i < n; i++)
        {
            var r = renditions[i];
            var ix = AvPaths.Num(i);
            args.AddRange([
                $"-b:v:{ix}", $"{r.VideoBitrateKbps}k",
                $"-maxrate:v:{ix}", $"{(int)(r.VideoBitrateKbps * 1.07)}k",
                $"-bufsize:v:{ix}", $"{(int)(r.VideoBitrateKbps * 1.5)}k",
            ]);
            if (audio is not null)
            {
                args.AddRange([$"-b:a:{ix}", $"{r.AudioBitrateKbps}k"]);
            }
        }

        if (audio is not null)
        {
            args.AddRange(["-c:a", "aac"]);
            if (audio.Channels is > 2)
            {
                args.AddRange(["-ac", "2"]);
            }
        }

        var streamMap = string.Join(' ', renditions.Select((r, i) => audio is null ? $"v:{i},name:{r.Name}" : $"v:{i},a:{i},name:{r.Name}"));
        args.AddRange([
            "-f", "hls",
            "-hls_time", AvPaths.Num(settings.SegmentSeconds),
            "-hls_playlist_type", "vod",
            "-hls_flags", "independent_segments",
            "-hls_segment_type", "mpegts",
            "-hls_segment_filename", Path.Combine(outputDirectory, "%v", "seg_%05d.ts"),
            "-master_pl_name", MasterName,
            "-var_stream_map", streamMap,
            "-y", Path.Combine(outputDirectory, "%v", PlaylistName),
        ]);
        return args;
    }
}
