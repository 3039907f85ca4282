using Kiln.Media.FFmpeg;
using Kiln.Media.Transcription;

namespace Kiln.Tests.Transcription;

/// <summary>The speech track is decoded once and cut into WAV chunks by sample ranges (real ffmpeg and ffprobe).</summary>
public sealed class SpeechChunkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-chunks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_capped_extract_gives_consecutive_wav_chunks_whose_samples_are_the_whole_track()
    {
        var ct = TestContext.Current.CancellationToken;
        // 5.5 s of stereo 44.1 kHz AAC in MP4: the chunks must be 16 kHz mono PCM cut at 2 s, 2 s and 1.5 s.
        var source = Path.Combine(_dir, "talk.m4a");
        await Speech.RunAsync("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100:duration=5.5",
            "-ac", "2", "-c:a", "aac", source);
        var reference = Path.Combine(_dir, "reference.wav");
        await Speech.RunAsync("ffmpeg", "-nostdin", "-loglevel", "error", "-i", source, "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-fflags", "+bitexact", reference);

        var result = await new SpeechAudio(new FfmpegRunner()).ExtractAsync(source, Path.Combine(_dir, "out"), 64_044, null, ct);

        Assert.Equal([0.0, 2.0, 4.0], result.Chunks.Select(c => c.Offset).ToArray());
        Assert.Equal(2.0, result.Chunks[0].Length);
        Assert.Equal(2.0, result.Chunks[1].Length);
        Assert.InRange(result.Chunks[2].Length, 1.45, 1.55);
        Assert.Equal(["speech-0000.wav", "speech-0001.wav", "speech-0002.wav"], Directory.GetFiles(Path.Combine(_dir, "out")).Select(p => Path.GetFileName(p)!).Order().ToArray());
        Assert.All(result.Chunks, c => Assert.True(new FileInfo(c.Path).Length <= 64_044));

        // The chunks' samples, in order, are the track's samples: nothing lost or repeated at the cuts.
        var joined = result.Chunks.SelectMany(c => File.ReadAllBytes(c.Path)[44..]).ToArray();
        Assert.Equal(File.ReadAllBytes(reference)[^joined.Length..], joined);

        // Each chunk is a WAV ffprobe reads as 16 kHz mono with the chunk's duration.
        var probed = await Speech.RunAsync("ffprobe", "-v", "error", "-show_entries", "stream=sample_rate,channels,duration", "-of", "csv=p=0", result.Chunks[1].Path);
        Assert.Equal("16000,1,2.000000", probed.Trim());
    }
}
