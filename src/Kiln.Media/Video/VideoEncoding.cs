using Kiln.Media.FFmpeg;

namespace Kiln.Media.Video;

/// <summary>The encoder arguments the video transforms share, so a preview and an optimized file play in the same players.</summary>
internal static class VideoEncoding
{
    /// <summary>Target size for "at most N p": the shorter side capped at <paramref name="maxShortSide"/>, never upscaled.</summary>
    public static (int Width, int Height) FitShortSide(MediaStream video, int maxShortSide)
    {
        var w = video.DisplayWidth ?? maxShortSide;
        var h = video.DisplayHeight ?? maxShortSide;
        return Math.Min(w, h) > maxShortSide
            ? ScaleMath.ForShortSide(w, h, maxShortSide)
            : ScaleMath.FitInside(w, h, w, h);
    }

    /// <summary>
    /// libx264 at a constant quality. yuv420p because High 4:4:4 or 10-bit output from a screen recording
    /// would not play in browsers; the scale runs after ffmpeg's autorotation, so sizes are display sizes.
    /// </summary>
    public static IEnumerable<string> H264(MediaStream video, int width, int height, string preset, int crf) =>
    [
        "-map", "0:" + AvPaths.Num(video.Index),
        "-vf", $"scale={width}:{height},format=yuv420p",
        "-c:v", "libx264", "-preset", preset, "-crf", AvPaths.Num(crf),
    ];

    /// <summary>AAC for the first audio track, or <c>-an</c> when there is none. More than two channels are folded to stereo for browsers.</summary>
    public static IEnumerable<string> Aac(MediaStream? audio, int bitrateKbps)
    {
        if (audio is null)
        {
            return ["-an"];
        }

        List<string> args = ["-map", "0:" + AvPaths.Num(audio.Index), "-c:a", "aac", "-b:a", AvPaths.Num(bitrateKbps) + "k"];
        if (audio.Channels is > 2)
        {
            args.AddRange(["-ac", "2"]);
        }

        return args;
    }
}
