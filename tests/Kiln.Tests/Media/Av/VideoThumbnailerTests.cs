using Kiln.Media;
using Kiln.Media.FFmpeg;
using Kiln.Media.Video;

namespace Kiln.Tests.Media.Av;

public sealed class VideoThumbnailerTests(AvFixtures fixtures)
{
    private readonly VideoThumbnailer _thumbnailer = new(fixtures.Runner);
    private readonly OutputProbe _prober = new(fixtures.Runner);

    [Fact]
    public async Task The_frame_at_two_seconds_is_written_as_a_jpeg_of_the_source_size()
    {
        var dir = fixtures.NewOutputDirectory();
        var output = Path.Combine(dir, "thumb.jpg");
        var progress = new RecordingProgress();

        var result = await _thumbnailer.CreateAsync(await fixtures.VideoWithAudio, output, null, progress, TestContext.Current.CancellationToken);

        Assert.Equal((output, 320, 240, TimeSpan.FromSeconds(2)), (result.Path, result.Width, result.Height, result.At));
        var jpeg = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal(("mjpeg", 320, 240), (jpeg.Video!.Codec, jpeg.Video.Width, jpeg.Video.Height));
        Assert.Equal(new FileInfo(output).Length, result.Bytes);
        Assert.Equal([output], Directory.GetFiles(dir));
        Assert.Equal(100, progress.Reports[^1].Percent);
    }

    [Fact]
    public async Task A_clip_shorter_than_two_seconds_is_sampled_at_its_middle()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "thumb.jpg");

        var result = await _thumbnailer.CreateAsync(await fixtures.ShortVideo, output, null, null, TestContext.Current.CancellationToken);

        Assert.InRange(result.At.TotalSeconds, 0.7, 0.8); // half of 1.5 s plus the AAC tail
        Assert.True(new FileInfo(output).Length > 1000);
    }

    [Fact]
    public async Task A_rotated_video_gives_an_upright_portrait_thumbnail()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "thumb.jpg");

        var result = await _thumbnailer.CreateAsync(await fixtures.RotatedVideo, output, null, null, TestContext.Current.CancellationToken);

        var jpeg = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal((240, 320), (jpeg.Video!.Width, jpeg.Video.Height));
        Assert.Equal(0, jpeg.Video.Rotation);
        Assert.Equal((240, 320), (result.Width, result.Height));
    }

    [Fact]
    public async Task A_portrait_clip_gives_a_portrait_thumbnail()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "thumb.jpg");

        var result = await _thumbnailer.CreateAsync(await fixtures.PortraitVideo, output, null, null, TestContext.Current.CancellationToken);

        var jpeg = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal((240, 320), (jpeg.Video!.Width, jpeg.Video.Height));
        Assert.Equal(1, result.At.TotalSeconds, 1);
    }

    [Fact]
    public async Task A_large_frame_is_scaled_down_to_fit_the_box()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "thumb.jpg");
        var settings = new VideoThumbnailSettings { MaxWidth = 640, MaxHeight = 640, At = TimeSpan.FromSeconds(1) };

        await _thumbnailer.CreateAsync(await fixtures.Video720, output, settings, null, TestContext.Current.CancellationToken);

        var jpeg = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal((640, 360), (jpeg.Video!.Width, jpeg.Video.Height));
    }

    [Fact]
    public async Task Audio_without_video_fails_with_no_video_and_writes_nothing()
    {
        var dir = fixtures.NewOutputDirectory();

        var ex = await Assert.ThrowsAsync<MediaException>(async () =>
            await _thumbnailer.CreateAsync(await fixtures.Wav, Path.Combine(dir, "t.jpg"), null, null, TestContext.Current.CancellationToken));

        Assert.Equal("media.no_video", ex.Code);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public async Task A_corrupt_file_fails_as_unreadable_and_writes_nothing()
    {
        var dir = fixtures.NewOutputDirectory();

        var ex = await Assert.ThrowsAsync<MediaException>(async () =>
            await _thumbnailer.CreateAsync(await fixtures.TruncatedVideo, Path.Combine(dir, "t.jpg"), null, null, TestContext.Current.CancellationToken));

        Assert.Equal("media.unreadable", ex.Code);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }
}
