using System.Globalization;

namespace Kiln.Media.FFmpeg;

/// <summary>One <c>-progress</c> report: the key=value lines up to and including <c>progress=continue|end</c>.</summary>
/// <param name="OutTime">Media time written so far; null while ffmpeg prints N/A or a negative start time.</param>
/// <param name="TotalSize">Bytes written so far; null when the muxer cannot tell (HLS prints N/A).</param>
/// <param name="Speed">Multiple of real time; null for N/A and for the 0x that ffmpeg prints before it has measured anything.</param>
internal sealed record FfmpegProgressBlock(TimeSpan? OutTime, long? TotalSize, double? Speed, long? Frame, bool IsEnd);

/// <summary>
/// Accumulates ffmpeg <c>-progress</c> lines into blocks. Pure state machine, fed line by line by the runner
/// and, in tests, by captured output.
/// </summary>
internal sealed class FfmpegProgressReader
{
    private TimeSpan? _outTime;
    private TimeSpan? _outTimeFallback;
    private long? _totalSize;
    private double? _speed;
    private long? _frame;

    /// <summary>Returns a block when <paramref name="line"/> closes one, otherwise null.</summary>
    public FfmpegProgressBlock? Feed(ReadOnlySpan<char> line)
    {
        var eq = line.IndexOf('=');
        if (eq <= 0)
        {
            return null;
        }

        var key = line[..eq].Trim();
        var value = line[(eq + 1)..].Trim();
        switch (key)
        {
            case "out_time_us":
                _outTime = ParseMicroseconds(value) ?? _outTime;
                break;
            case "out_time_ms":
                // ffmpeg (up to at least 6.x) prints microseconds under this name too; it is only a fallback.
                _outTimeFallback = ParseMicroseconds(value) ?? _outTimeFallback;
                break;
            case "out_time":
                _outTimeFallback ??= ParseClock(value);
                break;
            case "total_size":
                _totalSize = long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var size) && size >= 0 ? size : null;
                break;
            case "speed":
                _speed = ParseSpeed(value);
                break;
            case "frame":
                _frame = long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var frame) ? frame : _frame;
                break;
            case "progress":
                var block = new FfmpegProgressBlock(_outTime ?? _outTimeFallback, _totalSize, _speed, _frame, value.SequenceEqual("end"));
                _outTimeFallback = null;
                return block;
            default:
                break;
        }

        return null;
    }

    private static TimeSpan? ParseMicroseconds(ReadOnlySpan<char> value) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var us) && us >= 0
            ? TimeSpan.FromMicroseconds(us)
            : null;

    private static TimeSpan? ParseClock(ReadOnlySpan<char> value) =>
        !value.StartsWith("-") && TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var t) ? t : null;

    private static double? ParseSpeed(ReadOnlySpan<char> value)
    {
        if (value.EndsWith("x"))
        {
            value = value[..^1].Trim();
        }

        return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var speed) && speed > 0 ? speed : null;
    }
}

/// <summary>Pure helpers around <see cref="FfmpegProgressReader"/>.</summary>
internal static class FfmpegProgressParser
{
    public static IReadOnlyList<FfmpegProgressBlock> ParseAll(string text)
    {
        var reader = new FfmpegProgressReader();
        var blocks = new List<FfmpegProgressBlock>();
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            if (reader.Feed(line) is { } block)
            {
                blocks.Add(block);
            }
        }

        return blocks;
    }

    /// <summary>
    /// Percent comes from the media time against the expected output duration (from the probe), because
    /// ffmpeg itself does not know how long the output will be. ETA is the media time left divided by speed.
    /// </summary>
    public static MediaProgress ToMediaProgress(FfmpegProgressBlock block, TimeSpan? expectedDuration, string stage)
    {
        ArgumentNullException.ThrowIfNull(block);
        if (block.IsEnd)
        {
            return new MediaProgress(100, stage, block.Speed, TimeSpan.Zero, block.TotalSize);
        }

        double percent = 0;
        TimeSpan? eta = null;
        if (expectedDuration is { TotalSeconds: > 0 } total && block.OutTime is { } done)
        {
            percent = Math.Clamp(done / total * 100, 0, 100);
            if (block.Speed is { } speed)
            {
                var left = total - done;
                eta = left > TimeSpan.Zero ? TimeSpan.FromSeconds(left.TotalSeconds / speed) : TimeSpan.Zero;
            }
        }

        return new MediaProgress(Math.Round(percent, 2), stage, block.Speed, eta, block.TotalSize);
    }
}
