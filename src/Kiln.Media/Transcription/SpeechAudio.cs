using Kiln.Media.FFmpeg;

namespace Kiln.Media.Transcription;

/// <summary>One WAV piece of the speech track and where it starts on the media's clock.</summary>
public sealed record SpeechChunk(string Path, double Offset, double Length);

public sealed record SpeechAudioResult(double Duration, IReadOnlyList<SpeechChunk> Chunks);

/// <summary>
/// Extracts the first audio track as 16 kHz mono 16-bit WAV, the input every recogniser here wants, split into
/// chunks of at most <c>maxChunkBytes</c> when a provider caps request size (OpenAI: 25 MB). The track is decoded
/// once and split by sample ranges, so each chunk's offset is exact and segment times can be shifted back.
/// </summary>
public sealed class SpeechAudio(FfmpegRunner runner, AvLimits? limits = null)
{
    public const int SampleRate = 16_000;

    /// <summary>Bytes per second of 16 kHz mono s16le, plus the 44-byte header per file.</summary>
    private const int BytesPerSecond = SampleRate * 2;
    private const int WavHeader = 44;

    private readonly MediaProber _prober = new(runner);

    /// <exception cref="MediaException"><c>media.no_audio</c> when there is no audio track, and the probe and runner codes.</exception>
    public async Task<SpeechAudioResult> ExtractAsync(
        string inputPath, string directory, long? maxChunkBytes, IProgress<MediaProgress>? progress, CancellationToken cancellationToken)
    {
        var probe = await _prober.ProbeAsync(inputPath, limits ?? AvLimits.Default, cancellationToken);
        var audio = probe.Audio ?? throw new MediaException("media.no_audio", "The file has no audio track to transcribe.");
        var duration = (audio.Duration > probe.Duration ? audio.Duration : probe.Duration)?.TotalSeconds ?? 0;
        var chunkSeconds = ChunkSeconds(maxChunkBytes);
        Directory.CreateDirectory(directory);

        // One decode of the whole track; chunks are then cut from the WAV by sample ranges (WavChunks).
        var whole = Path.Combine(directory, chunkSeconds is null ? "speech-0000.wav" : "speech-all.wav");
        List<string> args = [.. AvInput.ForFfmpeg(inputPath, probe), "-map", "0:" + AvPaths.Num(audio.Index), "-vn", "-sn", "-dn",
            "-ac", "1", "-ar", AvPaths.Num(SampleRate), "-c:a", "pcm_s16le", "-fflags", "+bitexact", "-f", "wav", "-y", whole];
        await runner.RunAsync(args, TimeSpan.FromSeconds(Math.Max(duration, 0.1)), "extract", progress, cancellationToken);
        if (chunkSeconds is null)
        {
            return new SpeechAudioResult(duration, [new SpeechChunk(whole, 0, duration)]);
        }

        IReadOnlyList<SpeechChunk> chunks;
        try
        {
            chunks = await WavChunks.SplitAsync(whole, directory, (long)chunkSeconds.Value * SampleRate, cancellationToken);
        }
        finally
        {
            File.Delete(whole);
        }

        return new SpeechAudioResult(duration, chunks);
    }

    /// <summary>Seconds of 16 kHz mono audio that fit in <paramref name="maxChunkBytes"/>; null means no cap.</summary>
    public static double? ChunkSeconds(long? maxChunkBytes) =>
        maxChunkBytes is { } max ? Math.Max(1, Math.Floor((double)(max - WavHeader) / BytesPerSecond)) : null;
}
