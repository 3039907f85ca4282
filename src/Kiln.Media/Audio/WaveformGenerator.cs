using System.Buffers;
using System.Runtime.InteropServices;
using Kiln.Media.FFmpeg;

namespace Kiln.Media.Audio;

/// <param name="TargetPoints">How many min/max pairs to aim for whatever the duration; samples_per_pixel is derived from it.</param>
/// <param name="SplitChannels">False mixes down to mono like audiowaveform does by default; true keeps each channel (at most 8).</param>
/// <param name="SampleRate">Decode rate; null keeps the source rate so peaks are the real sample peaks.</param>
public sealed record WaveformSettings
{
    public int TargetPoints { get; init; } = 1800;

    public int Bits { get; init; } = 8;

    public bool SplitChannels { get; init; }

    public int? SampleRate { get; init; }

    public int SvgWidth { get; init; } = 1800;

    public int SvgHeight { get; init; } = 200;
}

public sealed record WaveformResult(
    string JsonPath, string SvgPath, int Channels, int SampleRate, int SamplesPerPixel, int Bits, int Length, TimeSpan? Duration);

/// <summary>
/// Audio peaks for a waveform display, from an audio file or a video's audio track. ffmpeg decodes to raw
/// 16-bit PCM on stdout and the peaks are folded in C# as the bytes arrive, through one fixed buffer: memory
/// stays flat however long the file is (see docs/benchmarks.md).
/// </summary>
public sealed class WaveformGenerator
{
    private const string Stage = "waveform";
    private const int BufferBytes = 64 * 1024;
    private const int MaxChannels = 8;
    private readonly FfmpegRunner _runner;
    private readonly MediaProber _prober;
    private readonly AvLimits _limits;

    public WaveformGenerator(FfmpegRunner runner, AvLimits? limits = null)
    {
        _runner = runner;
        _prober = new MediaProber(runner);
        _limits = limits ?? AvLimits.Default;
    }

    /// <summary>Writes the audiowaveform v2 JSON to <paramref name="jsonPath"/> and its SVG rendering to <paramref name="svgPath"/>.</summary>
    /// <exception cref="MediaException"><c>media.no_audio</c> and the probe and runner codes.</exception>
    public async Task<WaveformResult> GenerateAsync(
        string inputPath,
        string jsonPath,
        string svgPath,
        WaveformSettings? settings,
        IProgress<MediaProgress>? progress,
        CancellationToken cancellationToken)
    {
        settings ??= new WaveformSettings();
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.TargetPoints, 1);
        progress?.Report(new MediaProgress(0, "probe"));
        var probe = await _prober.ProbeAsync(inputPath, _limits, cancellationToken);
        var audio = probe.Audio ?? throw new MediaException("media.no_audio", "The file has no audio track to draw a waveform of.");
        var rate = settings.SampleRate ?? audio.SampleRate ?? 44100;
        var channels = settings.SplitChannels ? Math.Clamp(audio.Channels ?? 1, 1, MaxChannels) : 1;
        // The audio stream often outlasts the container's duration (AAC priming and padding); the longer of the
        // two keeps the point count at or under the target.
        var duration = audio.Duration > probe.Duration ? audio.Duration : probe.Duration;
        var samplesPerPixel = SamplesPerPixel(duration, rate, settings.TargetPoints);
        var builder = new WaveformBuilder(channels, rate, samplesPerPixel, settings.Bits);
        var expectedFrames = duration is { } d ? d.TotalSeconds * rate : 0;

        List<string> args =
        [
            .. AvInput.ForFfmpeg(inputPath, probe),
            "-map", "0:" + AvPaths.Num(audio.Index), "-vn", "-sn", "-dn",
            "-ac", AvPaths.Num(channels), "-ar", AvPaths.Num(rate),
            "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1",
        ];
        await _runner.RunWithOutputAsync(
            args, (stdout, ct) => FoldAsync(stdout, builder, channels, expectedFrames, progress, ct), cancellationToken);
        var data = builder.Finish();

        using var json = new StagedFile(jsonPath);
        using var svg = new StagedFile(svgPath);
        await using (var stream = File.Create(json.TempPath))
        {
            data.WriteJson(stream);
        }

        await File.WriteAllTextAsync(svg.TempPath, data.ToSvg(settings.SvgWidth, settings.SvgHeight), cancellationToken);
        json.Commit();
        svg.Commit();
        progress?.Report(new MediaProgress(100, Stage, TotalBytes: AvPaths.SizeOf(json.FinalPath)));
        return new WaveformResult(
            json.FinalPath, svg.FinalPath, channels, rate, samplesPerPixel, settings.Bits, data.Length, probe.Duration);
    }

    /// <summary>
    /// Enough samples per pixel that the whole file fits in about <paramref name="targetPoints"/> pairs. With no
    /// known duration, one pixel per second: the duration limit still bounds the length.
    /// </summary>
    internal static int SamplesPerPixel(TimeSpan? duration, int sampleRate, int targetPoints)
    {
        if (duration is not { TotalSeconds: > 0 } d)
        {
            return Math.Max(1, sampleRate);
        }

        var total = d.TotalSeconds * sampleRate;
        return (int)Math.Clamp(Math.Ceiling(total / targetPoints), 1, int.MaxValue);
    }

    private static async Task FoldAsync(
        Stream stdout, WaveformBuilder builder, int channels, double expectedFrames, IProgress<MediaProgress>? progress, CancellationToken ct)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("s16le PCM is read in place, which needs a little-endian CPU.");
        }

        var frameBytes = 2 * channels;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        try
        {
            var filled = 0;
            double lastReported = -1;
            int read;
            while ((read = await stdout.ReadAsync(buffer.AsMemory(filled, BufferBytes - filled), ct)) > 0)
            {
                filled += read;

                // Pipes deliver arbitrary byte counts; only whole frames are folded, the remainder is kept for the next read.
                var whole = filled - (filled % frameBytes);
                builder.Add(MemoryMarshal.Cast<byte, short>(buffer.AsSpan(0, whole)));
                buffer.AsSpan(whole, filled - whole).CopyTo(buffer);
                filled -= whole;

                if (progress is not null && expectedFrames > 0)
                {
                    var percent = Math.Min(99.0, Math.Round(builder.FramesSeen / expectedFrames * 100, 1));
                    if (percent >= lastReported + 1)
                    {
                        lastReported = percent;
                        progress.Report(new MediaProgress(percent, Stage));
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
