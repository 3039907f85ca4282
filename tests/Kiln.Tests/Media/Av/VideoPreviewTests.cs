using Kiln.Media;
using Kiln.Media.FFmpeg;
using Kiln.Media.Video;

namespace Kiln.Tests.Media.Av;

public sealed class VideoPreviewTests(AvFixtures fixtures)
{
    private readonly VideoPreview _preview = new(fixtures.Runner);
    private readonly MediaProber _prober = new(fixtures.Runner);

    [Fact]
    public async Task A_long_clip_is_cut_to_ten_seconds_of_h264_and_aac_with_moov_first()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "preview.mp4");
        var progress = new RecordingProgress();

        var result = await _preview.CreateAsync(await fixtures.LongVideo, output, null, progress, TestContext.Current.CancellationToken);

        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.InRange(probe.Duration!.Value.TotalSeconds, 9.9, 10.1);
        Assert.Equal(("h264", "aac"), (probe.Video!.Codec, probe.Audio!.Codec));
        Assert.Equal((160, 120), (probe.Video.Width, probe.Video.Height));
        Assert.Equal((TimeSpan.FromSeconds(10), true), (result.Duration, result.HasAudio));
        var boxes = Mp4Boxes.TopLevel(output);
        Assert.True(boxes.IndexOf("moov") < boxes.IndexOf("mdat"), string.Join(",", boxes));
        Assert.Equal(100, progress.Reports[^1].Percent);
        Assert.Contains(progress.Reports, r => r.Stage == "preview");
    }

    [Fact]
    public async Task A_clip_larger_than_720p_is_scaled_to_720p_keeping_aspect()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "preview.mp4");

        var result = await _preview.CreateAsync(
            await fixtures.Video720, output, new VideoPreviewSettings { MaxShortSide = 360 }, null, TestContext.Current.CancellationToken);

        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal((640, 360), (probe.Video!.Width, probe.Video.Height));
        Assert.Equal((640, 360), (result.Width, result.Height));
        Assert.Equal(3, probe.Duration!.Value.TotalSeconds, 0);
    }

    [Fact]
    public async Task A_video_without_audio_gives_a_preview_without_audio()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "preview.mp4");

        var result = await _preview.CreateAsync(await fixtures.VideoWithoutAudio, output, null, null, TestContext.Current.CancellationToken);

        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.False(probe.HasAudio);
        Assert.False(result.HasAudio);
        Assert.Equal("h264", probe.Video!.Codec);
    }

    [Fact]
    public async Task A_clip_shorter_than_the_preview_is_kept_whole()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "preview.mp4");

        await _preview.CreateAsync(await fixtures.ShortVideo, output, null, null, TestContext.Current.CancellationToken);

        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.InRange(probe.Duration!.Value.TotalSeconds, 1.4, 1.6);
    }

    [Fact]
    public async Task A_rotated_clip_is_encoded_upright_without_rotation_metadata()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "preview.mp4");

        await _preview.CreateAsync(await fixtures.RotatedVideo, output, null, null, TestContext.Current.CancellationToken);

        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal((240, 320, 0), (probe.Video!.Width, probe.Video.Height, probe.Video.Rotation));
    }

    [Fact]
    public async Task An_encoder_failure_leaves_no_partial_file()
    {
        var dir = fixtures.NewOutputDirectory();

        var ex = await Assert.ThrowsAsync<MediaException>(async () => await _preview.CreateAsync(
            await fixtures.VideoWithAudio, Path.Combine(dir, "p.mp4"), new VideoPreviewSettings { Preset = "no-such-preset" }, null,
            TestContext.Current.CancellationToken));

        Assert.Equal("media.ffmpeg_failed", ex.Code);
        Assert.Contains("no-such-preset", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }
}
