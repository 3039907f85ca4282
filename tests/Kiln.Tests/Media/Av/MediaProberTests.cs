using Kiln.Media;
using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class MediaProberTests(AvFixtures fixtures)
{
    private readonly MediaProber _prober = new(fixtures.Runner);

    [Fact]
    public async Task A_video_with_audio_reports_duration_codecs_size_and_rates()
    {
        var probe = await _prober.ProbeAsync(await fixtures.VideoWithAudio, TestContext.Current.CancellationToken);

        Assert.Equal(4, probe.Duration!.Value.TotalSeconds, 1);
        Assert.Contains("mp4", probe.FormatName, StringComparison.Ordinal);
        Assert.True(probe.BitRate > 0);
        Assert.Equal(("h264", 320, 240, 25.0), (probe.Video!.Codec, probe.Video.Width, probe.Video.Height, probe.Video.FrameRate));
        Assert.Equal(("aac", 44100, 1), (probe.Audio!.Codec, probe.Audio.SampleRate, probe.Audio.Channels));
        Assert.True(probe.HasAudio && probe.HasVideo);
    }

    [Fact]
    public async Task A_rotated_video_is_displayed_with_width_and_height_swapped()
    {
        var probe = await _prober.ProbeAsync(await fixtures.RotatedVideo, TestContext.Current.CancellationToken);

        Assert.Equal((320, 240), (probe.Video!.Width, probe.Video.Height));
        Assert.True(probe.Video.IsQuarterTurned);
        Assert.Equal((240, 320), (probe.DisplayWidth, probe.DisplayHeight));
    }

    [Fact]
    public async Task Audio_files_have_no_video()
    {
        var wav = await _prober.ProbeAsync(await fixtures.Wav, TestContext.Current.CancellationToken);
        var mp3 = await _prober.ProbeAsync(await fixtures.Mp3, TestContext.Current.CancellationToken);

        Assert.Equal((false, true, 2), (wav.HasVideo, wav.HasAudio, wav.Audio!.Channels));
        Assert.Equal(("mp3", false), (mp3.Audio!.Codec, mp3.HasVideo));
        Assert.Equal(3, mp3.Duration!.Value.TotalSeconds, 0);
    }

    [Fact]
    public async Task Random_bytes_are_unreadable()
    {
        var ex = await Assert.ThrowsAsync<MediaException>(async () => await _prober.ProbeAsync(await fixtures.RandomBytes, TestContext.Current.CancellationToken));

        Assert.Equal("media.unreadable", ex.Code);
        Assert.Contains("Invalid data", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_truncated_mp4_without_its_moov_atom_is_unreadable()
    {
        var ex = await Assert.ThrowsAsync<MediaException>(async () => await _prober.ProbeAsync(await fixtures.TruncatedVideo, TestContext.Current.CancellationToken));

        Assert.Equal("media.unreadable", ex.Code);
        Assert.Contains("moov atom not found", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_file_is_not_found()
    {
        var ex = await Assert.ThrowsAsync<MediaException>(() => _prober.ProbeAsync("/nonexistent/x.mp4", TestContext.Current.CancellationToken));

        Assert.Equal("media.not_found", ex.Code);
    }

    [Fact]
    public async Task Limits_are_checked_after_probing()
    {
        var path = await fixtures.VideoWithAudio;
        var ct = TestContext.Current.CancellationToken;

        var tooLong = await Assert.ThrowsAsync<MediaException>(() => _prober.ProbeAsync(path, new AvLimits { MaxDuration = TimeSpan.FromSeconds(2) }, ct));
        var tooLarge = await Assert.ThrowsAsync<MediaException>(() => _prober.ProbeAsync(path, new AvLimits { MaxWidth = 160, MaxHeight = 120 }, ct));

        Assert.Equal("media.too_long", tooLong.Code);
        Assert.Equal("media.too_large", tooLarge.Code);
    }
}
