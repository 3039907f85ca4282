using System.Globalization;
using System.Text.Json;

namespace Kiln.Media.FFmpeg;

/// <summary>
/// Turns the output of <c>ffprobe -print_format json -show_format -show_streams</c> into a <see cref="MediaProbe"/>.
/// Pure: no process, no file system, so it is tested on captured output.
/// </summary>
internal static class FfprobeParser
{
    /// <exception cref="MediaException"><c>media.unreadable</c> when the text is not ffprobe JSON or names no streams.</exception>
    public static MediaProbe Parse(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new MediaException("media.unreadable", "ffprobe returned output that is not JSON: " + ex.Message, false, ex);
        }

        using (document)
        {
            var root = document.RootElement;
            var streams = new List<MediaStream>();
            if (root.TryGetProperty("streams", out var streamArray) && streamArray.ValueKind == JsonValueKind.Array)
            {
                foreach (var s in streamArray.EnumerateArray())
                {
                    streams.Add(ParseStream(s));
                }
            }

            if (streams.Count == 0)
            {
                throw new MediaException("media.unreadable", "ffprobe found no audio or video streams in the file.");
            }

            string? formatName = null;
            TimeSpan? duration = null;
            long? bitRate = null;
            long? size = null;
            if (root.TryGetProperty("format", out var format) && format.ValueKind == JsonValueKind.Object)
            {
                formatName = GetString(format, "format_name");
                duration = GetSeconds(format, "duration");
                bitRate = GetLong(format, "bit_rate");
                size = GetLong(format, "size");
            }

            // Raw streams (an .h264 elementary stream, some .ts files) have no container duration; the longest
            // stream is the next best answer for progress and limits.
            duration ??= streams.Max(s => s.Duration);
            return new MediaProbe(formatName, duration, bitRate, size, streams);
        }
    }

    private static MediaStream ParseStream(JsonElement s)
    {
        var type = GetString(s, "codec_type") switch
        {
            "video" => MediaStreamType.Video,
            "audio" => MediaStreamType.Audio,
            "subtitle" => MediaStreamType.Subtitle,
            "data" => MediaStreamType.Data,
            _ => MediaStreamType.Other,
        };
        var attached = s.TryGetProperty("disposition", out var disposition)
            && GetLong(disposition, "attached_pic") == 1;
        return new MediaStream(
            Index: (int)(GetLong(s, "index") ?? 0),
            Type: type,
            Codec: GetString(s, "codec_name"),
            Profile: GetString(s, "profile"),
            Width: ToInt(GetLong(s, "width")),
            Height: ToInt(GetLong(s, "height")),
            Rotation: GetRotation(s),
            FrameRate: type == MediaStreamType.Video ? ParseRate(GetString(s, "avg_frame_rate")) ?? ParseRate(GetString(s, "r_frame_rate")) : null,
            SampleRate: ToInt(GetLong(s, "sample_rate")),
            Channels: ToInt(GetLong(s, "channels")),
            BitRate: GetLong(s, "bit_rate"),
            Duration: GetSeconds(s, "duration"),
            IsAttachedPicture: attached);
    }

    /// <summary>
    /// The display matrix (side data) is what ffmpeg itself honours when it autorotates, so it wins; the legacy
    /// <c>rotate</c> tag only matters for files probed by tools that do not export side data. The tag turns
    /// clockwise while the matrix angle is counterclockwise, hence the sign flip.
    /// </summary>
    internal static int GetRotation(JsonElement stream)
    {
        if (stream.TryGetProperty("side_data_list", out var sideData) && sideData.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in sideData.EnumerateArray())
            {
                if (item.TryGetProperty("rotation", out var r) && TryGetDouble(r, out var degrees))
                {
                    return Normalise(degrees);
                }
            }
        }

        if (stream.TryGetProperty("tags", out var tags) && tags.ValueKind == JsonValueKind.Object
            && tags.TryGetProperty("rotate", out var tag) && TryGetDouble(tag, out var clockwise))
        {
            return Normalise(-clockwise);
        }

        return 0;
    }

    private static int Normalise(double degrees)
    {
        var whole = (int)Math.Round(degrees) % 360;
        return whole < 0 ? whole + 360 : whole;
    }

    /// <summary>ffprobe prints frame rates as fractions; <c>0/0</c> means unknown (audio, still images).</summary>
    internal static double? ParseRate(string? rate)
    {
        if (string.IsNullOrEmpty(rate))
        {
            return null;
        }

        var slash = rate.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return double.TryParse(rate, NumberStyles.Float, CultureInfo.InvariantCulture, out var plain) && plain > 0 ? plain : null;
        }

        if (double.TryParse(rate.AsSpan(0, slash), NumberStyles.Float, CultureInfo.InvariantCulture, out var num)
            && double.TryParse(rate.AsSpan(slash + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var den)
            && num > 0 && den > 0)
        {
            return num / den;
        }

        return null;
    }

    private static string? GetString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    // ffprobe prints some numbers as JSON numbers (width, channels) and others as strings (bit_rate, sample_rate);
    // both shapes are accepted so a future ffprobe that changes one of them keeps working.
    private static long? GetLong(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var v))
        {
            return null;
        }

        return v.ValueKind switch
        {
            JsonValueKind.Number when v.TryGetInt64(out var n) => n,
            JsonValueKind.String when long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) => n,
            _ => null,
        };
    }

    private static TimeSpan? GetSeconds(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && TryGetDouble(v, out var seconds) && seconds >= 0 && double.IsFinite(seconds)
            ? TimeSpan.FromSeconds(seconds)
            : null;

    private static bool TryGetDouble(JsonElement v, out double value)
    {
        if (v.ValueKind == JsonValueKind.Number)
        {
            return v.TryGetDouble(out value);
        }

        value = 0;
        return v.ValueKind == JsonValueKind.String
            && double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    private static int? ToInt(long? value) => value is { } v and > 0 and <= int.MaxValue ? (int)v : null;
}
