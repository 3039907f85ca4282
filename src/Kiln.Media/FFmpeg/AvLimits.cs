using System.Globalization;

namespace Kiln.Media.FFmpeg;

/// <summary>
/// Bounds checked right after probing, before any transcode starts, so a hostile or accidental huge input
/// fails fast with a clear code instead of tying up a worker for hours.
/// </summary>
public sealed record AvLimits
{
    public static AvLimits Default { get; } = new();

    public TimeSpan MaxDuration { get; init; } = TimeSpan.FromHours(4);

    public int MaxWidth { get; init; } = 7680;

    public int MaxHeight { get; init; } = 4320;

    /// <summary>
    /// Throws <c>media.too_long</c> or <c>media.too_large</c>. Frame size is checked in either orientation so
    /// that a portrait 8K phone clip is treated like its landscape twin.
    /// </summary>
    public void Check(MediaProbe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        if (probe.Duration is { } duration && duration > MaxDuration)
        {
            throw new MediaException(
                "media.too_long",
                string.Create(CultureInfo.InvariantCulture, $"Duration {duration:c} exceeds the limit of {MaxDuration:c}."));
        }

        foreach (var stream in probe.Streams)
        {
            if (stream.Type != MediaStreamType.Video || stream.IsAttachedPicture || stream.Width is not { } w || stream.Height is not { } h)
            {
                continue;
            }

            var fits = (w <= MaxWidth && h <= MaxHeight) || (w <= MaxHeight && h <= MaxWidth);
            if (!fits)
            {
                throw new MediaException(
                    "media.too_large",
                    string.Create(CultureInfo.InvariantCulture, $"Video frame {w}x{h} exceeds the limit of {MaxWidth}x{MaxHeight}."));
            }
        }
    }
}
