using Kiln.Media;
using Kiln.Media.Audio;
using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class AudioOptimizerTests(AvFixtures fixtures)
{
    private readonly AudioOptimizer _optimizer = new(fixtures.Runner);
    private readonly MediaProber _prober = new(fixtures.Runner);

    [Theory]
    [InlineData(AudioOptimizeFormat.OpusOgg, "a.ogg", "opus", "ogg")]
    [InlineData(AudioOptimizeFormat.OpusWebm, "a.webm", "opus", "matroska,webm")]
    [InlineData(AudioOptimizeFormat.AacM4a, "a.m4a", "aac", "mov,mp4,m4a,3gp,3g2,mj2")]
    public async Task A_wav_is_encoded_to_the_chosen_format_and_gets_much_smaller(AudioOptimizeFormat format, string name, string codec, string container)
    {
        var input = await fixtures.Wav;
        var output = Path.Combine(fixtures.NewOutputDirectory(), name);

        var result = await _optimizer.OptimizeAsync(input, output, new AudioOptimizeSettings { Format = format, BitrateKbps = 64 }, null, TestContext.Current.CancellationToken);

        Assert.False(result.KeptOriginal);
        Assert.Equal(output, result.OutputPath);
        Assert.True(result.OutputBytes * 5 < result.OriginalBytes, $"{result.OutputBytes} vs {result.OriginalBytes}");
        Assert.Equal(result.OriginalBytes - result.OutputBytes, result.BytesSaved);
        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal((codec, container, 2), (probe.Audio!.Codec, probe.FormatName, probe.Audio.Channels));
        Assert.InRange(probe.Duration!.Value.TotalSeconds, 2.9, 3.1);
    }

    [Fact]
    public async Task An_already_small_file_is_kept_when_the_encode_would_be_larger()
    {
        var input = await fixtures.Mp3;
        var dir = fixtures.NewOutputDirectory();

        var result = await _optimizer.OptimizeAsync(input, Path.Combine(dir, "a.ogg"), new AudioOptimizeSettings { BitrateKbps = 256 }, null, TestContext.Current.CancellationToken);

        Assert.True(result.KeptOriginal);
        Assert.Equal(0, result.BytesSaved);
        Assert.NotNull(result.Note);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public async Task An_opus_bit_rate_beyond_what_libopus_accepts_is_rejected_as_a_bad_setting()
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await _optimizer.OptimizeAsync(
            await fixtures.Mp3, Path.Combine(fixtures.NewOutputDirectory(), "a.ogg"), new AudioOptimizeSettings { BitrateKbps = 320 }, null,
            TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_video_without_audio_has_nothing_to_optimize()
    {
        var ex = await Assert.ThrowsAsync<MediaException>(async () => await _optimizer.OptimizeAsync(
            await fixtures.VideoWithoutAudio, Path.Combine(fixtures.NewOutputDirectory(), "a.ogg"), null, null, TestContext.Current.CancellationToken));

        Assert.Equal("media.no_audio", ex.Code);
    }
}
